"""docs/pipeline.md's CLI synopsis names every option of detect, run and bench, and only those.

It left out ``--tiles`` of detect and run, and ``--threshold``, ``--classes`` and ``--threads``
of run (``--threshold`` and ``--classes`` of bench), all in ``edgedetect CMD --help``."""

from __future__ import annotations

import argparse
import re

from conftest import REPO

from edgedetect.cli import build_parser


def synopsis() -> dict[str, set[str]]:
    text = (REPO / "docs" / "pipeline.md").read_text(encoding="utf-8")
    block = re.search(r"## CLI\n\n```\n(.*?)```", text, re.S)
    assert block, "docs/pipeline.md has no CLI synopsis block"
    options: dict[str, set[str]] = {}
    command = ""
    for line in block.group(1).splitlines():
        start = re.match(r"edgedetect ([a-z-]+)", line)
        if start:
            command = start.group(1)
        options.setdefault(command, set()).update(re.findall(r"--[a-z][a-z-]*", line))
    return options


def parser_options(command: str) -> set[str]:
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    parser = sub.choices[command]
    return {
        s for a in parser._actions for s in a.option_strings if s.startswith("--") and s != "--help"
    }


def test_pipeline_doc_synopsis_lists_every_option():
    documented = synopsis()
    for command in ("detect", "run", "bench"):
        assert documented[command] == parser_options(command), command
