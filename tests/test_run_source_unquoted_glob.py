"""`edgedetect run --source imgs/*.jpg` with the pattern left unquoted: the shell hands the
command every matching file, and argparse answered with its usage and "unrecognized arguments:
imgs/b.jpg imgs/c.jpg ...", which does not say what went wrong or how to fix it. Now one line
says that --source takes one source and how to write it (the pattern quoted, or the folder)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from conftest import run_edgedetect

IMAGE = Path(__file__).resolve().parents[1] / "data" / "images" / "astronaut.jpg"


@pytest.mark.parametrize("command", ["run", "bench"])
def test_an_unquoted_source_pattern_names_the_fix(tmp_path: Path, command: str) -> None:
    folder = tmp_path / "my pics"
    folder.mkdir()
    for name in ("a.jpg", "b.jpg", "c.jpg"):
        shutil.copy(IMAGE, folder / name)
    expanded = sorted(str(p) for p in folder.glob("*.jpg"))  # what the shell passes
    options = ["--no-preview"] if command == "run" else ["--no-camera"]
    res = run_edgedetect(command, "--source", *expanded, *options)
    assert res.returncode == 2, res.stderr
    assert res.stdout == "" and "usage:" not in res.stderr, res.stderr
    lines = res.stderr.splitlines()
    assert len(lines) == 1, res.stderr
    assert lines[0].startswith("edgedetect: error: --source takes one source, but 3 files"), lines
    assert f"--source '{folder}/*.jpg'" in lines[0] and f"--source '{folder}')" in lines[0], lines


def test_other_unknown_arguments_keep_argparse_s_message(tmp_path: Path) -> None:
    res = run_edgedetect("run", "--source", str(IMAGE), "--bogus")
    assert res.returncode == 2
    assert "unrecognized arguments: --bogus" in res.stderr, res.stderr
