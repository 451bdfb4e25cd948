"""Every benchmark's --help explains itself: a whole first sentence as the description and a help
text for every option. bench_zones' description stopped mid-sentence ("... and how long a") and
most options (--seconds, --rounds, --threads, --model ...) had none, so their units, defaults
and limits (bench_models' --rounds must be at least 2) were found only by reading the code."""

from __future__ import annotations

import argparse
import runpy
import sys
from pathlib import Path

import pytest
from conftest import REPO

# bench_pipeline.py is `edgedetect bench --json`: its --help is the CLI's, tested with the CLI
SCRIPTS = sorted(p for p in (REPO / "benchmarks").glob("*.py") if p.name != "bench_pipeline.py")


class _Parsed(Exception):
    """Raised instead of parsing: carries the script's parser out."""

    def __init__(self, parser: argparse.ArgumentParser) -> None:
        super().__init__(parser.prog)
        self.parser = parser


def _parser_of(script: Path, monkeypatch: pytest.MonkeyPatch) -> argparse.ArgumentParser:
    """The ArgumentParser the script builds when run, caught at its parse_args."""

    def capture(self: argparse.ArgumentParser, *args: object, **kw: object) -> None:
        raise _Parsed(self)

    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", capture)
    monkeypatch.setattr(sys, "argv", [str(script)])
    monkeypatch.syspath_prepend(str(REPO))
    with pytest.raises(_Parsed) as caught:
        runpy.run_path(str(script), run_name="__main__")
    return caught.value.parser


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_every_benchmark_option_has_help(script: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    parser = _parser_of(script, monkeypatch)
    bare = [
        a.option_strings[0] if a.option_strings else a.dest
        for a in parser._actions
        if not a.help and a.help != argparse.SUPPRESS
    ]
    assert bare == [], f"{script.name}: options without help: {bare}"


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_benchmark_description_is_a_whole_sentence(
    script: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    parser = _parser_of(script, monkeypatch)
    text = (parser.description or "").strip()
    assert text.endswith((".", "JSON")), f"{script.name}: {text!r}"
