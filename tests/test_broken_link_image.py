"""A broken link named like an image (`photos/b.jpg -> /media/usb/b.jpg`, the stick unplugged)
in a folder or glob source was left out without a word, while an empty or truncated image is
skipped with a warning; a user counting frames had no way to see that a picture was missing.
It is now skipped with the same warning, naming the link and where it points, and `detect` on
it says the same instead of "image not found"."""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

import pytest
from conftest import run_edgedetect

from edgedetect.sources import open_source

IMAGE = Path(__file__).resolve().parents[1] / "data" / "images" / "astronaut.jpg"


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    folder = tmp_path / "photos"
    folder.mkdir()
    shutil.copy(IMAGE, folder / "a.jpg")
    os.symlink(tmp_path / "usb" / "b.jpg", folder / "b.jpg")
    return folder


@pytest.mark.parametrize("form", ["folder", "glob"])
def test_a_broken_link_in_a_source_is_skipped_with_a_warning(
    photos: Path, caplog: pytest.LogCaptureFixture, form: str
) -> None:
    spec = str(photos) if form == "folder" else f"{photos}/*.jpg"
    with caplog.at_level(logging.WARNING), open_source(spec) as source:
        names = []
        while (frame := source.read()) is not None:
            names.append(Path(frame.source).name)
    assert names == ["a.jpg"]
    assert source.unreadable == [photos / "b.jpg"]  # type: ignore[attr-defined]
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    link = photos.parent / "usb" / "b.jpg"
    assert warned == [
        f"skipping unreadable image: image {photos / 'b.jpg'} is a link to {link}, which does "
        "not exist; fix or remove the link"
    ]


def test_detect_on_a_broken_link_names_the_link(photos: Path) -> None:
    res = run_edgedetect("detect", str(photos / "b.jpg"))
    assert res.returncode == 2
    assert res.stderr.splitlines() == [
        f"edgedetect: error: image {photos / 'b.jpg'} is a link to "
        f"{photos.parent / 'usb' / 'b.jpg'}, which does not exist; fix or remove the link"
    ]
