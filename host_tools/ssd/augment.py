"""SSD data augmentation in numpy/OpenCV: photometric distortion, zoom-out (expand), IoU-constrained
random crop, horizontal flip (the OD-API ``ssd_random_crop``/``random_horizontal_flip`` recipe).

Boxes are (N, 4) ``ymin, xmin, ymax, xmax`` normalised to the current image; every function returns
the new image and boxes, and ``keep`` masks of boxes that survived a crop.
"""

from __future__ import annotations

import cv2
import numpy as np

from edgedetect.boxes import box_iou
from host_tools import conditions as cond
from host_tools.ssd.config import AugmentConfig

_CROP_MIN_IOUS = (0.1, 0.3, 0.5, 0.7, 0.9, 1.0)


def photometric(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Random brightness, contrast, saturation and hue (each with p = 0.5), on uint8 RGB."""
    f = img.astype(np.float32)
    if rng.random() < 0.5:
        f += rng.uniform(-32, 32)
    if rng.random() < 0.5:
        f = (f - f.mean()) * rng.uniform(0.6, 1.4) + f.mean()
    out: np.ndarray = np.clip(f, 0, 255).astype(np.uint8)
    if rng.random() < 0.5 or rng.random() < 0.5:
        hsv = cv2.cvtColor(out, cv2.COLOR_RGB2HSV).astype(np.float32)
        if rng.random() < 0.5:
            hsv[..., 1] *= rng.uniform(0.6, 1.4)
        if rng.random() < 0.5:
            hsv[..., 0] = (hsv[..., 0] + rng.uniform(-9, 9)) % 180
        out = cv2.cvtColor(np.clip(hsv, 0, 255).astype(np.uint8), cv2.COLOR_HSV2RGB)
    return out


def camera_conditions(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A random night-camera version of uint8 RGB ``img`` at the model's input size (so the noise is
    per input pixel): grey with a tint, dark, flat, noisy, soft, each drawn on its own.

    Why: the mix is mostly daylight colour photos; gain noise of 10/255 alone cost the model 22
    points of AP50 on capston2/valid (``evaluate --condition noise``), and a Pi camera at night
    makes more.
    """
    f = cond.as_float(img)
    if rng.random() < 0.5:
        f = cond.to_gray(f, rng.uniform(0.85, 1.15, 3) if rng.random() < 0.5 else None)
    if rng.random() < 0.5:
        f = cond.darken(f, rng.uniform(0.3, 1.0), rng.uniform(1.0, 2.0))
    if rng.random() < 0.3:
        low = rng.uniform(0.0, 0.2)
        f = cond.flatten(f, low, rng.uniform(0.5, 1.0 - low))
    if rng.random() < 0.7:
        f = cond.sensor_noise(f, rng.uniform(0.01, 0.08), rng)
    if rng.random() < 0.3:
        f = cond.soften(f, rng.uniform(0.5, 1.2))
    return cond.as_uint8(f)


def expand(img: np.ndarray, boxes: np.ndarray, rng: np.random.Generator, max_ratio: float):
    """Zoom out: put the image on a larger mean-grey canvas so that people appear smaller."""
    h, w = img.shape[:2]
    ratio = rng.uniform(1.0, max_ratio)
    nh, nw = int(h * ratio), int(w * ratio)
    top, left = int(rng.uniform(0, nh - h)), int(rng.uniform(0, nw - w))
    canvas = np.full((nh, nw, 3), 124, np.uint8)
    canvas[top : top + h, left : left + w] = img
    b = boxes.copy()
    b[:, [0, 2]] = (b[:, [0, 2]] * h + top) / nh
    b[:, [1, 3]] = (b[:, [1, 3]] * w + left) / nw
    return canvas, b


def random_crop(img: np.ndarray, boxes: np.ndarray, rng: np.random.Generator, tries: int = 50):
    """SSD crop: a patch whose IoU with some box is >= a random minimum; keeps boxes centred in it.

    Returns (image, boxes, keep) where keep is a mask over the input boxes.
    """
    h, w = img.shape[:2]
    keep_all = np.ones(len(boxes), bool)
    min_iou = _CROP_MIN_IOUS[rng.integers(len(_CROP_MIN_IOUS))]
    if min_iou >= 1.0 or len(boxes) == 0:
        return img, boxes, keep_all
    for _ in range(tries):
        scale = rng.uniform(0.3, 1.0)
        ar = rng.uniform(0.5, 2.0)
        ch = min(1.0, scale / np.sqrt(ar))
        cw = min(1.0, scale * np.sqrt(ar))
        y0, x0 = rng.uniform(0, 1 - ch), rng.uniform(0, 1 - cw)
        patch = np.array([[y0, x0, y0 + ch, x0 + cw]], np.float32)
        if box_iou(patch, boxes).max() < min_iou:
            continue
        cy = (boxes[:, 0] + boxes[:, 2]) / 2
        cx = (boxes[:, 1] + boxes[:, 3]) / 2
        keep = (cy > y0) & (cy < y0 + ch) & (cx > x0) & (cx < x0 + cw)
        if not keep.any():
            continue
        b = boxes[keep].copy()
        b[:, [0, 2]] = np.clip((b[:, [0, 2]] - y0) / ch, 0, 1)
        b[:, [1, 3]] = np.clip((b[:, [1, 3]] - x0) / cw, 0, 1)
        py0, py1 = int(round(y0 * h)), max(int(round((y0 + ch) * h)), int(round(y0 * h)) + 1)
        px0, px1 = int(round(x0 * w)), max(int(round((x0 + cw) * w)), int(round(x0 * w)) + 1)
        return img[py0:py1, px0:px1], b, keep
    return img, boxes, keep_all


def background_crop(
    img: np.ndarray, boxes: np.ndarray, rng: np.random.Generator, tries: int = 30
) -> np.ndarray | None:
    """A patch (0.3-0.8 of each side) that overlaps no box: a person-free scene from a real photo.

    Why: the mix holds 91 person-free photos; the false alarms it makes at night are on scenes
    unlike them, and every photo with people also holds scenes without any. None when no patch of
    ``tries`` is free.
    """
    h, w = img.shape[:2]
    for _ in range(tries):
        ch, cw = rng.uniform(0.3, 0.8), rng.uniform(0.3, 0.8)
        y0, x0 = rng.uniform(0, 1 - ch), rng.uniform(0, 1 - cw)
        if _touches(boxes, y0, x0, y0 + ch, x0 + cw):
            continue
        return _patch(img, y0, x0, y0 + ch, x0 + cw)
    return None


def object_crop(
    img: np.ndarray,
    boxes: np.ndarray,
    objects: np.ndarray,
    rng: np.random.Generator,
    tries: int = 10,
) -> np.ndarray | None:
    """A close-up of one labelled thing that is not a person (it fills 30-80 % of each side),
    touching no person box: a cup, a cat or a chair seen as close as a Pi camera sees it.

    Why: a background crop rarely frames a single object, and a plain object filling a grey night
    frame is what the default still calls a person. None when no such close-up can be cut.
    """
    h, w = img.shape[:2]
    big = objects[(objects[:, 2] - objects[:, 0]) * (objects[:, 3] - objects[:, 1]) >= 0.01]
    if len(big) == 0:
        return None
    for _ in range(tries):
        oy0, ox0, oy1, ox1 = big[rng.integers(len(big))]
        ch = min(1.0, (oy1 - oy0) / rng.uniform(0.3, 0.8))
        cw = min(1.0, (ox1 - ox0) / rng.uniform(0.3, 0.8))
        y0 = float(np.clip(rng.uniform(oy1 - ch, oy0), 0.0, 1.0 - ch))
        x0 = float(np.clip(rng.uniform(ox1 - cw, ox0), 0.0, 1.0 - cw))
        if _touches(boxes, y0, x0, y0 + ch, x0 + cw) or min(ch * h, cw * w) < 16:
            continue
        return _patch(img, y0, x0, y0 + ch, x0 + cw)
    return None


def _touches(boxes: np.ndarray, y0: float, x0: float, y1: float, x1: float) -> bool:
    """Whether any of ``boxes`` (normalised ymin, xmin, ymax, xmax) overlaps the window."""
    apart = (boxes[:, 2] <= y0) | (boxes[:, 0] >= y1) | (boxes[:, 3] <= x0) | (boxes[:, 1] >= x1)
    return not bool(apart.all())


def _patch(img: np.ndarray, y0: float, x0: float, y1: float, x1: float) -> np.ndarray:
    """The pixels of a normalised window, at least one pixel each way."""
    h, w = img.shape[:2]
    py0, px0 = int(y0 * h), int(x0 * w)
    return img[py0 : max(int(y1 * h), py0 + 1), px0 : max(int(x1 * w), px0 + 1)]


def hflip(img: np.ndarray, boxes: np.ndarray):
    b = boxes.copy()
    b[:, 1], b[:, 3] = 1.0 - boxes[:, 3], 1.0 - boxes[:, 1]
    return img[:, ::-1], b


def augment(
    img: np.ndarray,
    boxes: np.ndarray,
    cfg: AugmentConfig,
    rng: np.random.Generator,
    objects: np.ndarray | None = None,
):
    """Apply the configured augmentations: (image uint8 RGB, boxes, keep mask over input boxes).

    ``objects``: the image's labelled things that are not people, for ``object_crop_prob``.
    """
    keep = np.ones(len(boxes), bool)
    if cfg.photometric:
        img = photometric(img, rng)
    # Drawn only when asked, so configs without it keep their random draws.
    scene = None
    if cfg.background_crop_prob > 0 and rng.random() < cfg.background_crop_prob:
        scene = background_crop(img, boxes, rng)
    if scene is None and cfg.object_crop_prob > 0 and objects is not None and len(objects):
        if rng.random() < cfg.object_crop_prob:
            scene = object_crop(img, boxes, objects, rng)
    if scene is not None:
        img, boxes, keep = scene, boxes[:0], np.zeros(len(boxes), bool)
    else:
        if cfg.expand_prob > 0 and rng.random() < cfg.expand_prob:
            img, boxes = expand(img, boxes, rng, cfg.max_expand_ratio)
        if cfg.crop_prob > 0 and rng.random() < cfg.crop_prob:
            img, boxes, k = random_crop(img, boxes, rng)
            idx = np.flatnonzero(keep)
            keep = np.zeros_like(keep)
            keep[idx[k]] = True
    if cfg.flip and rng.random() < 0.5:
        img, boxes = hflip(img, boxes)
    return np.ascontiguousarray(img), boxes, keep
