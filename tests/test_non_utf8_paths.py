"""File names that are not UTF-8 (a Linux name in Latin-1, say, which Python holds as lone
surrogates) crashed the process with a segmentation fault (exit 139) wherever such a path
reached OpenCV: `run --source` and `bench --source` on such a video, `run --output` to such a
name, and `detect --save-dir` for such an image. Reading them is a one-line error now (exit 2),
and detect saves the annotated image under its name.

Each case runs in a subprocess: before the fix it killed the interpreter."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "data" / "sample.mp4"
IMAGE = REPO / "data" / "images" / "astronaut.jpg"
ENV = dict(os.environ, PYTHONPATH=str(REPO))


def _edgedetect(*args: str | bytes) -> subprocess.CompletedProcess[bytes]:
    argv = [os.fsencode(sys.executable), b"-m", b"edgedetect", *(os.fsencode(a) for a in args)]
    return subprocess.run(argv, env=ENV, cwd=REPO, capture_output=True, timeout=120)


def _one_line_error(res: subprocess.CompletedProcess[bytes], needle: str) -> None:
    err = res.stderr.decode("utf-8", "replace")
    assert res.returncode == 2, (res.returncode, err[-2000:])
    lines = [line for line in err.splitlines() if line.startswith("edgedetect: error: ")]
    assert len(lines) == 1 and "Traceback" not in err, err
    assert needle in lines[0] and "not UTF-8" in lines[0], lines[0]


@pytest.mark.parametrize("command", ["run", "bench"])
def test_a_video_whose_name_is_not_utf8_is_a_one_line_error(tmp_path: Path, command: str) -> None:
    video = os.path.join(os.fsencode(tmp_path), b"clip\xff.mp4")
    shutil.copyfile(SAMPLE, video)
    extra = ["--no-preview", "--max-frames", "3"] if command == "run" else ["--frames", "10"]
    _one_line_error(_edgedetect(command, "--source", video, *extra), "clip")


def test_an_output_video_whose_name_is_not_utf8_is_a_one_line_error(tmp_path: Path) -> None:
    out = os.path.join(os.fsencode(tmp_path), b"out\xff.mp4")
    res = _edgedetect(
        "run", "--source", str(SAMPLE), "--no-preview", "--max-frames", "3", "--output", out
    )
    _one_line_error(res, "out")
    assert not os.path.exists(out)


def test_detect_saves_an_image_whose_name_is_not_utf8(tmp_path: Path) -> None:
    image = os.path.join(os.fsencode(tmp_path), b"photo\xff.jpg")
    shutil.copyfile(IMAGE, image)
    save = tmp_path / "out"
    res = _edgedetect("detect", image, "--save-dir", str(save))
    assert res.returncode == 0, res.stderr.decode("utf-8", "replace")
    saved = os.listdir(os.fsencode(save))
    assert saved == [b"photo\xff.detections.jpg"]
    assert open(os.path.join(os.fsencode(save), saved[0]), "rb").read(2) == b"\xff\xd8"


def test_a_stream_url_that_is_not_utf8_is_a_one_line_error_without_its_password() -> None:
    res = _edgedetect("run", "--source", b"rtsp://admin:hunter2@cam/live\xff", "--no-preview")
    _one_line_error(res, "rtsp://admin:***@cam/live")
    assert b"hunter2" not in res.stderr
