"""docs/pipeline.md names every container ``run --output`` writes, with its codec.

``.m4v`` was accepted (and named in the error for an unknown extension) but not in the doc."""

from __future__ import annotations

import re

from conftest import REPO

from edgedetect import writers


def test_pipeline_doc_names_every_output_container_and_codec():
    doc = (REPO / "docs" / "pipeline.md").read_text(encoding="utf-8")
    start = doc.index("`--output` writes the annotated frames (")
    said = doc[start : doc.index(")", start + len("`--output` writes the annotated frames ("))]
    documented = {}
    for group, codec in re.findall(r"((?:`\.[a-z0-9]+`/?)+) as `([A-Za-z0-9]+)`", said):
        for ext in re.findall(r"`(\.[a-z0-9]+)`", group):
            documented[ext] = codec
    assert len(documented) >= 2
    assert documented == writers._FOURCC
