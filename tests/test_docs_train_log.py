"""docs/training.md names ``log.csv``'s columns as the file's header spells them.

The page said "positives" and "seconds per step" for ``num_pos`` and ``sec_per_step``, and that
the GIoU and range columns come "when they are on", while every ``log.csv`` has both."""

from __future__ import annotations

import re

from conftest import REPO

from host_tools.train import TrainLog


def test_training_doc_names_every_log_csv_column():
    doc = (REPO / "docs" / "training.md").read_text(encoding="utf-8")
    start = doc.index("`log.csv` (columns")
    described = doc[start : doc.index(")", doc.index("`range`", start))]
    named = re.findall(r"`([a-z_]+)`", described)
    assert [n for n in named if n in TrainLog.COLUMNS] == TrainLog.COLUMNS
