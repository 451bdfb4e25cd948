"""docs/training.md names every config shipped in host_tools/configs.

``ssd_mobilenet_v2_fpnlite_mix_street`` and ``ssd_mobilenet_v1_075_coco_mix`` were offered by
``train --config`` (its error lists them) but named nowhere on the training page."""

from __future__ import annotations

import re

from conftest import REPO


def test_training_doc_names_every_shipped_config():
    doc = (REPO / "docs" / "training.md").read_text(encoding="utf-8")
    named = set(re.findall(r"`([a-z0-9_]+)`", doc))
    shipped = {p.stem for p in (REPO / "host_tools" / "configs").glob("*.json")}
    assert len(shipped) > 5
    assert shipped - named == set()
