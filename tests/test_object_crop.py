"""``augment.object_crop_prob``: close-ups of labelled things that are not people, as negatives."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import SHARED, need_shared

from edgedetect.errors import ConfigError
from host_tools.datasets import load_dataset
from host_tools.datasets.ignore import ignore_short_people
from host_tools.ssd.augment import augment, object_crop
from host_tools.ssd.config import AugmentConfig, config_from_dict

COCO_MINI = SHARED / "coco_train" / "coco_mini"
COCO128 = SHARED / "coco_train" / "coco128"


def _marked(shape: tuple[int, int], people: np.ndarray, thing: np.ndarray) -> np.ndarray:
    """Channel 0 is 1 on the people, channel 1 on the thing (boxes normalised ymin, xmin, ...)."""
    h, w = shape
    img = np.zeros((h, w, 3), np.uint8)
    for channel, boxes in ((0, people), (1, thing)):
        for y0, x0, y1, x1 in boxes:
            img[int(y0 * h) : int(np.ceil(y1 * h)), int(x0 * w) : int(np.ceil(x1 * w)), channel] = 1
    return img


def test_a_close_up_frames_the_thing_and_touches_no_person():
    people = np.array([[0.05, 0.05, 0.9, 0.3], [0.1, 0.75, 0.5, 0.95]], np.float32)
    thing = np.array([[0.55, 0.5, 0.75, 0.65]], np.float32)  # 0.2 x 0.15 of the image
    img = _marked((400, 600), people, thing)
    fills = []
    for seed in range(30):
        patch = object_crop(img, people, thing, np.random.default_rng(seed))
        if patch is None:
            continue
        assert not patch[..., 0].any(), f"seed {seed}: the close-up shows part of a person"
        assert patch[..., 1].sum() == img[..., 1].sum(), f"seed {seed}: the thing is cut"
        fills.append(patch[..., 1].mean())
    assert len(fills) >= 20
    # the thing fills 0.3-0.8 of each side, so 0.09-0.64 of the close-up (the image edge can only
    # make the window smaller, i.e. the share larger)
    assert min(fills) > 0.08 and max(fills) < 0.7
    assert max(fills) - min(fills) > 0.1  # drawn, not one fixed framing


def test_no_close_up_of_a_thing_held_by_a_person_or_too_small():
    person = np.array([[0.2, 0.2, 0.9, 0.6]], np.float32)
    held = np.array([[0.4, 0.5, 0.6, 0.7]], np.float32)  # overlaps the person
    tiny = np.array([[0.1, 0.8, 0.15, 0.85]], np.float32)  # 0.0025 of the image
    img = np.zeros((300, 300, 3), np.uint8)
    rng = np.random.default_rng(0)
    assert object_crop(img, person, held, rng) is None
    assert object_crop(img, person, tiny, rng) is None
    assert object_crop(img, person, np.zeros((0, 4), np.float32), rng) is None


def test_augment_drops_every_box_of_a_close_up_and_draws_as_before_without_it():
    people = np.array([[0.05, 0.05, 0.9, 0.3]], np.float32)
    thing = np.array([[0.4, 0.5, 0.8, 0.9]], np.float32)
    img = _marked((240, 320), people, thing) * 255
    cfg = AugmentConfig(object_crop_prob=1.0, photometric=False)
    out, boxes, keep = augment(img, people, cfg, np.random.default_rng(1), thing)
    assert len(boxes) == 0 and not keep.any() and not out[..., 0].any() and out[..., 1].any()
    # prob 0, or an image without things, draws no random number: the same result as before
    plain = augment(img, people, AugmentConfig(), np.random.default_rng(3))
    for other in (
        augment(img, people, AugmentConfig(object_crop_prob=0.0), np.random.default_rng(3), thing),
        augment(
            img,
            people,
            AugmentConfig(object_crop_prob=1.0),
            np.random.default_rng(3),
            np.zeros((0, 4), np.float32),
        ),
    ):
        np.testing.assert_array_equal(plain[0], other[0])


def test_the_share_is_checked():
    with pytest.raises(ConfigError, match="object_crop_prob"):
        config_from_dict({"augment": {"object_crop_prob": -0.1}}, "cfg.json")


def test_coco_json_gives_the_other_categories_as_things():
    ann = need_shared(COCO_MINI) / "annotations" / "instances_train2017.json"
    data = json.loads(ann.read_text())
    want = sum(1 for a in data["annotations"] if a["category_id"] != 1 and not a.get("iscrowd"))
    samples = load_dataset(f"coco:{ann}:{COCO_MINI / 'train2017'}", None).samples
    assert sum(len(s.objects) for s in samples) == want > 100
    people = sum(1 for a in data["annotations"] if a["category_id"] == 1)
    assert sum(len(s.boxes) for s in samples) == people  # the person boxes are unchanged


def test_yolo_gives_the_other_classes_as_things_and_rules_keep_them():
    root = need_shared(COCO128)
    lines = [
        ln.split() for p in (root / "labels").rglob("*.txt") for ln in p.read_text().split("\n")
    ]
    want = sum(1 for f in lines if f and f[0] != "0")
    samples = load_dataset(f"yolo:{root}", None).samples
    assert sum(len(s.objects) for s in samples) == want > 100
    kept = ignore_short_people(samples, 0.5)
    assert sum(len(s.objects) for s in kept) == want
    assert sum(int(s.ignore.sum()) for s in kept) > 0  # the rule did change some samples
