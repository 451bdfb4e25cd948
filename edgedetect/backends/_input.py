"""Image -> input tensor conversions the families share (stretch for SSDs, letterbox for YOLO)."""

from __future__ import annotations

import cv2
import numpy as np


def check_image(image_bgr: np.ndarray) -> np.ndarray:
    """A BGR (or BGRA) uint8 image as (H, W, 3), or a ValueError naming the shape it got."""
    if image_bgr is None or image_bgr.ndim != 3 or image_bgr.shape[2] not in (3, 4):
        shape = None if image_bgr is None else image_bgr.shape
        raise ValueError(f"expected a BGR image of shape (H, W, 3), got {shape}")
    return image_bgr[:, :, :3] if image_bgr.shape[2] == 4 else image_bgr


def stretched_rgb(image_bgr: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize to ``size`` (w, h) ignoring aspect, as the OD API's ``fixed_shape_resizer`` trains."""
    image_bgr = check_image(image_bgr)
    w, h = size
    if image_bgr.shape[1] != w or image_bgr.shape[0] != h:
        image_bgr = cv2.resize(image_bgr, (w, h), interpolation=cv2.INTER_LINEAR)
    return cv2.cvtColor(image_bgr, cv2.COLOR_BGR2RGB)


def letterbox_geometry(
    image_size: tuple[int, int], size: tuple[int, int]
) -> tuple[float, int, int]:
    """(scale, left, top) that fit an image of ``image_size`` into ``size`` keeping its aspect."""
    (iw, ih), (w, h) = image_size, size
    scale = min(w / iw, h / ih)
    new_w, new_h = round(iw * scale), round(ih * scale)
    return scale, round((w - new_w) / 2 - 0.1), round((h - new_h) / 2 - 0.1)


def letterboxed_rgb(image_bgr: np.ndarray, size: tuple[int, int], fill: int = 114) -> np.ndarray:
    """Resize keeping aspect, pad to ``size`` with grey ``fill``, as Ultralytics' LetterBox does."""
    image_bgr = check_image(image_bgr)
    scale, left, top = letterbox_geometry((image_bgr.shape[1], image_bgr.shape[0]), size)
    new_w, new_h = round(image_bgr.shape[1] * scale), round(image_bgr.shape[0] * scale)
    out = np.full((size[1], size[0], 3), fill, np.uint8)
    resized = cv2.resize(image_bgr, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    out[top : top + new_h, left : left + new_w] = resized
    return cv2.cvtColor(out, cv2.COLOR_BGR2RGB)


def ssd_tensor(rgb: np.ndarray, dtype: np.dtype, mean: float, std: float) -> np.ndarray:
    """uint8 models take raw pixels, int8 ones pixels - 128, float ones ``(p - mean) / std``."""
    if dtype == np.uint8:
        tensor = rgb
    elif dtype == np.int8:
        tensor = (rgb.astype(np.int16) - 128).astype(np.int8)
    else:
        tensor = (rgb.astype(np.float32) - mean) / std
    return tensor[np.newaxis]


def unit_tensor(rgb: np.ndarray, dtype: np.dtype, quantization: tuple[float, int]) -> np.ndarray:
    """Pixels / 255 (YOLO convention), quantized with the input's (scale, zero point) if integer."""
    x = rgb.astype(np.float32) / 255.0
    if dtype in (np.uint8, np.int8):
        scale, zero = quantization
        info = np.iinfo(dtype)
        x = np.clip(np.round(x / scale + zero), info.min, info.max).astype(dtype)
    return x[np.newaxis]


class StretchedInput:
    """``prepare`` of the SSD families: the image stretched to the input size, then
    :func:`ssd_tensor`. A base class so each family states only its outputs and ``decode``."""

    def __init__(self, size: tuple[int, int], dtype: np.dtype, mean: float, std: float) -> None:
        self.size, self.dtype, self.mean, self.std = size, dtype, mean, std

    def prepare(self, image_bgr: np.ndarray) -> np.ndarray:
        return ssd_tensor(stretched_rgb(image_bgr, self.size), self.dtype, self.mean, self.std)
