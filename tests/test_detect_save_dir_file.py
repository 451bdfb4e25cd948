"""`detect --save-dir X` where X is a file said "cannot create --save-dir X: File exists", which
reads as if the folder were already there; it now says X is a file and asks for a folder."""

from __future__ import annotations

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
