"""An OD-API SSD TFLite file rebuilt as a trainable Keras model (``model.arch`` "tflite_graph").

The rebuilt model must compute what the file computes: its raw box encodings and person scores (the
inputs of its ``TFLite_Detection_PostProcess`` op) on real images, within the file's own int8 or
dynamic-range rounding, with the file's anchors. Checked on the project's committed default (always
here) and on the FPNLite 320 COCO reference (skips without ../shared/data).
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import cv2
import numpy as np
import pytest

tf = pytest.importorskip("tensorflow", reason="TensorFlow (host extra) is not installed")

from conftest import (  # noqa: E402
    COCO_MODEL,
    FPNLITE_MODEL,
    PENNFUDAN,
    REPO,
    SHARED_MODELS,
    SPLITS,
    need_shared,
    skimage_bgr,
)

from edgedetect.errors import ConfigError, ModelError  # noqa: E402

DEFAULT = REPO / "models" / "person_ssdlite_int8.tflite"


def _config(graph: Path, size: int):
    from host_tools.ssd.config import config_from_dict

    model = {"arch": "tflite_graph", "graph": str(graph), "input_size": size, "weight_decay": 0.0}
    return config_from_dict({"name": graph.stem, "model": model})


def _default_size() -> int:
    from host_tools.ssd.tflite_graph import read_graph

    return read_graph(DEFAULT).input_size


def _images_rgb() -> list[np.ndarray]:
    """Real photos: scikit-image's astronaut and cat, and three frames of the bundled clip."""
    images = [skimage_bgr("astronaut"), skimage_bgr("chelsea")]
    cap = cv2.VideoCapture(str(REPO / "data" / "sample.mp4"))
    for i in range(3):
        cap.set(cv2.CAP_PROP_POS_FRAMES, 10 * i)
        ok, frame = cap.read()
        assert ok, "the bundled clip data/sample.mp4 did not decode"
        images.append(frame)
    cap.release()
    return [cv2.cvtColor(i, cv2.COLOR_BGR2RGB) for i in images]


def _compare(path: Path, size: int) -> dict[str, float]:
    """Largest differences between the rebuilt model and the file over :func:`_images_rgb`."""
    from host_tools.import_tflite import open_interpreter, tflite_raw_outputs
    from host_tools.ssd.model import build_ssd

    ssd = build_ssd(_config(path, size))
    # the file's own normalised inputs, box encodings and class scores (postprocess op inputs)
    xs, ref_boxes, ref_scores = tflite_raw_outputs(open_interpreter(path), _images_rgb())
    score_diff, box_diff, confident = 0.0, 0.0, 0
    for x, ref_box, ref_score in zip(xs, ref_boxes, ref_scores, strict=True):
        box, logits = ssd.keras_model(x[None])
        person = tf.sigmoid(logits[0, :, 1]).numpy()
        score_diff = max(score_diff, float(np.abs(person - ref_score[:, 1]).max()))
        sure = ref_score[:, 1] > 0.5
        confident += int(sure.sum())
        if sure.any():
            box_diff = max(box_diff, float(np.abs(box[0].numpy() - ref_box)[sure].max()))
    return {"score": score_diff, "box": box_diff, "confident": confident}


def test_the_default_model_rebuilds_into_keras_with_its_own_outputs():
    from host_tools.ssd.tflite_graph import read_graph

    graph = read_graph(DEFAULT)
    assert graph.input_size in (300, 320) and graph.box_scales == (10.0, 10.0, 5.0, 5.0)
    diff = _compare(DEFAULT, graph.input_size)
    assert diff["confident"] >= 5  # the astronaut and the clip's person were found at all
    assert diff["score"] < 0.1, diff  # int8 rounding of the file: measured 0.07
    assert diff["box"] < 0.5, diff  # box codes (x10 / x5 of the anchor) of confident anchors


def test_fpnlite_rebuilds_with_its_shared_predictor_and_anchors():
    from host_tools.ssd.model import build_ssd
    from host_tools.ssd.tflite_graph import read_graph

    path = need_shared(FPNLITE_MODEL)
    graph = read_graph(path)
    ssd = build_ssd(_config(path, 320))
    assert ssd.feature_map_sizes == [(40, 40), (20, 20), (10, 10), (5, 5), (3, 3)]
    assert np.array_equal(ssd.anchors_cs, graph.anchors_cs) and ssd.num_anchors == 12804
    # the weight-shared class predictor: one kernel, cut from 6 x 91 to 6 x (background, person)
    class_kernels = [v for v in ssd.keras_model.variables if v.shape == (1, 1, 128, 12)]
    assert len(class_kernels) == 1
    diff = _compare(path, 320)
    assert diff["confident"] >= 5
    assert diff["score"] < 0.1, diff  # dynamic-range rounding: measured 0.04
    assert diff["box"] < 0.5, diff


