"""`run --source photo.jfif` (the name Windows gives many saved web photos; `.jpe` likewise) was
read as a video through FFmpeg, which ignores the EXIF orientation: a phone photo taken upright
was detected lying on its side, so the boxes, the events and the --output video were in the
stored orientation, not the one the user sees (and a folder of .jfif photos had "no images").
Both are JPEG names now, read like .jpg."""

from __future__ import annotations

import json
import shutil
import struct
from pathlib import Path

import cv2
import pytest
from conftest import run_edgedetect

from edgedetect.images import read_bgr

IMAGE = Path(__file__).resolve().parents[1] / "data" / "images" / "astronaut.jpg"


def _sideways_jpeg(path: Path) -> None:
    """A JPEG stored rotated a quarter turn left, with EXIF orientation 6 (rotate 90 clockwise to
    show it), as a phone saves a photo taken upright: shown, it is the astronaut upright."""
    stored = cv2.rotate(read_bgr(IMAGE)[:, :400], cv2.ROTATE_90_COUNTERCLOCKWISE)
    ok, jpeg = cv2.imencode(".jpg", stored)
    assert ok
    tiff = b"MM\x00\x2a" + struct.pack(">IHHHIHHI", 8, 1, 0x0112, 3, 1, 6, 0, 0)
    app1 = b"\xff\xe1" + struct.pack(">H", 2 + 6 + len(tiff)) + b"Exif\x00\x00" + tiff
    data = jpeg.tobytes()
    path.write_bytes(data[:2] + app1 + data[2:])


def _boxes(events: Path) -> list[list[float]]:
    """The boxes of the one frame's events line; none when the frame had no detection."""
    lines = events.read_text().splitlines()
    return [d["box"] for line in lines for d in json.loads(line)["detections"]]


@pytest.mark.parametrize("suffix", [".jfif", ".jpe"])
def test_a_jfif_photo_is_read_upright_like_a_jpg(tmp_path: Path, suffix: str) -> None:
    jpg = tmp_path / "photo.jpg"
    _sideways_jpeg(jpg)
    assert read_bgr(jpg).shape == (512, 400, 3)  # upright as shown: 400 wide, 512 high
    other = tmp_path / f"photo{suffix}"
    shutil.copy(jpg, other)
    boxes = {}
    for path in (jpg, other):
        events = tmp_path / f"{path.suffix}.jsonl"
        res = run_edgedetect("run", "--source", str(path), "--no-preview", "--events", str(events))
        assert res.returncode == 0, res.stderr
        boxes[path.suffix] = _boxes(events)
    assert boxes[suffix] == boxes[".jpg"] and boxes[".jpg"], boxes


def test_a_folder_of_jfif_photos_is_read(tmp_path: Path) -> None:
    shutil.copy(IMAGE, tmp_path / "a.jfif")
    res = run_edgedetect("run", "--source", str(tmp_path), "--no-preview")
    assert res.returncode == 0, res.stderr
    assert "1 frames in" in res.stderr and "inferred 1," in res.stderr, res.stderr
