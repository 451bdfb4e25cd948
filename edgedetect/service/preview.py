"""Live preview for the service: picamera2 DRM/Qt with an RGBA box overlay, or an OpenCV window.

On a Pi camera source the camera's own preview shows the frames (zero copies in Python) and
only the boxes travel, as a small RGBA overlay through `picam2.set_overlay()`, redrawn when
the detections change. Without a desktop that preview is DRM/KMS (HDMI console); with one it
is Qt. Any other source gets an OpenCV window when a display exists. When no backend can start
(DRM device busy or missing, no display, headless OpenCV build) the reason is logged and the
service runs on without a preview. picamera2 is imported lazily, only on that path.
"""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from edgedetect.frame import Frame

import cv2
import numpy as np

log = logging.getLogger("edgedetect.preview")

OVERLAY_WIDTH = 640  # the overlay is scaled to the preview window; drawing it small is cheaper


class Preview(Protocol):
    """A live preview the service sink draws each frame into: `PicameraPreview`, `OpenCVPreview`."""

    def __call__(self, frame: Frame, xyxy: np.ndarray, labels: list[str]) -> None: ...

    def close(self) -> None: ...


def _has_desktop() -> bool:
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def draw_overlay_rgba(size: tuple[int, int], xyxy: np.ndarray, labels: list[str]) -> np.ndarray:
    """Transparent RGBA image of `size` (w, h) frame pixels scaled to OVERLAY_WIDTH, boxes drawn."""
    w, h = size
    scale = OVERLAY_WIDTH / float(w)
    ow, oh = OVERLAY_WIDTH, max(1, round(h * scale))
    rgba = np.zeros((oh, ow, 4), dtype=np.uint8)
    for (x1, y1, x2, y2), text in zip(np.asarray(xyxy).reshape(-1, 4) * scale, labels, strict=True):
        p1, p2 = (int(x1), int(y1)), (int(x2), int(y2))
        cv2.rectangle(rgba, p1, p2, (0, 255, 0, 255), 2)
        if text:
            cv2.putText(
                rgba,
                text,
                (p1[0] + 2, max(12, p1[1] - 4)),
                cv2.FONT_HERSHEY_SIMPLEX,
                0.45,
                (0, 255, 0, 255),
                1,
                cv2.LINE_AA,
            )
    return rgba


class PicameraPreview:
    """Camera-side preview (DRM or Qt) for a PicameraSource; boxes via set_overlay."""

    def __init__(self, picam2: Any, backend: str) -> None:
        from picamera2 import Preview  # Pi only, lazily

        # Qt: the GPU-accelerated QTGL window when GL works, else the software QT one.
        kinds = [Preview.DRM] if backend == "drm" else [Preview.QTGL, Preview.QT]
        self.cam = picam2
        self.backend = backend
        self._last_key: tuple | None = None
        # The source started the camera with picamera2's null event loop; swap it for the real
        # preview. stop()/start() restarts streaming only: the camera stays open and configured.
        picam2.stop()
        try:
            picam2.stop_preview()
            for i, kind in enumerate(kinds):
                try:
                    picam2.start_preview(kind)
                    break
                except Exception:
                    if i == len(kinds) - 1:
                        raise
        finally:
            picam2.start()
        log.info("preview: picamera2 %s preview with box overlay", backend.upper())

    def __call__(self, frame: Frame, xyxy: np.ndarray, labels: list[str]) -> None:
        key = (tuple(np.round(np.asarray(xyxy), 0).ravel()), tuple(labels))
        if key == self._last_key:
            return  # unchanged boxes: keep the overlay the camera already has
        self._last_key = key
        self.cam.set_overlay(draw_overlay_rgba(frame.size, xyxy, labels) if len(labels) else None)

    def close(self) -> None:
        try:
            self.cam.set_overlay(None)
        except Exception:
            pass


class OpenCVPreview:
    """An OpenCV window (needs a display and a GUI-enabled OpenCV build)."""

    WINDOW = "edgedetect"

    def __init__(self) -> None:
        cv2.namedWindow(self.WINDOW, cv2.WINDOW_NORMAL)  # raises cv2.error on headless builds
        self.backend = "opencv"
        log.info("preview: OpenCV window")

    def __call__(self, frame: Frame, xyxy: np.ndarray, labels: list[str]) -> None:
        from edgedetect.overlay import draw_status

        img = frame.image.copy()
        for (x1, y1, x2, y2), text in zip(
            np.asarray(xyxy).reshape(-1, 4).astype(int), labels, strict=True
        ):
            cv2.rectangle(img, (x1, y1), (x2, y2), (0, 200, 0), 2)
            cv2.putText(
                img, text, (x1 + 2, max(12, y1 - 4)), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 200, 0), 1
            )
        cv2.imshow(self.WINDOW, draw_status(img, f"{len(labels)} person(s)"))
        cv2.waitKey(1)

    def close(self) -> None:
        try:
            cv2.destroyWindow(self.WINDOW)
        except cv2.error:
            pass


def open_preview(backend: str, source: Any) -> Preview | None:
    """The best available preview for `source`, or None (reason logged). Never raises."""
    inner = getattr(source, "inner", source)
    picam2 = getattr(inner, "_cam", None) if type(inner).__name__ == "PicameraSource" else None
    choices = (
        [backend]
        if backend != "auto"
        else ((["qt", "drm"] if _has_desktop() else ["drm"]) if picam2 is not None else ["opencv"])
    )
    for choice in choices:
        try:
            if choice in ("drm", "qt"):
                if picam2 is None:
                    raise RuntimeError("the camera preview needs the 'picam' source")
                if choice == "qt" and not _has_desktop():
                    raise RuntimeError("no desktop (DISPLAY/WAYLAND_DISPLAY unset)")
                return PicameraPreview(picam2, choice)
            if not _has_desktop():
                raise RuntimeError("no display (DISPLAY/WAYLAND_DISPLAY unset)")
            return OpenCVPreview()
        except Exception as e:  # DRM busy/missing, no display, headless OpenCV: run on without
            log.warning(
                "preview %s unavailable (%s); running without preview "
                "(set [preview] enabled = false to silence this)",
                choice,
                e,
            )
    return None
