"""docs/evaluation.md's synopsis of ``host_tools.evaluate`` names every option it takes.

It left out ``--curve-threshold``, ``--classes`` and ``--no-progress``, all in ``--help``."""

from __future__ import annotations

import re

from conftest import REPO

from host_tools.evaluate import build_parser


def test_evaluation_doc_synopsis_lists_every_option():
    text = (REPO / "docs" / "evaluation.md").read_text(encoding="utf-8")
    block = re.search(r"## Evaluation\n\n```\n(.*?)```", text, re.S)
    assert block, "docs/evaluation.md has no evaluate synopsis block"
    lines = block.group(1).replace("\\\n", " ").splitlines()
    documented = {
        o for ln in lines if "host_tools.evaluate" in ln for o in re.findall(r"--[a-z-]+", ln)
    }
    taken = {
        s
        for a in build_parser()._actions
        for s in a.option_strings
        if s.startswith("--") and s != "--help"
    }
    assert len(taken) > 8
    assert taken - documented == set()
