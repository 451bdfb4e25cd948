"""Draw detections (and a status line) on a frame with plain OpenCV calls."""

from __future__ import annotations

from typing import TYPE_CHECKING

import cv2
import numpy as np

if TYPE_CHECKING:
    from edgedetect.detections import Detections

# BGR colours by class id; person (0) is green, the rest cycle through a short, readable palette.
_PALETTE = ((0, 200, 0), (255, 128, 0), (0, 128, 255), (200, 0, 200), (0, 200, 200), (60, 60, 255))


def class_color(class_id: int) -> tuple[int, int, int]:
    """A stable BGR colour for a class id."""
    return _PALETTE[int(class_id) % len(_PALETTE)]


def draw_detections(
    image: np.ndarray, detections: Detections, *, copy: bool = True, thickness: int | None = None
) -> np.ndarray:
    """Return ``image`` with one labelled box per detection.

    Draws on a copy by default so that the frame a ``Result`` holds stays the camera's pixels
    (other sinks, e.g. motion or snapshots of the raw frame, may read it after us).
    """
    out = image.copy() if copy else image
    if len(detections) == 0:
        return out
    h, w = out.shape[:2]
    t = thickness or max(1, round(min(h, w) / 240))
    scale = max(0.4, min(h, w) / 900)
    captions = box_labels(detections)
    for i in range(len(detections)):
        x1, y1, x2, y2 = (int(round(float(v))) for v in detections.xyxy[i])
        x1, x2 = max(0, min(x1, w - 1)), max(0, min(x2, w - 1))
        y1, y2 = max(0, min(y1, h - 1)), max(0, min(y2, h - 1))
        color = class_color(int(detections.class_id[i]))
        cv2.rectangle(out, (x1, y1), (x2, y2), color, t, cv2.LINE_AA)
        text = captions[i]
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
        ty = y1 - 4 if y1 - th - base - 4 >= 0 else y1 + th + base + 4
        lx = max(0, min(x1, w - 1 - (tw + 4)))  # a box at the right edge: label moved inside
        cv2.rectangle(out, (lx, ty - th - base), (lx + tw + 4, ty + base // 2), color, cv2.FILLED)
        cv2.putText(
            out,
            text,
            (lx + 2, ty - base // 2),
            cv2.FONT_HERSHEY_SIMPLEX,
            scale,
            (0, 0, 0),
            1,
            cv2.LINE_AA,
        )
    return out


def box_labels(detections: Detections, scores: bool = True) -> list[str]:
    """One caption per box: ``#3 person 0.95`` (track id when tracked, label, score if asked)."""
    track = detections.tracker_id
    out = []
    for i, label in enumerate(detections.labels):
        text = f"{label} {float(detections.score[i]):.2f}" if scores else label
        out.append(f"#{int(track[i])} {text}" if track is not None and int(track[i]) >= 0 else text)
    return out


def draw_status(image: np.ndarray, text: str) -> np.ndarray:
    """Write a one-line status (fps, counts) in the top-left corner, in place."""
    scale = max(0.45, min(image.shape[:2]) / 900)
    (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
    cv2.rectangle(image, (0, 0), (tw + 8, th + base + 8), (0, 0, 0), cv2.FILLED)
    cv2.putText(
        image, text, (4, th + 4), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1, cv2.LINE_AA
    )
    return image
