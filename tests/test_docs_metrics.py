"""docs/service.md's ``/metrics`` row names every metric the service registers.

``edgedetect_detections`` was documented nowhere, and the four clip metrics only in the README,
not in the table that says what ``/metrics`` holds."""

from __future__ import annotations

import re

from conftest import REPO

from edgedetect.service.metrics import ServiceMetrics


def test_metrics_row_names_every_registered_metric():
    doc = (REPO / "docs" / "service.md").read_text(encoding="utf-8")
    row = next(line for line in doc.splitlines() if line.startswith("| `/metrics`"))
    documented = set(re.findall(r"edgedetect_[a-z_]+", row))
    exposed = {
        fam.name + ("_total" if fam.type == "counter" else "")
        for fam in ServiceMetrics().registry.collect()
    }
    assert exposed - documented == set()
