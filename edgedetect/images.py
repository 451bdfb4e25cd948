"""Reading image files, with the one error message every tool gives for a bad one."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from edgedetect.errors import ImageError


def read_bgr(path: str | Path, what: str = "image") -> np.ndarray:
    """Decode ``path`` as a BGR uint8 image, or raise :class:`ImageError` naming the file.

    ``what`` says which image it is in the message ("training image", "calibration image", ...).
    """
    path = Path(path)
    if not path.is_file():
        raise ImageError(f"{what} not found: {path}")
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise ImageError(f"cannot read {what} {path}: not an image or truncated; pass a JPEG or PNG")
    return image