def test_a_tf1_uint8_model_rebuilds_with_its_relu6_folded_into_the_ranges():
    """COCO SSD-MobileNet-v1 quant: no fused activation; uint8 ranges of [0, 6] are its ReLU6."""
    diff = _compare(need_shared(COCO_MODEL), 300)
    assert diff["confident"] >= 5
    assert diff["score"] < 0.1, diff  # measured 0.04
    assert diff["box"] < 0.5, diff


def test_the_rebuilt_default_exports_to_the_same_detections(tmp_path):
    """Rebuild -> int8 export -> runtime Detector gives the file's own people back."""
    from edgedetect.boxes import box_iou
    from edgedetect.detector import Detector
    from host_tools.export import convert, representative_images, write_labels
    from host_tools.ssd.model import build_ssd

    size = _default_size()
    ssd = build_ssd(_config(DEFAULT, size))
    out = tmp_path / "again.tflite"
    out.write_bytes(convert(ssd, "int8", representative=representative_images(size, 8)))
    write_labels(out, ["person"])
    before, after = Detector(DEFAULT, threshold=0.5), Detector(out, threshold=0.5)
    for rgb in _images_rgb():
        bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
        a, b = before.detect(bgr), after.detect(bgr)
        assert abs(len(a) - len(b)) <= 1
        if len(a) and len(b):
            assert box_iou(a.xyxy, b.xyxy).max(axis=1).min() > 0.7


def test_a_fine_tune_starts_from_the_default_and_resumes(tmp_path):
    from host_tools.ssd.data import load_train_images
    from host_tools.train import train

    data = load_train_images(
        f"pennfudan:{need_shared(PENNFUDAN)}", need_shared(SPLITS / "pennfudan_train.txt"), limit=4
    )
    cfg = _config(DEFAULT, _default_size())
    cfg.train.batch_size, cfg.train.checkpoint_every, cfg.train.warmup_steps = 2, 1, 1
    run = tmp_path / "run"
    train(cfg, run, None, data, steps=3, progress=False, stop_after=2)
    train(cfg, run, None, data, steps=3, resume=True, progress=False)
    rows = list(csv.DictReader((run / "log.csv").open()))
    assert [int(r["step"]) for r in rows] == [1, 2, 3]
    # the file's weights, not a random start: people are matched and the loss is already small
    assert all(math.isfinite(float(r["loss"])) and float(r["num_pos"]) > 0 for r in rows)
    assert float(rows[0]["cls"]) < 2.0


@pytest.mark.parametrize(
    ("model", "message"),
    [
        ({"arch": "tflite_graph"}, "needs model.graph"),
        ({"arch": "ssdlite_mobilenet_v2", "graph": "x.tflite"}, "only read with model.arch"),
    ],
)
def test_graph_config_mistakes_are_named(model, message):
    from host_tools.ssd.config import config_from_dict

    with pytest.raises(ConfigError, match=message):
        config_from_dict({"name": "x", "model": model})


def test_graph_files_that_cannot_be_rebuilt_say_why(tmp_path):
    from host_tools.ssd.model import build_ssd

    size = _default_size()
    with pytest.raises(ConfigError, match=f"takes {size} px; set model.input_size"):
        build_ssd(_config(DEFAULT, size + 20))
    with pytest.raises(ModelError, match="not found"):
        build_ssd(_config(tmp_path / "missing.tflite", 300))
    junk = tmp_path / "junk.tflite"
    junk.write_bytes(b"not a flatbuffer" * 10)
    with pytest.raises(ModelError, match="junk.tflite"):
        build_ssd(_config(junk, 300))
    raw = need_shared(SHARED_MODELS / "ssd_mobilenet_v2_320_coco_tf2_no_postprocess.tflite")
    with pytest.raises(ModelError, match="expected one TFLite_Detection_PostProcess op, found 0"):
        build_ssd(_config(raw, 320))
