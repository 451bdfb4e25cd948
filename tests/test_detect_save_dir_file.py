"""`detect --save-dir X` where X is a file said "cannot create --save-dir X: File exists", which
reads as if the folder were already there; it now says X is a file and asks for a folder."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest

from edgedetect.cli import main

IMAGE = Path(__file__).resolve().parents[1] / "data" / "images" / "astronaut.jpg"


@pytest.mark.parametrize("where", ["file", "under a file"])
def test_save_dir_that_is_a_file_is_named_as_a_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], where: str
) -> None:
    f = tmp_path / "out"
    f.write_text("not a folder")
    save_dir = f if where == "file" else f / "sub"
    assert main(["detect", str(IMAGE), "--save-dir", str(save_dir)]) == 2
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("edgedetect:")]
    assert len(lines) == 1 and "File exists" not in err and "Not a directory" not in err, err
    assert f"{f} is a file, not a folder" in lines[0], lines[0]


@pytest.mark.parametrize("where", ["fifo", "under a fifo"])
def test_save_dir_that_is_a_special_file_is_named_as_such(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], where: str
) -> None:
    """`--save-dir /dev/null` (or a FIFO) said "cannot create --save-dir /dev/null: File exists",
    the words the file case had before; now it says what the path is and asks for a folder."""
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    save_dir = fifo if where == "fifo" else fifo / "sub"
    assert main(["detect", str(IMAGE), "--save-dir", str(save_dir)]) == 2
    out, err = capsys.readouterr()
    lines = [line for line in err.splitlines() if line.startswith("edgedetect:")]
    assert out == "" and len(lines) == 1, err
    assert "File exists" not in err and "Not a directory" not in err, err
    assert f"{fifo} is a FIFO, not a folder; name a folder" in lines[0], lines[0]


def test_save_dir_on_a_full_disk_leaves_no_partial_jpeg(tmp_path: Path) -> None:
    """The disk fills while an annotated image is written (a file size limit in the child makes
    it real without root): the half-written JPEG stayed under its final name, looking like a
    result, and the error blamed the folder's permissions; now nothing is left under that name
    and the line says why the write failed."""

    def fsize_limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (8192, 8192))

    out = tmp_path / "out"
    res = subprocess.run(
        [sys.executable, "-m", "edgedetect", "detect", str(IMAGE), "--save-dir", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=fsize_limit,
    )
    assert res.returncode == 2, res.stderr[-2000:]
    lines = [line for line in res.stderr.splitlines() if line.startswith("edgedetect:")]
    assert len(lines) == 1 and "Traceback" not in res.stderr, res.stderr
    assert "astronaut.detections.jpg" in lines[0] and "File too large" in lines[0], lines[0]
    assert sorted(p.name for p in out.iterdir()) == []
