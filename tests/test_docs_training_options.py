"""docs/training.md names every option of the training-side host tools.

quantize's ``--modes`` and ``--no-eval`` (the way to convert without a full evaluation), validate's
``--no-export``, and the ``--labels`` / ``--threads`` of export, quantize and ignore_regions were
in ``--help`` only."""

from __future__ import annotations

import argparse
import importlib
import re

import pytest
from conftest import REPO

pytest.importorskip("tensorflow", reason="TensorFlow (host extra) is not installed")


def _parser(tool: str) -> argparse.ArgumentParser:
    module = importlib.import_module(f"host_tools.{tool}")
    make = getattr(module, "build_parser", None) or module._parser
    parser: argparse.ArgumentParser = make()
    return parser


@pytest.mark.parametrize("tool", ["train", "validate", "export", "quantize", "ignore_regions"])
def test_training_doc_names_every_option(tool):
    doc = (REPO / "docs" / "training.md").read_text(encoding="utf-8")
    options = {
        s
        for a in _parser(tool)._actions
        for s in a.option_strings
        if s.startswith("--") and s != "--help"
    }
    assert len(options) >= 3
    assert {o for o in options if not re.search(re.escape(o) + r"(?![a-z-])", doc)} == set()
