"""``run --size`` on a source whose size it cannot set says so.

``--size`` sets a camera's capture size (picam, usb:N); ``run --source photos/ --size 320x240``
ran at the photos' own size without a word, as if the frames had been resized."""

from __future__ import annotations

import logging

import pytest
from conftest import REPO

from edgedetect.cli import main

IMAGES = REPO / "data" / "images"


@pytest.mark.parametrize("size_args", [["--size", "320x240"], []], ids=["size", "no-size"])
def test_size_on_a_folder_is_named_as_ignored(tmp_path, caplog, size_args):
    caplog.set_level(logging.WARNING)
    args = ["run", "--source", str(IMAGES), "--no-preview", "--max-frames", "1", *size_args]
    assert main(args) == 0
    warned = [r.getMessage() for r in caplog.records if "--size" in r.getMessage()]
    if size_args:
        assert warned == [
            f"--size is ignored for source {str(IMAGES)!r}: it sets the capture size of picam "
            "and usb:N only; it is read at its own size"
        ]
    else:
        assert warned == []
