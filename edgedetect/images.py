"""Reading image files, with the one error message every tool gives for a bad one, and writing
files whole."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Literal

import cv2
import numpy as np

from edgedetect.errors import EdgeDetectError, ImageError
from edgedetect.runtime import quiet_opencv, quiet_stderr

# A JPEG marker inside entropy-coded data: FF followed by anything but a stuffed 00, a restart
# marker (D0-D7) or another fill FF.
_JPEG_MARKER = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# JPEG start-of-frame markers (C0-CF except DHT C4, JPG C8 and DAC CC): they carry the size.
_JPEG_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
# A PNM header: magic, then width and height, with whitespace or comment lines between.
_PNM_HEADER = re.compile(rb"P[1-7](?:\s|#[^\n]*\n)+(\d+)(?:\s|#[^\n]*\n)+(\d+)")
# The largest image read_bgr decodes: four 4K frames (3840x2160), about 33 MP. A 12000x9000 photo
# takes ~700 MB to decode and preprocess, more than a Pi can spare, and the detector sees a few
# hundred pixels a side anyway. Refused rather than decoded reduced: detections, overlays and
# dataset ground truth are all in full-size coordinates.
MAX_IMAGE_PIXELS = 4 * 3840 * 2160
# Videos an image reader may be handed by mistake (`edgedetect detect clip.mp4`): named as such.
VIDEO_SUFFIXES = frozenset({".mp4", ".m4v", ".mov", ".mkv", ".avi", ".webm", ".h264", ".mjpeg"})


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


def png_truncated(data: bytes) -> bool:
    """True when a PNG's chunks run out before its IEND chunk (libpng would fill the missing
    rows). Walked chunk by chunk rather than looking for IEND at the very end: bytes after IEND
    (a tool's trailer, padding) leave a whole image that every viewer shows. Not a PNG: False."""
    if not data.startswith(_PNG_SIGNATURE):
        return False
    i, n = len(_PNG_SIGNATURE), len(data)
    while i + 8 <= n:
        length, kind = int.from_bytes(data[i : i + 4], "big"), data[i + 4 : i + 8]
        i += 12 + length  # length, type, data, CRC
        if kind == b"IEND":
            return i > n
    return True


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from a JPEG's start-of-frame segment, walking the segments before it."""
    n, i = len(data), 2
    while i + 4 <= n and data[i] == 0xFF:
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
        elif 0xD0 <= marker <= 0xD7 or marker == 0x01:  # markers without a length
            i += 2
        elif marker in _JPEG_SOF:
            if i + 9 > n:
                return None
            height = int.from_bytes(data[i + 5 : i + 7], "big")
            return (int.from_bytes(data[i + 7 : i + 9], "big"), height) if height else None
        elif marker in (0xD9, 0xDA):  # end of image or start of scan: no frame header before it
            return None
        else:
            i += 2 + int.from_bytes(data[i + 2 : i + 4], "big")
    return None


def _tiff_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from the first IFD of a classic TIFF (tags 256 and 257)."""
    if data[:4] not in (b"II*\x00", b"MM\x00*"):
        return None
    order: Literal["little", "big"] = "little" if data[:2] == b"II" else "big"

    def num(at: int, size: int) -> int:
        return int.from_bytes(data[at : at + size], order)

    ifd = num(4, 4)
    found: dict[int, int] = {}
    for k in range(num(ifd, 2) if ifd + 2 <= len(data) else 0):
        at = ifd + 2 + 12 * k
        tag, kind = num(at, 2), num(at + 2, 2)
        if tag in (256, 257) and kind in (3, 4):  # SHORT or LONG, stored in the value field
            found[tag] = num(at + 8, 2 if kind == 3 else 4)
    return (found[256], found[257]) if 256 in found and 257 in found else None


def _webp_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from the first chunk of a WebP: extended, lossless or lossy."""
    le: Literal["little"] = "little"
    chunk = data[12:16]
    if chunk == b"VP8X" and len(data) >= 30:  # 24-bit sizes minus one
        return 1 + int.from_bytes(data[24:27], le), 1 + int.from_bytes(data[27:30], le)
    if chunk == b"VP8L" and len(data) >= 25:  # 14-bit sizes minus one, packed
        bits = int.from_bytes(data[21:25], le)
        return 1 + (bits & 0x3FFF), 1 + ((bits >> 14) & 0x3FFF)
    if chunk == b"VP8 " and len(data) >= 30:  # 14-bit sizes after the key frame start code
        return int.from_bytes(data[26:28], le) & 0x3FFF, int.from_bytes(data[28:30], le) & 0x3FFF
    return None


def image_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from the header of a JPEG, PNG, BMP, WebP, TIFF or PNM file, else None.

    Read before decoding, so that an image too large for the machine is refused before it takes
    the memory. OpenCV has no header-only call, and its own limit (OPENCV_IO_MAX_IMAGE_PIXELS) is
    read once when cv2 loads. Pillow reads headers, but it is no dependency of the runtime: one
    more package on every Pi for these few fixed fields (checked on all 4,718 images of the
    shared data sets against the decoded sizes).
    """
    le: Literal["little"] = "little"
    if data.startswith(b"\xff\xd8"):
        return _jpeg_size(data)
    if data.startswith(_PNG_SIGNATURE) and data[12:16] == b"IHDR":
        return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    if data.startswith(b"BM") and len(data) >= 26:
        if int.from_bytes(data[14:18], le) == 12:  # OS/2 header: 16-bit sizes
            return int.from_bytes(data[18:20], le), int.from_bytes(data[20:22], le)
        w, h = (int.from_bytes(data[a : a + 4], le, signed=True) for a in (18, 22))
        return abs(w), abs(h)  # a negative height means rows stored top-down
    if data.startswith(b"RIFF") and data[8:12] == b"WEBP":
        return _webp_size(data)
    m = _PNM_HEADER.match(data[:1024])
    if m:
        return int(m.group(1)), int(m.group(2))
    return _tiff_size(data)


def opencv_path(
    path: str | Path,
    what: str,
    error: type[EdgeDetectError] = EdgeDetectError,
    fix: str = "rename it (its letters in UTF-8)",
    shown: str | None = None,
) -> str:
    """`path` as the str OpenCV's video and image file functions take. Their Python binding
    crashes the process (a segmentation fault) on a str that is not valid UTF-8, which is how
    Python holds a file name in another encoding (Latin-1 bytes become lone surrogates); such a
    name raises `error` naming it (`what`, then `shown` or the path) instead."""
    text = str(path)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        shown = (shown or text).encode("utf-8", "backslashreplace").decode("utf-8")
        raise error(f"{what} {shown} is not UTF-8 text, which OpenCV cannot take; {fix}") from None
    return text


def check_file(path: Path, what: str) -> None:
    """ImageError unless ``path`` is a file: "not found", "is a directory" or "not a regular
    file" (/dev/null exists, so "not found" would be wrong)."""
    if path.is_dir():
        raise ImageError(
            f"{what} {path} is a directory, not an image file; pass an image inside it "
            f"(or run on the folder with --source dir:{path})"
        )
    if not path.exists() and path.is_symlink():
        raise ImageError(
            f"{what} {path} is a link to {os.readlink(path)}, which does not exist; "
            "fix or remove the link"
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
    if jpeg_truncated(data) or png_truncated(data):
        raise ImageError(
            f"{what} {path} is truncated ({len(data)} bytes, the end is missing); "
            "copy or export it again"
        )
    size = image_size(data)
    if size is not None and size[0] * size[1] > MAX_IMAGE_PIXELS:
        raise ImageError(
            f"{what} {path} is {size[0]}x{size[1]}: larger than edgedetect reads "
            f"(max {MAX_IMAGE_PIXELS / 1e6:.0f} MP); resize it"
        )
    quiet_opencv()
    with quiet_stderr():  # libjpeg/libpng warnings about a damaged file: the line below says it
        image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None and path.suffix.lower() in VIDEO_SUFFIXES:
        raise ImageError(
            f"{what} {path} is a video, not an image; to run on it: edgedetect run --source {path}"
        )
    if image is None:
        raise ImageError(
            f"cannot read {what} {path}: not an image or truncated; pass a JPEG or PNG"
        )
    return image


@contextmanager
def whole_file(path: Path, tmp: Path | None = None) -> Iterator[Path]:
    """The block writes the file at the yielded ``tmp`` (default: the hidden ``.NAME.tmp``
    beside ``path``), which is renamed to ``path`` once the block ends, so a full disk or a crash
    never leaves part of a file under its final name; on failure (or Ctrl-C) ``tmp`` is removed
    and the error raised."""
    tmp = tmp or path.with_name(f".{path.name}.tmp")
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def free_bytes(directory: Path) -> int:
    """Bytes an unprivileged writer may still use on `directory`'s file system (a folder that
    cannot be asked counts as roomy: its writes fail and say why)."""
    try:
        st = os.statvfs(directory)
    except OSError:
        return 1 << 62
    return st.f_bavail * st.f_frsize


def write_whole(path: Path, data: bytes, tmp: Path | None = None) -> None:
    """Write ``data`` to ``path`` whole or not at all (:func:`whole_file`)."""
    with whole_file(path, tmp) as part, open(part, "wb") as fh:
        fh.write(data)
