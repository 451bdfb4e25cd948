"""A whole PNG with bytes after its IEND chunk (a tool's trailer, padding to a block size) was
refused as "truncated (..., the end is missing)", because IEND was looked for in the last 12
bytes only; every viewer shows such a file. The chunks are now walked to IEND: the image is read,
and a PNG that really ends early is still refused."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import run_edgedetect

from edgedetect.errors import ImageError
from edgedetect.images import read_bgr

IMAGE = Path(__file__).resolve().parents[1] / "data" / "images" / "astronaut.jpg"


@pytest.fixture
def png(tmp_path: Path) -> tuple[Path, np.ndarray]:
    image = read_bgr(IMAGE)
    path = tmp_path / "photo.png"
    assert cv2.imwrite(str(path), image)
    return path, image


@pytest.mark.parametrize(
    "trailer", [b"\x00" * 100, b"x", b"IEND" + b"\x00" * 64], ids=["padding", "a byte", "IEND text"]
)
def test_a_png_with_bytes_after_iend_is_read(png: tuple[Path, np.ndarray], trailer: bytes) -> None:
    path, image = png
    path.write_bytes(path.read_bytes() + trailer)
    assert np.array_equal(read_bgr(path), image)
    res = run_edgedetect("detect", "--json", str(path))
    assert res.returncode == 0, res.stderr
    assert '"width": 512, "height": 512' in res.stdout and "person" in res.stdout


@pytest.mark.parametrize("cut", [1, 12, 1000])
def test_a_png_that_ends_early_is_still_truncated(png: tuple[Path, np.ndarray], cut: int) -> None:
    path, _ = png
    path.write_bytes(path.read_bytes()[:-cut])
    with pytest.raises(ImageError, match=r"is truncated \(\d+ bytes, the end is missing\)"):
        read_bgr(path)
