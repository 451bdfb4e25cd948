"""Reading image files, with the one error message every tool gives for a bad one."""

from __future__ import annotations

import re
from pathlib import Path

import cv2
import numpy as np

from edgedetect.errors import ImageError
from edgedetect.runtime import quiet_opencv, quiet_stderr

# A JPEG marker inside entropy-coded data: FF followed by anything but a stuffed 00, a restart
# marker (D0-D7) or another fill FF.
_JPEG_MARKER = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def jpeg_truncated(data: bytes) -> bool:
    """True when a JPEG stream ends before its end-of-image marker (FF D9).

    libjpeg decodes such a file anyway, fills the missing rows with grey and only prints
    "Premature end of JPEG file"; walking the marker segments finds it in a millisecond. Bytes
    after the end marker (camera trailers, motion photos) are fine. Not a JPEG: False.
    """
    if not data.startswith(b"\xff\xd8"):
        return False
    n, i = len(data), 2
    while True:
        if i >= n:
            return True
        if data[i] != 0xFF:
            return False  # no marker where one must be: broken, not truncated; the decoder says so
        while i < n and data[i] == 0xFF:  # a marker, after any fill bytes
            i += 1
        if i >= n:
            return True
        marker = data[i]
        i += 1
        if marker == 0xD9:
            return False
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:
            continue  # markers without a length
        if i + 2 > n:
            return True
        i += int.from_bytes(data[i : i + 2], "big")
        if i > n:
            return True
        if marker == 0xDA:  # start of scan: entropy-coded data runs up to the next real marker
            m = _JPEG_MARKER.search(data, i)
            if m is None:
                return True
            i = m.start()


def check_file(path: Path, what: str) -> None:
    """ImageError unless ``path`` is a file: "not found", "is a directory" or "not a regular
    file" (/dev/null exists, so "not found" would be wrong)."""
    if path.is_dir():
        raise ImageError(
            f"{what} {path} is a directory, not an image file; pass an image inside it "
            f"(or run on the folder with --source dir:{path})"
        )
    if not path.exists():
        raise ImageError(f"{what} not found: {path}")
    if not path.is_file():
        raise ImageError(f"{what} {path} is not a regular file (a device or a pipe); pass an image")


def read_bgr(path: str | Path, what: str = "image") -> np.ndarray:
    """Decode ``path`` as a BGR uint8 image, or raise :class:`ImageError` naming the file.

    ``what`` says which image it is in the message ("training image", "calibration image", ...).
    A truncated JPEG or PNG is an error, not an image with grey rows.
    """
    path = Path(path)
    check_file(path, what)
    try:
        data = path.read_bytes()
    except OSError as err:
        raise ImageError(f"cannot read {what} {path}: {err.strerror}") from None
    if not data:  # OpenCV asserts on an empty buffer instead of returning None
        raise ImageError(f"{what} {path} is empty (0 bytes); copy or export it again")
    if jpeg_truncated(data) or (data.startswith(_PNG_SIGNATURE) and b"IEND" not in data[-12:]):
        raise ImageError(
            f"{what} {path} is truncated ({len(data)} bytes, the end is missing); "
            "copy or export it again"
        )
    quiet_opencv()
    with quiet_stderr():  # libjpeg/libpng warnings about a damaged file: the line below says it
        image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise ImageError(
            f"cannot read {what} {path}: not an image or truncated; pass a JPEG or PNG"
        )
    return image
