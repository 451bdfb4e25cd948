"""The newest frame and its boxes, for /snapshot.jpg and /stream.mjpg.

JPEG encoding happens on demand in the HTTP thread, at most once per picture: with no viewer the
service spends nothing on it. A visit ended by an outage (`ServiceSink.end_visit`) takes the boxes
off the last frame (`drop_boxes`): the stream then shows that picture bare, as the count is 0.
"""

from __future__ import annotations

import threading
from typing import Any

import cv2
import numpy as np

from edgedetect.detections import Detections


class LiveView:
    """Holds the newest frame and detections; `jpeg()` encodes them once per version (a new frame,
    or its boxes dropped)."""

    def __init__(self, quality: int = 75) -> None:
        self.quality = quality
        self._lock = threading.Lock()
        self._frame: Any = None
        self._dets: Detections | None = None
        self._version = 0  # what jpeg() encodes: +1 per frame and per boxes dropped
        self._cache: tuple[int, bytes] | None = None

    def update(self, frame: Any, dets: Detections) -> None:
        with self._lock:
            self._frame, self._dets = frame, dets
            self._version += 1

    def drop_boxes(self) -> None:
        """The people of the last frame are gone (their visit ended without frames): the picture
        stays, without their boxes."""
        with self._lock:
            if self._frame is not None and self._dets is not None:
                self._dets = None
                self._version += 1

    @property
    def frame(self) -> Any:
        """The newest frame (None before the first)."""
        with self._lock:
            return self._frame

    def jpeg(self) -> tuple[int, bytes] | None:
        """(version, JPEG) of the newest picture with its boxes; None before the first frame."""
        with self._lock:
            frame, dets, version, cache = self._frame, self._dets, self._version, self._cache
        if frame is None:
            return None
        if cache is not None and cache[0] == version:
            return cache
        img = annotate(frame.image, dets)
        ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, int(self.quality)])
        if not ok:
            return None
        got = (version, buf.tobytes())
        with self._lock:
            self._cache = got
        return got


def annotate(image: np.ndarray, dets: Detections | None) -> np.ndarray:
    """Boxes with labels (and track ids when known) on a copy of `image`."""
    from edgedetect.overlay import draw_detections

    if dets is None or len(dets) == 0:
        return image.copy()
    return draw_detections(image, dets)
