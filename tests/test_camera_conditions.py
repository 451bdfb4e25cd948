"""Camera conditions: the night-camera augmentation of training and ``evaluate --condition``."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from conftest import REPO, SHARED, need_shared

from edgedetect.errors import EdgeDetectError
from edgedetect.images import read_bgr
from host_tools import conditions as cond
from host_tools.ssd.augment import camera_conditions

CAPSTON_VALID = SHARED / "capston2" / "valid"


def _photo() -> np.ndarray:
    """The most colourful of a few real validation photos (uint8 BGR): real colour and texture."""
    paths = sorted((need_shared(CAPSTON_VALID) / "images").glob("*.jpg"))[:20]
    imgs = [read_bgr(p) for p in paths]
    img = max(imgs, key=lambda i: float(np.abs(i[..., 2].astype(int) - i[..., 1]).mean()))
    assert img.std() > 10
    return img


@pytest.mark.parametrize("name", list(cond.CONDITIONS))
def test_each_condition_changes_the_image_the_same_way_for_the_same_index(name):
    img = _photo()
    seen = cond.camera_condition(name, seed=3)
    a, b, other = seen(img, 5), seen(img, 5), seen(img, 6)
    assert a.shape == img.shape and a.dtype == np.uint8
    assert np.abs(a.astype(int) - img).mean() > 3  # it did something a camera would notice
    np.testing.assert_array_equal(a, b)
    if name in ("noise", "dark", "night_ir"):  # noise is drawn per image
        assert not np.array_equal(a, other)
    else:
        np.testing.assert_array_equal(a, other)


def test_gray_and_night_ir_have_no_colour_but_a_tint():
    img = _photo()
    gray = cond.camera_condition("gray")(img, 0).astype(int)
    assert np.abs(gray[..., 0] - gray[..., 1]).max() <= 1
    ir = cond.camera_condition("night_ir")(img, 0).astype(float)
    b, g, r = ir[..., 0].mean(), ir[..., 1].mean(), ir[..., 2].mean()
    assert b > g and r > g  # the pink cast of an IR-lit frame
    assert ir.std() < img.std()  # flatter


def test_an_unknown_condition_is_named_with_the_choices():
    with pytest.raises(EdgeDetectError, match="'rain' is not one of gray, noise"):
        cond.camera_condition("rain")


def test_training_draw_keeps_size_and_varies_with_the_seed():
    rgb = cv2.cvtColor(cv2.resize(_photo(), (300, 300)), cv2.COLOR_BGR2RGB)
    outs = [camera_conditions(rgb, np.random.default_rng(s)) for s in range(8)]
    assert all(o.shape == rgb.shape and o.dtype == np.uint8 for o in outs)
    assert len({o.tobytes() for o in outs}) == 8
    # The same draw again is the same picture: training stays reproducible.
    np.testing.assert_array_equal(outs[0], camera_conditions(rgb, np.random.default_rng(0)))
    # Some draws are darker (low light), as the docstring promises.
    assert any(o.mean() < 0.8 * rgb.mean() for o in outs)


def test_camera_prob_changes_pixels_never_targets():
    tf = pytest.importorskip("tensorflow", reason="TensorFlow (host extra) is not installed")
    from host_tools.datasets.sources import DataSource
    from host_tools.ssd.config import load_config
    from host_tools.ssd.data import ExampleMaker, load_train_mix
    from host_tools.ssd.model import build_ssd

    assert tf is not None
    data = load_train_mix([DataSource(f"yolo:{need_shared(CAPSTON_VALID)}", None, 1.0)], limit=4)
    cfg = load_config("ssdlite_mobilenet_v2")
    cfg.train.batch_size = 4
    ssd = build_ssd(cfg)
    plain = [ExampleMaker(data, ssd, cfg, seed=1)(k) for k in range(4)]
    cfg.augment.camera_prob = 1.0
    night = [ExampleMaker(data, ssd, cfg, seed=1)(k) for k in range(4)]
    for (x0, loc0, cls0), (x1, loc1, cls1) in zip(plain, night, strict=True):
        assert not np.array_equal(x0, x1)
        assert -1.0 <= x1.min() and x1.max() <= 1.0
        np.testing.assert_array_equal(loc0, loc1)
        np.testing.assert_array_equal(cls0, cls1)


def test_evaluate_at_night_costs_recall_and_says_so(tmp_path):
    """The real default model on real photos: night costs recall; the report names the condition."""
    from host_tools.evaluate import main

    images = sorted((need_shared(CAPSTON_VALID) / "images").glob("*.jpg"))[:40]
    split = tmp_path / "split.txt"
    split.write_text("".join(p.name + "\n" for p in images))
    model = REPO / "models" / "person_ssdlite_int8.tflite"
    reports = {}
    for condition in (None, "night_ir"):
        out = tmp_path / str(condition)
        args = ["--model", str(model), "--dataset", f"yolo:{CAPSTON_VALID}"]
        args += ["--split-file", str(split), "--out", str(out), "--no-progress"]
        assert main(args + (["--condition", condition] if condition else [])) == 0
        reports[condition] = json.loads((out / "report.json").read_text())
    clean, night = reports[None], reports["night_ir"]
    assert clean["condition"] is None and night["condition"] == "night_ir"
    assert clean["recall"] > 0.5
    assert night["recall"] < clean["recall"]
