"""The raw-output SSD path (box encodings + class scores + anchors, decoded in numpy).

A tiny real TFLite model is built with TensorFlow whose outputs are known constants, so the
expected boxes are computed independently of the detector: decoding, the background column,
thresholding, class filtering and NMS are checked through the real LiteRT interpreter.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edgedetect.detector import Detector
from edgedetect.errors import ModelError

tf = pytest.importorskip("tensorflow", reason="TensorFlow (the host extra) builds the test model")

# 4 anchors (ycenter, xcenter, h, w); codes are zero except anchor 1 (shifted down by half its
# height: ty = 0.5 * 10) and anchor 3 (twice as wide: tw = 5 * ln 2).
ANCHORS = np.array(
    [[0.25, 0.25, 0.5, 0.5], [0.3, 0.3, 0.2, 0.2], [0.27, 0.27, 0.5, 0.5], [0.75, 0.5, 0.2, 0.2]],
    np.float32,
)
CODES = np.zeros((4, 4), np.float32)
CODES[1, 0] = 5.0
CODES[3, 3] = 5.0 * np.log(2.0)
# columns: background, person, car
SCORES = np.array(
    [[0.1, 0.9, 0.0], [0.2, 0.6, 0.7], [0.1, 0.8, 0.0], [0.9, 0.05, 0.55]], np.float32
)


def build_raw_model(path: Path, with_anchor_output: bool) -> Path:
    @tf.function(input_signature=[tf.TensorSpec([1, 32, 32, 3], tf.float32)])
    def serve(x):
        z = tf.reduce_mean(x) * 0.0
        out = {
            "box_encodings": tf.constant(CODES[None]) + z,
            "class_scores": tf.constant(SCORES[None]) + z,
        }
        if with_anchor_output:
            out["anchors"] = tf.constant(ANCHORS) + z
        return out

    module = tf.Module()
    module.serve = serve
    saved = path.parent / "saved_model"
    tf.saved_model.save(module, str(saved), signatures={"serving_default": serve})
    # via a SavedModel so the output names ("anchors", ...) live in the TFLite signature
    path.write_bytes(tf.lite.TFLiteConverter.from_saved_model(str(saved)).convert())
    (path.parent / (path.stem + ".labels.txt")).write_text("person\ncar\n")
    return path


def expected_xyxy(anchor: int, size: int = 100) -> np.ndarray:
    yc, xc, h, w = ANCHORS[anchor]
    ty, tx, th, tw = CODES[anchor]
    yc, xc = yc + ty / 10 * h, xc + tx / 10 * w
    h, w = h * np.exp(th / 5), w * np.exp(tw / 5)
    return np.clip(np.array([xc - w / 2, yc - h / 2, xc + w / 2, yc + h / 2]), 0, 1) * size


@pytest.mark.parametrize("with_anchor_output", [True, False])
def test_raw_model_decoding(tmp_path: Path, with_anchor_output: bool) -> None:
    model = build_raw_model(tmp_path / "raw.tflite", with_anchor_output)
    if not with_anchor_output:
        with pytest.raises(ModelError, match=r"raw\.anchors\.npy"):
            Detector(model)
        np.save(tmp_path / "raw.anchors.npy", ANCHORS)
    image = np.zeros((100, 100, 3), np.uint8)
    det = Detector(model, threshold=0.5, classes=None, iou_threshold=0.5)
    assert det.kind == "raw"
    got = det.detect(image)
    # person: anchors 0 (0.9), 2 (0.8, IoU with 0 ~0.79 -> suppressed), 1 (0.6);
    # car: anchor 1 (0.7), 3 (0.55). The background column never yields a detection.
    assert [
        (label, round(float(s), 2)) for label, s in zip(got.labels, got.score, strict=True)
    ] == [("person", 0.9), ("car", 0.7), ("person", 0.6), ("car", 0.55)]
    np.testing.assert_allclose(got.xyxy[0], expected_xyxy(0), atol=1e-3)
    np.testing.assert_allclose(got.xyxy[1], expected_xyxy(1), atol=1e-3)
    np.testing.assert_allclose(got.xyxy[3], expected_xyxy(3), atol=1e-3)
    people = Detector(model, threshold=0.5, iou_threshold=0.5).detect(image)
    assert people.labels == ["person", "person"]
