"""`detect --save-dir D` on a folder that cannot be written (a read-only file system, or no write
permission) loaded the model, printed the first image's detections, and only then failed at the
first save; docs/pipeline.md promises that all paths are checked before the model is loaded. Now
the folder is tried first: one line naming it, exit 2, nothing on stdout."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from edgedetect.cli import main

IMAGE = Path(__file__).resolve().parents[1] / "data" / "images" / "astronaut.jpg"


@pytest.fixture
def read_only_folder(tmp_path: Path) -> Iterator[Path]:
    """A folder nobody can write: a read-only tmpfs as root (who ignores permission bits), else
    a folder without write permission."""
    folder = tmp_path / "ro"
    folder.mkdir()
    if os.geteuid() != 0:
        folder.chmod(0o555)
        yield folder
        folder.chmod(0o755)
        return
    mount = ["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(folder)]
    res = subprocess.run(mount, capture_output=True, text=True)
    if res.returncode != 0:
        pytest.skip(f"cannot mount a read-only tmpfs here: {res.stderr.strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=True)


def test_read_only_save_dir_is_said_before_any_detection(
    read_only_folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["detect", str(IMAGE), "--save-dir", str(read_only_folder)]) == 2
    out, err = capsys.readouterr()
    assert out == "", "a detection was printed before the save folder was checked"
    lines = [line for line in err.splitlines() if line.startswith("edgedetect:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    assert f"--save-dir {read_only_folder}" in lines[0] and "writable folder" in lines[0], lines[0]
