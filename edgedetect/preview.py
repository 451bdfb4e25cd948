"""OpenCV window preview for ``edgedetect run``.

The window is driven from the *main* thread (HighGUI back-ends, Qt and Cocoa in particular, must
be used from one thread, normally the main one); the output thread only drops the newest
annotated frame into a one-slot mailbox, so a slow display never slows the pipeline.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable

import cv2
import numpy as np

from edgedetect.frame import Result
from edgedetect.overlay import draw_detections, draw_status
from edgedetect.pipeline import LatestSlot

log = logging.getLogger(__name__)

WINDOW = "edgedetect"
_QUIT_KEYS = (ord("q"), ord("Q"), 27)  # q or Esc


def display_available() -> tuple[bool, str]:
    """Whether an OpenCV window can be shown here, and if not, why (for a one-line notice)."""
    if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return False, "no display (DISPLAY/WAYLAND_DISPLAY not set)"
    try:
        cv2.namedWindow("edgedetect-probe", cv2.WINDOW_NORMAL)
        cv2.destroyWindow("edgedetect-probe")
        cv2.waitKey(1)
    except cv2.error:
        return False, (
            "OpenCV has no GUI support (opencv-python-headless); "
            "pip install opencv-python for a window"
        )
    except Exception as exc:  # a broken X connection raises assorted errors
        return False, f"cannot open a window ({exc})"
    return True, ""


class PreviewSink:
    """Sink that hands the newest annotated frame (with an fps/status line) to the window."""

    name = "preview"

    def __init__(self) -> None:
        self.slot: LatestSlot[np.ndarray] = LatestSlot("preview")
        self._times: list[float] = []

    def __call__(self, result: Result) -> None:
        # a copy: the status line must not end up in result.annotated, which later sinks read
        image = (
            result.annotated.copy()
            if result.annotated is not None
            else draw_detections(result.frame.image, result.detections)
        )
        now = time.monotonic()
        self._times = [t for t in self._times if t > now - 2.0] + [now]
        fps = (
            (len(self._times) - 1) / (self._times[-1] - self._times[0])
            if len(self._times) > 1
            else 0.0
        )
        status = f"{fps:4.1f} fps  {len(result.detections)} det  #{result.frame.id}"
        if result.skipped:
            status += "  (no motion)"
        self.slot.put(draw_status(image, status))

    def close(self) -> None:
        self.slot.close()


def show_until_done(
    preview: PreviewSink, is_running: Callable[[], bool], request_stop: Callable[[], object]
) -> bool:
    """Show frames in the main thread until the pipeline ends or the user quits.

    Returns True when the user asked to quit (q, Esc or closing the window).
    """
    cv2.namedWindow(WINDOW, cv2.WINDOW_NORMAL)
    shown = False
    try:
        while is_running() or len(preview.slot):
            image = preview.slot.get(0.03)
            if image is not None:
                cv2.imshow(WINDOW, image)
                shown = True
            key = cv2.waitKey(1) & 0xFF
            closed = shown and cv2.getWindowProperty(WINDOW, cv2.WND_PROP_VISIBLE) < 1
            if key in _QUIT_KEYS or closed:
                request_stop()
                return True
        return False
    finally:
        cv2.destroyWindow(WINDOW)
        cv2.waitKey(1)
