"""Test clips rendered from scikit-image's real photos: the bundled ``data/sample.mp4``
(``data/make_sample.py``) and the benchmark's default clip are made here.

A slow pan and zoom over each photo in turn, with the frame index printed in a corner so that no
two frames are identical (the benchmark's staleness check relies on that). scikit-image is a
dev/bench dependency, not a runtime one: without it :func:`skimage_photos` raises a
:class:`SourceError` that says what to install.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from edgedetect.errors import SourceError

# (skimage.data name, contains a person) in clip order: people, none, people, none.
PHOTOS = (("astronaut", True), ("chelsea", False), ("camera", True), ("coffee", False))


def skimage_photos() -> list[tuple[str, np.ndarray, bool]]:
    """scikit-image's bundled real photos as BGR: (name, image, has_person)."""
    try:
        import skimage.data as skdata  # noqa: PLC0415 - dev/bench dependency only
    except ImportError:
        raise SourceError(
            "rendering a benchmark clip needs scikit-image (pip install scikit-image), "
            "or pass --source with a video file"
        ) from None
    out = []
    for name, person in PHOTOS:
        img = getattr(skdata, name)()
        bgr = cv2.cvtColor(img, cv2.COLOR_GRAY2BGR if img.ndim == 2 else cv2.COLOR_RGB2BGR)
        out.append((name, bgr, person))
    return out


def _ken_burns(photo: np.ndarray, size: tuple[int, int], t: float, zoom: float) -> np.ndarray:
    """Crop of ``photo`` covering ``size`` at progress ``t`` in [0, 1]: slow zoom-in and pan."""
    w, h = size
    ph, pw = photo.shape[:2]
    cover = max(w / pw, h / ph)  # scale at which the photo covers the frame
    scale = cover * (1.0 + (zoom - 1.0) * t)
    cw, ch = w / scale, h / scale  # crop size in photo pixels
    cx = pw / 2 + (pw - cw) / 2 * (t - 0.5) * 0.8
    cy = ph / 2 + (ph - ch) / 2 * (0.5 - t) * 0.8
    m = np.array([[scale, 0, w / 2 - cx * scale], [0, scale, h / 2 - cy * scale]], np.float64)
    return cv2.warpAffine(photo, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)


def render_clip(
    path: str | Path,
    size: tuple[int, int] = (640, 480),
    fps: float = 15.0,
    seconds_per_photo: float = 2.0,
    zoom: float = 1.25,
    photos: Sequence[tuple[str, np.ndarray, bool]] | None = None,
    fourcc: str = "mp4v",
) -> list[dict[str, Any]]:
    """Write a clip that pans over each photo in turn; returns its segments.

    Every frame carries its index in the corner, so no two frames are identical (the
    benchmark's staleness check relies on that). Segments: ``{"photo", "person", "first",
    "last"}`` frame indices, inclusive.
    """
    photos = list(photos) if photos is not None else skimage_photos()
    path = Path(path)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*fourcc), fps, size)
    if not writer.isOpened():
        raise SourceError(f"cannot write {path} with codec {fourcc!r}")
    per = max(1, round(seconds_per_photo * fps))
    segments, index = [], 0
    try:
        for name, photo, person in photos:
            segments.append(
                {"photo": name, "person": person, "first": index, "last": index + per - 1}
            )
            for k in range(per):
                frame = _ken_burns(photo, size, k / max(1, per - 1), zoom)
                text = f"{index:04d}"
                fs = size[1] / 720
                (tw, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, fs, 2)
                org = (size[0] - tw - 8, size[1] - 8)
                cv2.rectangle(
                    frame, (org[0] - 4, org[1] - th - 4), (size[0], size[1]), (0, 0, 0), cv2.FILLED
                )
                cv2.putText(
                    frame, text, org, cv2.FONT_HERSHEY_SIMPLEX, fs, (255, 255, 255), 2, cv2.LINE_AA
                )
                writer.write(frame)
                index += 1
    finally:
        writer.release()
    return segments
