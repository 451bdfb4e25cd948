"""Print evaluation reports side by side as one Markdown table.

python -m host_tools.compare /work/reports/ssd_v1 /work/reports/fpnlite /work/reports/hog
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from edgedetect.errors import EdgeDetectError
from host_tools._cli import cli_errors

COLUMNS = (
    "model",
    "size",
    "latency p50 / p95 (ms)",
    "thr",
    "mean IoU",
    "precision",
    "recall",
    "AP50",
    "AP",
    "LAMR",
)
NEEDED = (
    "ap",
    "ap50",
    "lamr",
    "mean_iou",
    "precision",
    "recall",
    "threshold",
    "latency_ms_p50",
    "latency_ms_p95",
    "model",
    "dataset",
)


class ReportError(EdgeDetectError):
    """A report folder without a readable report.json."""


def load_report(folder: Path) -> dict[str, Any]:
    """DIR/report.json (or the file itself), checked for the keys the table needs."""
    path = folder / "report.json" if folder.is_dir() else folder
    if not path.is_file():
        raise ReportError(
            f"{folder} has no report.json; run python -m host_tools.evaluate --out {folder} first"
        )
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ReportError(f"cannot read {path}: {exc}") from None
    missing = [k for k in NEEDED if k not in report]
    if missing:
        raise ReportError(
            f"{path} lacks {', '.join(missing)}; re-run python -m host_tools.evaluate"
        )
    return report


def _value(v: float | None) -> str:
    """A metric, or n/a for one a set without annotated people cannot measure (AP, LAMR)."""
    return "n/a" if v is None else f"{v:.3f}"


def _size(n: int) -> str:
    return f"{n / 1e6:.2f} MB" if n >= 1e5 else f"{n / 1e3:.1f} kB"


def _model_cell(report: dict[str, Any]) -> str:
    """The model's file name, with the tiled pass and the camera condition it ran under.

    Without them, the clean, the ``--condition night_ir`` and the ``--tiles 2x2`` reports of one
    model were three rows of the same name that no one could tell apart.
    """
    m = report["model"]
    name = m.get("name") or Path(str(m.get("path"))).name
    how = []
    if m.get("tiles") not in (None, "off"):
        how.append(f"tiles {m['tiles']}")
    if report.get("condition"):
        how.append(str(report["condition"]))
    return f"{name} ({', '.join(how)})" if how else name


def markdown_table(reports: list[dict[str, Any]]) -> str:
    """One row per report; the best value of each accuracy column in bold."""
    rows = []
    for r in reports:
        m = r["model"]
        rows.append(
            [
                _model_cell(r),
                _size(int(m.get("size_bytes", 0))),
                f"{r['latency_ms_p50']:.1f} / {r['latency_ms_p95']:.1f}",
                f"{r['threshold']:g}",
                f"{r['mean_iou']:.3f}",
                f"{r['precision']:.3f}",
                _value(r["recall"]),
                _value(r["ap50"]),
                _value(r["ap"]),
                _value(r["lamr"]),
            ]
        )
    if len(reports) > 1:  # bold the best per accuracy column (LAMR: lower is better)
        for col, key, best in (
            (4, "mean_iou", max),
            (5, "precision", max),
            (6, "recall", max),
            (7, "ap50", max),
            (8, "ap", max),
            (9, "lamr", min),
        ):
            measured = [r[key] for r in reports if r[key] is not None]
            if not measured:
                continue
            target = best(measured)
            for row, r in zip(rows, reports, strict=True):
                if r[key] == target:
                    row[col] = f"**{row[col]}**"
    lines = ["| " + " | ".join(COLUMNS) + " |", "| " + " | ".join("---" for _ in COLUMNS) + " |"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


@cli_errors("compare")
def main(argv: list[str] | None = None) -> int:
    """Entry point; user errors print one line and return 2."""
    p = argparse.ArgumentParser(
        prog="python -m host_tools.compare",
        description="Evaluation reports side by side (Markdown).",
    )
    p.add_argument(
        "reports", nargs="+", type=Path, help="report folders written by host_tools.evaluate"
    )
    args = p.parse_args(argv)
    reports = [load_report(d) for d in args.reports]
    print(markdown_table(reports))
    first = reports[0]
    data = {
        (r["dataset"].get("spec"), r["dataset"].get("split_file"), r.get("images")) for r in reports
    }
    if len(data) == 1:
        split = (
            f", split {Path(first['dataset']['split_file']).name}"
            if first["dataset"].get("split_file")
            else ""
        )
        print(
            f"\nAll on {first['dataset']['spec']}{split}: {first.get('images')} images, "
            f"{first.get('gt_boxes')} people; match IoU >= 0.5; "
            "precision/recall/IoU at the threshold 'thr' (HOG: SVM margin); "
            "AP/LAMR over all scores."
        )
    else:
        print(
            "\nNote: these reports are on different datasets or splits; "
            "the rows are not comparable.",
            file=sys.stderr,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
