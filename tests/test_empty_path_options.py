"""An empty path option (`--output "$OUT"` with OUT unset) is refused by the parser: --output,
--events and --save-dir "" were taken for the option left out (nothing written, exit 0), and
--model "" for the current folder ("model . is a directory"), as was an empty IMAGE of detect
("image . is a directory, not an image file; pass an image inside it")."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgedetect.cli import main

REPO = Path(__file__).resolve().parents[1]
IMAGE = str(REPO / "data" / "images" / "astronaut.jpg")
SAMPLE = str(REPO / "data" / "sample.mp4")


@pytest.mark.parametrize(
    "argv",
    [
        ["run", "--source", SAMPLE, "--no-preview", "--max-frames", "2", "--output", ""],
        ["run", "--source", SAMPLE, "--no-preview", "--max-frames", "2", "--events", " "],
        ["detect", IMAGE, "--save-dir", ""],
        ["detect", IMAGE, "--model", ""],
        ["detect", IMAGE, "--labels", ""],
        ["bench", "--model", ""],
        ["detect", ""],  # `edgedetect detect "$IMG"`: "image . is a directory"
        ["detect", IMAGE, " "],  # "image not found:  "
    ],
)
def test_an_empty_path_option_is_refused(capsys: pytest.CaptureFixture[str], argv: list[str]):
    with pytest.raises(SystemExit) as info:
        main(argv)
    err = capsys.readouterr().err
    assert info.value.code == 2 and "empty path" in err, err
    assert "is a directory" not in err
