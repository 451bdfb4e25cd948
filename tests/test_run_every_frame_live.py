"""``run --every-frame`` on a camera or stream says it does not apply.

docs/pipeline.md: every-frame is for files and folders, "a camera cannot be made to wait"; run
took the flag on a live source and went on in drop-oldest mode without a word."""

from __future__ import annotations

import argparse
import logging

import pytest

from edgedetect.cli import _choose_mode


class _Source:
    """What ``_choose_mode`` reads of a source: whether it is live, its spec and fps."""

    def __init__(self, live: bool) -> None:
        self.live = live
        self.spec = "rtsp://cam.local/stream" if live else "clip.mp4"
        self.fps = 15.0


def _args(every_frame: bool) -> argparse.Namespace:
    return argparse.Namespace(every_frame=every_frame, realtime=False)


@pytest.mark.parametrize("every_frame", [True, False])
def test_every_frame_on_a_live_source_is_named_as_ignored(caplog, every_frame):
    caplog.set_level(logging.WARNING)
    assert _choose_mode(_args(every_frame), _Source(live=True), preview=False) == (False, None)
    warned = [r.getMessage() for r in caplog.records if "--every-frame" in r.getMessage()]
    assert len(warned) == (1 if every_frame else 0)
    if warned:
        assert "rtsp://cam.local/stream" in warned[0] and "newest frame wins" in warned[0]


def test_every_frame_on_a_file_is_taken_quietly(caplog):
    caplog.set_level(logging.WARNING)
    assert _choose_mode(_args(True), _Source(live=False), preview=True) == (True, None)
    assert [r for r in caplog.records if "--every-frame" in r.getMessage()] == []
