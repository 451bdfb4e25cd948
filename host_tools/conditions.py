"""Camera conditions: what a small camera in poor light makes of a scene.

A Pi camera at night raises its gain (noise), loses colour under IR light (grey with a tint),
flattens and darkens the picture, and a cheap lens or a dirty window softens it. The primitives
here work on float32 RGB in [0, 1]. Training draws them at random
(``host_tools.ssd.augment.camera_conditions``); ``host_tools.evaluate --condition NAME`` applies one
fixed, seeded condition to every image to measure how a model holds up.

Hand-written rather than taken from albumentations: five lines of OpenCV/numpy each, and one
definition shared by training and evaluation keeps "the same noise" meaning the same thing in both.
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

from edgedetect.errors import EdgeDetectError


def to_gray(f: np.ndarray, tint: np.ndarray | None = None) -> np.ndarray:
    """Grey, as under IR light; ``tint`` (3 RGB gains) adds the pink or green cast of IR frames."""
    g = np.repeat(cv2.cvtColor(f, cv2.COLOR_RGB2GRAY)[..., None], 3, axis=2)
    return g if tint is None else g * tint.astype(np.float32)


def darken(f: np.ndarray, gain: float, gamma: float) -> np.ndarray:
    """Less light: ``gain * f ** gamma`` (gamma > 1 sinks the shadows first)."""
    out: np.ndarray = gain * f**gamma
    return out


def flatten(f: np.ndarray, low: float, span: float) -> np.ndarray:
    """Low contrast (haze, a lit window, IR glare): ``low + span * f``."""
    return low + span * f


def sensor_noise(f: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Gain noise per pixel: a luma part of ``sigma`` and a colour part of a third of it."""
    luma = rng.normal(0.0, sigma, f.shape[:2]).astype(np.float32)[..., None]
    return f + luma + rng.normal(0.0, sigma / 3, f.shape).astype(np.float32)


def soften(f: np.ndarray, sigma: float) -> np.ndarray:
    """Out of focus or behind a dirty window: a Gaussian blur of ``sigma`` pixels."""
    out: np.ndarray = cv2.GaussianBlur(f, (0, 0), sigma)
    return out


def as_float(rgb: np.ndarray) -> np.ndarray:
    return rgb.astype(np.float32) / 255.0


def as_uint8(f: np.ndarray) -> np.ndarray:
    out: np.ndarray = np.clip(f * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return out


# The fixed conditions of ``evaluate --condition``, on float RGB at the image's own size.
_IR_TINT = np.array([1.05, 0.85, 1.1], np.float32)
Condition = Callable[[np.ndarray, np.random.Generator], np.ndarray]
CONDITIONS: dict[str, Condition] = {
    "gray": lambda f, rng: to_gray(f),
    "noise": lambda f, rng: sensor_noise(f, 0.04, rng),
    "dark": lambda f, rng: sensor_noise(darken(f, 0.35, 2.2), 0.03, rng),
    "night_ir": lambda f, rng: sensor_noise(flatten(to_gray(f, _IR_TINT), 0.15, 0.6), 0.04, rng),
    "blur": lambda f, rng: soften(f, 2.0),
}


def camera_condition(name: str, seed: int = 0) -> Callable[[np.ndarray, int], np.ndarray]:
    """Condition ``name`` as a function of (BGR image, its index in the set), seeded by both."""
    if name not in CONDITIONS:
        raise EdgeDetectError(f"--condition {name!r} is not one of {', '.join(CONDITIONS)}")
    apply = CONDITIONS[name]

    def seen_through(image_bgr: np.ndarray, index: int) -> np.ndarray:
        rgb = as_float(cv2.cvtColor(image_bgr, cv2.COLOR_BGR2RGB))
        out = as_uint8(apply(rgb, np.random.default_rng([seed, index])))
        return cv2.cvtColor(out, cv2.COLOR_RGB2BGR)

    return seen_through
