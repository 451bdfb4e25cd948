"""The Keras SSD (TensorFlow): shapes of every architecture, the imported OD-API weights reproducing
the frozen graph on real images, the TF box coder against the runtime's numpy one, the loss, the LR
schedule and the postprocess-op signature."""

from __future__ import annotations

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow", reason="TensorFlow (host extra) is not installed")

from conftest import INRIA_TEST, SHARED_MODELS, need_shared  # noqa: E402

from edgedetect.boxes import decode_center_size, encode_center_size  # noqa: E402
from host_tools.ssd.config import load_config  # noqa: E402
from host_tools.ssd.model import build_ssd  # noqa: E402

PB = SHARED_MODELS / "ssdlite_mobilenet_v2_pedestrian_frozen_inference_graph.pb"


@pytest.mark.parametrize(
    "name,params",
    [
        ("ssdlite_mobilenet_v2", (3.0e6, 3.2e6)),
        ("ssd_mobilenet_v2", (4e6, 12e6)),
        ("ssd_mobilenet_v1", (4e6, 8e6)),
    ],
)
def test_architectures_build_with_one_prediction_per_anchor(name, params):
    ssd = build_ssd(load_config(name))
    box, cls = ssd.keras_model.outputs
    assert ssd.feature_map_sizes == [(19, 19), (10, 10), (5, 5), (3, 3), (2, 2), (1, 1)]
    assert int(box.shape[1]) == int(cls.shape[1]) == ssd.num_anchors == 1917
    assert int(box.shape[2]) == 4 and int(cls.shape[2]) == 2
    assert params[0] < ssd.keras_model.count_params() < params[1]


def test_stride8_head_adds_small_anchors_without_changing_the_trained_ones():
    from host_tools.ssd.anchors import AnchorConfig

    base_cfg = load_config("ssdlite_mobilenet_v2")
    cfg = load_config("ssdlite_mobilenet_v2")
    cfg.anchors = AnchorConfig(stride8_anchors=((0.04, 0.5), (0.07, 0.5), (0.07, 1.0)))
    base, s8 = build_ssd(base_cfg), build_ssd(cfg)
    assert s8.feature_map_sizes == [(38, 38), *base.feature_map_sizes]
    assert s8.num_anchors == base.num_anchors + 38 * 38 * 3
    # every weight of the model without the layer has the same name and shape in the one with it
    # (what --init-partial copies), so the standard anchors' outputs are unchanged
    src = {v.name: v for v in base.keras_model.weights}
    copied = 0
    for v in s8.keras_model.weights:
        if v.name in src:
            assert tuple(v.shape) == tuple(src[v.name].shape)
            v.assign(src[v.name])
            copied += 1
    assert copied == len(base.keras_model.weights) < len(s8.keras_model.weights)
    x = np.random.default_rng(0).uniform(-1, 1, (1, 300, 300, 3)).astype(np.float32)
    (b_box, b_cls), (s_box, s_cls) = base.keras_model(x), s8.keras_model(x)
    n8 = s8.num_anchors - base.num_anchors
    np.testing.assert_array_equal(s_box.numpy()[:, n8:], b_box.numpy())
    np.testing.assert_array_equal(s_cls.numpy()[:, n8:], b_cls.numpy())
    # the fresh head starts near a 1 % person prior, not 0.5 on 4,332 anchors
    person = tf.sigmoid(s_cls[0, :n8, 1]).numpy()
    assert 0.002 < float(np.median(person)) < 0.05


