"""`run --events` to a folder that does not exist, or to a read-only one, said only what was
wrong ("folder X does not exist", "Read-only file system"); the line now also says what to do,
as `--output`'s does ("pick a writable folder")."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from conftest import run_edgedetect

IMAGE = Path(__file__).resolve().parents[1] / "data" / "images" / "astronaut.jpg"


def _error_line(events: Path) -> str:
    res = run_edgedetect("run", "--source", str(IMAGE), "--no-preview", "--events", str(events))
    assert res.returncode == 2, res.stderr
    lines = res.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("edgedetect: error: "), res.stderr
    return lines[0]


def test_events_in_a_missing_folder_names_the_fix(tmp_path: Path) -> None:
    line = _error_line(tmp_path / "nope" / "events.jsonl")
    assert f"folder {tmp_path / 'nope'} does not exist; create it or name a file in" in line


def test_events_in_a_read_only_folder_names_the_fix(tmp_path: Path) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    if os.geteuid() != 0:
        folder.chmod(0o555)
    elif subprocess.run(["mount", "-t", "tmpfs", "-o", "ro", "tmpfs", str(folder)]).returncode:
        pytest.skip("cannot mount a read-only tmpfs here")
    try:
        line = _error_line(folder / "events.jsonl")
    finally:
        if os.geteuid() == 0:
            subprocess.run(["umount", str(folder)], check=True)
    assert f"events file {folder / 'events.jsonl'}: " in line
    assert line.endswith("; pick a writable folder"), line


def test_output_in_a_missing_folder_names_the_folder_as_events_does(tmp_path: Path) -> None:
    """`--output` there said 'No such file or directory; pick a writable folder', naming neither
    the missing folder nor that creating it is the fix."""
    out = tmp_path / "nope" / "out.mp4"
    res = run_edgedetect("run", "--source", str(IMAGE), "--no-preview", "--output", str(out))
    assert res.returncode == 2, res.stderr
    assert res.stderr.splitlines() == [
        f"edgedetect: error: cannot write --output {out}: folder {tmp_path / 'nope'} does not "
        "exist; create it or name a file in an existing folder"
    ]
