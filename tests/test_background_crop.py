"""``augment.background_crop_prob``: person-free scenes cut from real training photos."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import SHARED, need_shared

from edgedetect.errors import ConfigError
from host_tools.ssd.augment import augment, background_crop
from host_tools.ssd.config import AugmentConfig, config_from_dict

CAPSTON_VALID = SHARED / "capston2" / "valid"


def _box_mask(shape: tuple[int, int], boxes: np.ndarray) -> np.ndarray:
    """1 on every pixel a box covers (boxes ymin, xmin, ymax, xmax normalised), else 0."""
    h, w = shape
    mask = np.zeros((h, w, 3), np.uint8)
    for y0, x0, y1, x1 in boxes:
        mask[int(y0 * h) : int(np.ceil(y1 * h)), int(x0 * w) : int(np.ceil(x1 * w))] = 1
    return mask


def _real_boxes() -> list[np.ndarray]:
    """The person boxes of real capston2 photos with 1 to 3 people (room left for a free patch)."""
    labels = sorted((need_shared(CAPSTON_VALID) / "labels").glob("*.txt"))
    out = []
    for path in labels:
        rows = np.loadtxt(path, ndmin=2)
        if 1 <= len(rows) <= 3:
            cx, cy, bw, bh = rows[:, 1], rows[:, 2], rows[:, 3], rows[:, 4]
            out.append(np.stack([cy - bh / 2, cx - bw / 2, cy + bh / 2, cx + bw / 2], 1).clip(0, 1))
    assert len(out) > 50
    return out[:80]


def test_a_background_crop_touches_no_box_of_real_photos():
    free = 0
    for i, boxes in enumerate(_real_boxes()):
        mask = _box_mask((320, 320), boxes)
        assert mask.any()
        patch = background_crop(mask, boxes.astype(np.float32), np.random.default_rng(i))
        if patch is not None:
            free += 1
            assert patch.size > 0.3 * 0.3 * mask.size * 0.9
            assert not patch.any(), f"photo {i}: the patch overlaps a person"
    assert free > 20  # most of these photos have room for a person-free scene


def test_no_patch_when_people_fill_the_photo():
    boxes = np.array([[0.0, 0.0, 1.0, 0.5], [0.0, 0.5, 1.0, 1.0]], np.float32)
    img = np.zeros((100, 100, 3), np.uint8)
    assert background_crop(img, boxes, np.random.default_rng(0)) is None


def test_augment_drops_every_box_and_ignore_region_of_a_background_crop():
    # a person and an ignore region: augment gets both in one array
    boxes = np.array([[0.1, 0.1, 0.5, 0.3], [0.6, 0.6, 0.9, 0.7]], np.float32)
    img = _box_mask((240, 320), boxes) * 255
    cfg = AugmentConfig(background_crop_prob=1.0, photometric=False)
    scenes = 0
    for seed in range(20):
        out, kept, keep = augment(img, boxes, cfg, np.random.default_rng(seed))
        assert len(keep) == 2 and len(kept) == keep.sum()
        if not keep.any():  # a person-free scene (else no patch was free: augmented as usual)
            scenes += 1
            assert not out.any()
    assert scenes >= 15


def test_configs_without_it_draw_as_before():
    """prob 0 draws no random number: the same seed gives the same image as a config without it."""
    rng_img = np.random.default_rng(5).integers(0, 255, (120, 160, 3), dtype=np.uint8)
    boxes = np.array([[0.2, 0.2, 0.8, 0.5]], np.float32)
    a = augment(rng_img, boxes, AugmentConfig(), np.random.default_rng(3))
    b = augment(rng_img, boxes, AugmentConfig(background_crop_prob=0.0), np.random.default_rng(3))
    c = augment(rng_img, boxes, AugmentConfig(background_crop_prob=0.5), np.random.default_rng(3))
    np.testing.assert_array_equal(a[0], b[0])
    assert a[0].shape != c[0].shape or not np.array_equal(a[0], c[0])


def test_the_share_is_checked():
    with pytest.raises(ConfigError, match="background_crop_prob"):
        config_from_dict({"augment": {"background_crop_prob": 1.5}}, "cfg.json")