def test_tf_box_coder_matches_runtime_numpy_coder():
    from host_tools.ssd.box_coder import tf_decode, tf_encode

    rng = np.random.default_rng(0)
    anchors = np.column_stack(
        [rng.uniform(0.1, 0.9, (50, 2)), rng.uniform(0.05, 0.5, (50, 2))]
    ).astype(np.float32)
    y0, x0 = rng.uniform(0, 0.5, (2, 50))
    boxes = np.column_stack(
        [y0, x0, y0 + rng.uniform(0.05, 0.5, 50), x0 + rng.uniform(0.05, 0.5, 50)]
    ).astype(np.float32)
    codes = tf_encode(boxes, anchors).numpy()
    np.testing.assert_allclose(codes, encode_center_size(boxes, anchors), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(
        tf_decode(codes, anchors).numpy(), decode_center_size(codes, anchors), atol=1e-5
    )
    np.testing.assert_allclose(tf_decode(codes, anchors).numpy(), boxes, atol=1e-5)


def test_imported_weights_reproduce_the_frozen_graph_on_real_images():
    from host_tools.import_weights import import_pb, read_rgb, verify

    pb = need_shared(PB)
    images = [read_rgb(p) for p in sorted((need_shared(INRIA_TEST) / "pos").glob("*.png"))[:2]]
    ssd, gd, unused = import_pb(pb, load_config("ssdlite_mobilenet_v2"))
    assert unused == []
    report = verify(ssd, gd, images)
    assert report["max_abs_class_logit"] > 1.0  # the outputs are not trivially zero
    assert report["max_abs_diff_box_encodings"] < 1e-3
    assert report["max_abs_diff_class_logits"] < 1e-3
    assert report["max_abs_diff_anchors"] < 1e-5


def test_import_rejects_a_mismatched_architecture():
    from edgedetect.errors import ModelError
    from host_tools.import_weights import import_pb

    with pytest.raises(ModelError, match="graph has no constant"):
        import_pb(need_shared(PB), load_config("ssd_mobilenet_v1"))


def test_loss_prefers_correct_predictions_and_mines_negatives():
    from host_tools.ssd.losses import ssd_loss

    cfg = load_config("ssdlite_mobilenet_v2")
    n = 40
    cls_t = np.zeros((1, n), np.int32)
    cls_t[0, :2] = 1
    cls_t[0, 2] = -1  # ignored
    loc_t = np.random.default_rng(0).normal(size=(1, n, 4)).astype(np.float32)
    good_logits = np.full((1, n, 2), -6.0, np.float32)
    good_logits[0, :, 0] = 6.0
    good_logits[0, :2] = [-6.0, 6.0]
    good = ssd_loss(cfg, tf.constant(loc_t), tf.constant(good_logits), loc_t, cls_t)
    bad = ssd_loss(cfg, tf.constant(loc_t + 1), tf.constant(-good_logits), loc_t, cls_t)
    assert float(good["loc"]) == pytest.approx(0.0, abs=1e-6)
    assert float(good["loss"]) < 0.1 < float(bad["loss"])
    assert float(bad["num_pos"]) == 2.0
    # one hard negative costs as much as it should: 2 pos * ratio 3 = 6 negatives counted (of 37)
    one_bad_neg = good_logits.copy()
    one_bad_neg[0, 10] = [-6.0, 6.0]
    worse = ssd_loss(cfg, tf.constant(loc_t), tf.constant(one_bad_neg), loc_t, cls_t)
    assert float(worse["cls"]) > float(good["cls"]) + 2.0


def test_warmup_cosine_schedule():
    from host_tools.train import WarmupCosine

    s = WarmupCosine(1e-3, total=100, warmup=10, start_factor=0.1)
    assert float(s(0)) == pytest.approx(1e-4)
    assert float(s(10)) == pytest.approx(1e-3)
    assert float(s(55)) == pytest.approx(5e-4, rel=1e-3)
    assert float(s(100)) == pytest.approx(0.0, abs=1e-9)


def test_postprocess_signature_carries_every_op_attribute():
    from host_tools.export import postprocess_signature

    sig = postprocess_signature(load_config("ssdlite_mobilenet_v2"))
    assert sig.startswith('name: "TFLite_Detection_PostProcess"')
    for key in (
        "max_detections",
        "max_classes_per_detection",
        "detections_per_class",
        "use_regular_nms",
        "nms_score_threshold",
        "nms_iou_threshold",
        "num_classes",
        "y_scale",
        "x_scale",
        "h_scale",
        "w_scale",
    ):
        assert f'key: "{key}"' in sig
    assert 'key: "y_scale" value { f: 10.0 }' in sig and 'key: "h_scale" value { f: 5.0 }' in sig
    assert 'key: "num_classes" value { i: 1 }' in sig


def test_coco_tflite_weights_import_into_keras_ssd_mobilenet_v1():
    from host_tools.import_tflite import import_tflite, verify_tflite
    from host_tools.import_weights import read_rgb

    model = need_shared(SHARED_MODELS / "ssd_mobilenet_v1_coco_quant.tflite")
    images = [read_rgb(p) for p in sorted((need_shared(INRIA_TEST) / "pos").glob("*.png"))[2:4]]
    ssd, interp = import_tflite(model, load_config("ssd_mobilenet_v1_075_coco"))
    r = verify_tflite(ssd, interp, images)
    # int8 vs float arithmetic: close, not equal; and the person anchors agree
    assert r["anchors_with_person_score_over_0.5_tflite"] >= 5
    assert r["of_those_also_over_0.5_keras"] >= 0.9 * r["anchors_with_person_score_over_0.5_tflite"]
    assert r["mean_abs_diff_person_score"] < 0.01 and r["max_abs_diff_person_score"] < 0.1
    assert r["mean_abs_diff_box_encodings"] < 0.1


def test_clis_report_bad_input_in_one_line(tmp_path, capsys):
    from host_tools.export import main as export_main
    from host_tools.import_weights import main as import_main

    assert (
        export_main(
            ["--weights", str(tmp_path / "missing.weights.h5"), "--out", str(tmp_path / "m.tflite")]
        )
        == 2
    )
    err = capsys.readouterr().err.strip()
    assert (
        err.startswith("export: error: weights") and "missing.weights.h5" in err and "\n" not in err
    )
    not_pb = tmp_path / "graph.pb"
    not_pb.write_bytes(b"\x00 definitely not a graph \xff" * 10)
    assert import_main(["--pb", str(not_pb), "--out", str(tmp_path / "w.weights.h5")]) == 2
    err = capsys.readouterr().err.strip()
    assert "graph.pb" in err and "\n" not in err
    assert not (tmp_path / "w.weights.h5").exists()


def test_giou_loss_values():
    from host_tools.ssd.losses import giou_loss

    a = tf.constant([[0.0, 0.0, 1.0, 1.0]])
    assert float(giou_loss(a, a)[0]) == pytest.approx(0.0, abs=1e-6)
    half = tf.constant([[0.0, 0.0, 1.0, 0.5]])  # IoU 0.5, hull = union
    assert float(giou_loss(half, a)[0]) == pytest.approx(0.5, abs=1e-6)
    far = tf.constant([[0.0, 2.0, 1.0, 3.0]])  # disjoint: IoU 0, hull 3, union 2 -> GIoU -1/3
    assert float(giou_loss(far, a)[0]) == pytest.approx(1.0 + 1.0 / 3.0, abs=1e-6)


def test_giou_term_decodes_against_the_anchors():
    from edgedetect.boxes import encode_center_size
    from host_tools.ssd.box_coder import tf_decode
    from host_tools.ssd.losses import ssd_loss

    cfg = load_config("ssdlite_mobilenet_v2")
    cfg.train.giou_weight = 2.0
    anchors = np.array(
        [[0.5, 0.5, 0.4, 0.2], [0.3, 0.3, 0.2, 0.2], [0.7, 0.7, 0.3, 0.1]], np.float32
    )
    boxes = np.array(
        [[0.28, 0.42, 0.72, 0.61], [0.2, 0.2, 0.4, 0.4], [0.5, 0.6, 0.9, 0.8]], np.float32
    )
    codes = encode_center_size(boxes, anchors)
    np.testing.assert_allclose(
        tf_decode(tf.constant(codes), tf.constant(anchors), (10, 10, 5, 5)), boxes, atol=1e-5
    )
    loc_t = codes[None]
    cls_t = np.array([[1, 1, 0]], np.int32)
    logits = np.array([[[-6.0, 6.0], [-6.0, 6.0], [6.0, -6.0]]], np.float32)
    exact = ssd_loss(cfg, tf.constant(loc_t), tf.constant(logits), loc_t, cls_t, anchors)
    assert float(exact["giou"]) == pytest.approx(0.0, abs=1e-5)
    shifted = loc_t.copy()
    shifted[0, :, 1] += 3.0  # centres moved by 0.3 anchor widths
    off = ssd_loss(cfg, tf.constant(shifted), tf.constant(logits), loc_t, cls_t, anchors)
    assert float(off["giou"]) > 0.2
    expected = (
        cfg.train.localization_weight * float(off["loc"])
        + cfg.train.classification_weight * float(off["cls"])
        + 2.0 * float(off["giou"])
        + float(off.get("range", 0.0))
    )
    assert float(off["loss"]) == pytest.approx(expected, rel=1e-5)
    with pytest.raises(ValueError, match="anchors"):
        ssd_loss(cfg, tf.constant(loc_t), tf.constant(logits), loc_t, cls_t)


def test_partial_init_transfers_the_shared_backbone(tmp_path):
    """SSD-MobileNetV2 takes the SSDLite's MobileNetV2 backbone by variable name.

    Its new layers stay fresh.
    """
    from edgedetect.errors import ModelError
    from host_tools.train import init_weights

    src = build_ssd(load_config("ssdlite_mobilenet_v2"))
    rng = np.random.default_rng(0)
    for w in src.keras_model.weights:
        w.assign(rng.normal(size=w.shape).astype(np.float32))
    path = tmp_path / "lite.weights.h5"
    src.keras_model.save_weights(str(path))
    dst = build_ssd(load_config("ssd_mobilenet_v2"))
    head = "BoxPredictor_0__BoxEncodingPredictor/kernel:0"
    head_before = next(w.numpy() for w in dst.keras_model.weights if w.name == head)
    how = init_weights(dst, str(path), partial=True)
    assert how.startswith("308 of 324 weight tensors")
    src_w = {w.name: w.numpy() for w in src.keras_model.weights}
    dst_w = {w.name: w.numpy() for w in dst.keras_model.weights}
    stem = "FeatureExtractor__MobilenetV2__Conv/kernel:0"
    np.testing.assert_array_equal(dst_w[stem], src_w[stem])
    np.testing.assert_array_equal(dst_w[head], head_before)  # shape differs: left as initialised
    assert not any(np.isnan(v).any() for v in dst_w.values())
    with pytest.raises(ModelError, match="needs an existing"):
        init_weights(dst, str(tmp_path / "missing.weights.h5"), partial=True)


def test_box_code_limit_penalises_only_codes_beyond_it():
    from host_tools.ssd.losses import ssd_loss

    cfg = load_config("ssdlite_mobilenet_v2")
    cfg.train.box_code_limit = 8.0
    loc_t = np.zeros((1, 4, 4), np.float32)
    cls_t = np.array([[1, 0, 0, 0]], np.int32)
    logits = np.array([[[-6.0, 6.0], [6.0, -6.0], [6.0, -6.0], [6.0, -6.0]]], np.float32)
    inside = np.zeros((1, 4, 4), np.float32)
    inside[0, 2] = [7.9, -7.9, 0.0, 0.0]  # a background anchor, within the limit
    ok = ssd_loss(cfg, tf.constant(inside), tf.constant(logits), loc_t, cls_t)
    assert float(ok["range"]) == 0.0
    outside = inside.copy()
    outside[0, 3] = [
        0.0,
        0.0,
        0.0,
        -18.0,
    ]  # 10 beyond: 100 summed over the codes, mean over 4 anchors
    far = ssd_loss(cfg, tf.constant(outside), tf.constant(logits), loc_t, cls_t)
    assert float(far["range"]) == pytest.approx(25.0)
    assert float(far["loss"]) == pytest.approx(float(ok["loss"]) + 25.0, rel=1e-5)


def test_background_loss_off_ignores_only_the_background_column():
    """A COCO start calls a car 'not background' (low background logit); with ``background_loss``
    false that column costs nothing, while the person column of every anchor still does."""
    from edgedetect.errors import ConfigError
    from host_tools.ssd.config import config_from_dict
    from host_tools.ssd.losses import ssd_loss

    cfg = load_config("ssdlite_mobilenet_v2")
    loc_t = np.zeros((1, 3, 4), np.float32)
    cls_t = np.array([[1, 0, 0]], np.int32)  # a person, plain background, a "car"
    logits = np.array([[[-6.0, 6.0], [6.0, -6.0], [-6.0, -6.0]]], np.float32)
    with_bg = ssd_loss(cfg, tf.constant(loc_t), tf.constant(logits), loc_t, cls_t)
    cfg.train.background_loss = False
    without = ssd_loss(cfg, tf.constant(loc_t), tf.constant(logits), loc_t, cls_t)
    assert float(with_bg["cls"]) > 6.0  # the car anchor's background column: ~6 nats
    assert float(without["cls"]) < 0.01
    person_on_car = logits.copy()
    person_on_car[0, 2, 1] = 6.0  # a person score on the car is still paid for
    wrong = ssd_loss(cfg, tf.constant(loc_t), tf.constant(person_on_car), loc_t, cls_t)
    assert float(wrong["cls"]) > 6.0
    with pytest.raises(ConfigError, match="background_loss false needs"):
        config_from_dict(
            {"model": {"score_converter": "softmax"}, "train": {"background_loss": False}}
        )
