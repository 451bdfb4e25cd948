"""SSD mechanics without TensorFlow: OD-API anchors, matching/targets, augmentation, configs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from edgedetect.boxes import box_iou, decode_center_size
from edgedetect.errors import ConfigError
from host_tools.ssd.anchors import (
    AnchorConfig,
    corners_to_center_size,
    feature_map_sizes_for,
    generate_anchors,
)
from host_tools.ssd.augment import augment, expand, hflip, random_crop
from host_tools.ssd.config import CONFIG_DIR, AugmentConfig, config_from_dict, load_config
from host_tools.ssd.targets import build_targets, match

SIZES_300 = [(19, 19), (10, 10), (5, 5), (3, 3), (2, 2), (1, 1)]


def test_feature_map_sizes_follow_tf_same_padding():
    assert feature_map_sizes_for(300) == SIZES_300
    assert feature_map_sizes_for(320) == [(20, 20), (10, 10), (5, 5), (3, 3), (2, 2), (1, 1)]


def test_ssd_anchor_generator_counts_and_first_layer():
    cfg = AnchorConfig()
    assert cfg.anchors_per_location() == [3, 6, 6, 6, 6, 6]
    a = generate_anchors(cfg, SIZES_300)
    assert a.shape == (19 * 19 * 3 + (100 + 25 + 9 + 4 + 1) * 6, 4) == (1917, 4)
    # first cell of the 19x19 map: box (0.1, ar 1), then scale 0.2 at ar 2 and ar 0.5
    c = 0.5 / 19
    np.testing.assert_allclose(a[0], [c - 0.05, c - 0.05, c + 0.05, c + 0.05], atol=1e-6)
    h2, w2 = 0.2 / np.sqrt(2), 0.2 * np.sqrt(2)
    np.testing.assert_allclose(a[1], [c - h2 / 2, c - w2 / 2, c + h2 / 2, c + w2 / 2], atol=1e-6)
    # order is y-major, then x, then anchor: anchor 3 is the next x cell
    np.testing.assert_allclose((a[3, 1] + a[3, 3]) / 2, 1.5 / 19, atol=1e-6)
    # last layer: one cell centred, interpolated scale sqrt(0.95 * 1.0) square box last
    s = np.sqrt(0.95)
    np.testing.assert_allclose(
        a[-1], [0.5 - s / 2, 0.5 - s / 2, 0.5 + s / 2, 0.5 + s / 2], atol=1e-6
    )


def test_stride8_layer_comes_first_and_keeps_every_standard_anchor():
    pairs = ((0.04, 0.5), (0.07, 1.0))
    cfg = AnchorConfig(stride8_anchors=pairs)
    assert cfg.anchors_per_location() == [2, 3, 6, 6, 6, 6, 6]
    a = generate_anchors(cfg, [(38, 38), *SIZES_300])
    n8 = 38 * 38 * 2
    assert a.shape == (n8 + 1917, 4)
    np.testing.assert_array_equal(a[n8:], generate_anchors(AnchorConfig(), SIZES_300))
    # first cell: scale 0.04 at aspect 0.5 (w/h) is 0.04 * sqrt(2) tall, 0.04 / sqrt(2) wide
    c, h, w = 0.5 / 38, 0.04 * np.sqrt(2), 0.04 / np.sqrt(2)
    np.testing.assert_allclose(a[0], [c - h / 2, c - w / 2, c + h / 2, c + w / 2], atol=1e-6)
    with pytest.raises(ValueError, match="7 anchor layers"):
        generate_anchors(cfg, SIZES_300)


@pytest.mark.parametrize(
    "anchors,arch,message",
    [
        ({"stride8_anchors": [[0.04]]}, "ssdlite_mobilenet_v2", "scale, aspect_ratio"),
        ({"stride8_anchors": [[0.04, 0.0]]}, "ssdlite_mobilenet_v2", "must be > 0"),
        ({"stride8_anchors": [[0.04, 0.5]]}, "ssd_mobilenet_v1", "needs a MobileNetV2"),
    ],
)
def test_stride8_anchor_mistakes_are_config_errors(anchors, arch, message):
    with pytest.raises(ConfigError, match=message):
        config_from_dict({"model": {"arch": arch}, "anchors": anchors})


def test_scales_interpolate_linearly():
    specs = AnchorConfig().layer_specs()
    assert [round(s[0][0], 4) for s in specs[1:]] == [0.35, 0.5, 0.65, 0.8, 0.95]


def test_center_size_round_trip():
    a = generate_anchors(AnchorConfig(), SIZES_300)
    cs = corners_to_center_size(a)
    back = decode_center_size(np.zeros_like(cs), cs)
    np.testing.assert_allclose(back, a, atol=1e-6)


def test_match_forces_every_box_to_an_anchor():
    anchors = np.array([[0, 0, 0.5, 0.5], [0.5, 0.5, 1, 1], [0, 0.5, 0.5, 1]], np.float32)
    gt = np.array(
        [[0.0, 0.0, 0.45, 0.5], [0.6, 0.6, 0.7, 0.7]], np.float32
    )  # 2nd has IoU 0.04 only
    m = match(anchors, gt)
    assert m.tolist() == [0, 1, -1]
    assert match(anchors, np.zeros((0, 4), np.float32)).tolist() == [-1, -1, -1]


def test_match_ignores_between_thresholds():
    anchors = np.array([[0, 0, 1, 1], [0, 0, 0.5, 0.5]], np.float32)
    gt = np.array([[0, 0, 0.5, 0.45]], np.float32)
    iou = box_iou(anchors, gt)[:, 0]
    assert iou[0] < 0.3 and iou[1] > 0.8
    m = match(anchors, gt, matched_iou=0.5, unmatched_iou=0.1, force_match=False)
    assert m.tolist() == [-2, 0]


def test_targets_decode_back_to_the_boxes():
    a = generate_anchors(AnchorConfig(), SIZES_300)
    cs = corners_to_center_size(a)
    gt = np.array([[0.1, 0.2, 0.9, 0.45], [0.3, 0.6, 0.7, 0.75]], np.float32)
    loc, cls = build_targets(a, cs, gt, np.zeros(2, np.int32))
    pos = cls > 0
    assert pos.sum() >= 2 and set(np.unique(cls)) <= {0, 1}
    decoded = decode_center_size(loc[pos], cs[pos])
    best = box_iou(decoded, gt).max(axis=1)
    np.testing.assert_allclose(best, 1.0, atol=1e-4)


def _boxes_valid(b):
    return (
        np.all(b >= -1e-6)
        and np.all(b <= 1 + 1e-6)
        and np.all(b[:, 2] > b[:, 0])
        and np.all(b[:, 3] > b[:, 1])
    )


def test_flip_twice_is_identity():
    img = np.random.default_rng(0).integers(0, 255, (40, 60, 3), np.uint8)
    boxes = np.array([[0.1, 0.2, 0.5, 0.3]], np.float32)
    i1, b1 = hflip(img, boxes)
    np.testing.assert_allclose(b1, [[0.1, 0.7, 0.5, 0.8]], atol=1e-6)
    i2, b2 = hflip(i1, b1)
    assert np.array_equal(i2, img) and np.allclose(b2, boxes)


def test_expand_keeps_box_pixels():
    rng = np.random.default_rng(1)
    img = np.zeros((50, 80, 3), np.uint8)
    img[10:30, 20:40] = 255
    boxes = np.array([[10 / 50, 20 / 80, 30 / 50, 40 / 80]], np.float32)
    out, b = expand(img, boxes, rng, 3.0)
    h, w = out.shape[:2]
    y0, x0, y1, x1 = (b[0] * [h, w, h, w]).round().astype(int)
    assert out.shape[0] >= 50 and out[y0:y1, x0:x1].min() == 255


def test_random_crop_and_full_augment_keep_valid_boxes():
    rng = np.random.default_rng(2)
    img = np.random.default_rng(3).integers(0, 255, (120, 90, 3), np.uint8)
    boxes = np.array([[0.1, 0.1, 0.9, 0.4], [0.2, 0.5, 0.8, 0.9]], np.float32)
    for _ in range(30):
        out, b, keep = random_crop(img, boxes, rng)
        assert len(b) == keep.sum() >= 1 and _boxes_valid(b) and out.size > 0
        out, b, keep = augment(img, boxes, AugmentConfig(crop_prob=1.0, expand_prob=0.5), rng)
        assert len(b) == keep.sum() and _boxes_valid(b) and out.dtype == np.uint8


def test_shipped_configs_load():
    names = sorted(p.stem for p in CONFIG_DIR.glob("*.json"))
    assert "ssdlite_mobilenet_v2" in names
    for n in names:
        cfg = load_config(n)
        if cfg.model.arch == "tflite_graph":  # named after the file it rebuilds
            assert n.split("_mix")[0] in Path(cfg.model.graph).stem
        else:
            assert cfg.model.arch in n or n.startswith(cfg.model.arch)


def test_config_rejects_unknown_keys_and_values(tmp_path):
    with pytest.raises(ConfigError, match="lerning_rate"):
        config_from_dict({"train": {"lerning_rate": 1}})
    with pytest.raises(ConfigError, match="arch"):
        config_from_dict({"model": {"arch": "yolo"}})
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ConfigError, match="bad.json"):
        load_config(bad)
    with pytest.raises(ConfigError, match="not found"):
        load_config("no_such_config")
    ok = tmp_path / "ok.json"
    ok.write_text(json.dumps({"anchors": {"min_scale": 0.1, "aspect_ratios": [1.0, 0.5]}}))
    assert load_config(ok).anchors.aspect_ratios == (1.0, 0.5)
