"""docs/evaluation.md's list of ``report.json`` fields names every field a report holds.

``match_iou``, ``detections_at_curve_threshold`` and ``operating_points`` were written into every
report but named nowhere in the page that says what the file holds."""

from __future__ import annotations

import json
import re

from conftest import REPO, astronaut_yolo_set

from host_tools.evaluate import run_evaluation


def _documented_fields() -> set[str]:
    """The backticked names of the doc's ``report.json holds ...`` bullet (up to the next one)."""
    doc = (REPO / "docs" / "evaluation.md").read_text(encoding="utf-8")
    start = doc.index("* `report.json` holds")
    bullet = doc[start : doc.index("\n* ", start + 1)]
    names = set(re.findall(r"`([a-z_0-9|]+)`", bullet))
    # `latency_ms_p50|p95|mean` stands for three fields
    return {n for n in names if "|" not in n} | {
        "latency_ms_p50",
        "latency_ms_p95",
        "latency_ms_mean",
    }


def test_evaluation_doc_names_every_report_field(tmp_path):
    model = REPO / "models" / "person_ssdlite_int8.tflite"
    run_evaluation(model, f"yolo:{astronaut_yolo_set(tmp_path)}", tmp_path / "out", progress=False)
    written = set(json.loads((tmp_path / "out" / "report.json").read_text()))
    assert len(written) > 20
    assert written - _documented_fields() == set()
