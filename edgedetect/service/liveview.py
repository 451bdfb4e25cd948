"""The newest frame and its boxes, for /snapshot.jpg and /stream.mjpg.

JPEG encoding happens on demand in the HTTP thread, at most once per frame: with no viewer the
service spends nothing on it.
"""

from __future__ import annotations

import threading
from typing import Any

import cv2
import numpy as np

from edgedetect.detections import Detections


class LiveView:
    """Holds the newest frame and detections; `jpeg()` encodes them once per frame id."""

    def __init__(self, quality: int = 75) -> None:
        self.quality = quality
        self._lock = threading.Lock()
        self._frame: Any = None
        self._dets: Detections | None = None
        self._cache: tuple[int, bytes] | None = None

    def update(self, frame: Any, dets: Detections) -> None:
        with self._lock:
            self._frame, self._dets = frame, dets

    @property
    def frame(self) -> Any:
        """The newest frame (None before the first)."""
        with self._lock:
            return self._frame

    def jpeg(self) -> tuple[int, bytes] | None:
        with self._lock:
            frame, dets, cache = self._frame, self._dets, self._cache
        if frame is None:
            return None
        if cache is not None and cache[0] == frame.id:
            return cache
        img = annotate(frame.image, dets)
        ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, int(self.quality)])
        if not ok:
            return None
        got = (frame.id, buf.tobytes())
        with self._lock:
            self._cache = got
        return got


def annotate(image: np.ndarray, dets: Detections | None) -> np.ndarray:
    """Boxes with labels (and track ids when known) on a copy of `image`."""
    from edgedetect.overlay import draw_detections

    if dets is None or len(dets) == 0:
        return image.copy()
    return draw_detections(image, dets)
