"""The YOLO-family backend on real TFLite models built here with TensorFlow (known weights, known
boxes), in both output layouts, float and int8, checked against a NumPy reference decoder."""

from __future__ import annotations

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow", reason="TensorFlow (host extra) is not installed")

SIZE, N, C = 64, 48, 2
# Candidate rows: cx, cy, w, h (normalised to the input, as Ultralytics TFLite exports) + C scores.
ROWS = np.full((N, 4 + C), 0.02, np.float32)
ROWS[:, :4] = [0.5, 0.5, 0.1, 0.1]
ROWS[3] = [0.50, 0.55, 0.25, 0.50, 0.90, 0.05]  # a person
ROWS[9] = [0.51, 0.55, 0.25, 0.50, 0.70, 0.05]  # the same person again: NMS removes it
ROWS[7] = [0.25, 0.30, 0.20, 0.20, 0.10, 0.80]  # class 1
ROWS[20] = [0.80, 0.60, 0.15, 0.30, 0.60, 0.02]  # a second person


def _build(path, transposed: bool, int8: bool):
    """A Keras model whose output is ROWS plus a small known function of the mean input colour."""
    kernel = np.full((3, N * (4 + C)), 0.001, np.float32)
    inp = tf.keras.Input((SIZE, SIZE, 3), batch_size=1)
    x = tf.keras.layers.GlobalAveragePooling2D()(inp)
    dense = tf.keras.layers.Dense(N * (4 + C))
    x = dense(x)
    bias = (ROWS if transposed else ROWS.T).reshape(-1)
    x = tf.keras.layers.Reshape((N, 4 + C) if transposed else (4 + C, N))(x)
    model = tf.keras.Model(inp, x)
    dense.set_weights([kernel, bias])
    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    if int8:
        rng = np.random.default_rng(0)
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        conv.representative_dataset = lambda: (
            [rng.random((1, SIZE, SIZE, 3), np.float32)] for _ in range(20)
        )
        conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        conv.inference_input_type = tf.int8
        conv.inference_output_type = tf.int8
    path.write_bytes(conv.convert())
    path.with_suffix(".labels.txt").write_text("person\nbicycle\n")
    return path


def _reference(image: np.ndarray, threshold: float) -> list[tuple[int, float, np.ndarray]]:
    """Letterbox by hand, compute the output, decode, brute-force NMS: (class, score, xyxy)."""
    h, w = image.shape[:2]
    scale = min(SIZE / w, SIZE / h)
    nw, nh = round(w * scale), round(h * scale)
    left, top = round((SIZE - nw) / 2 - 0.1), round((SIZE - nh) / 2 - 0.1)
    canvas = np.full((SIZE, SIZE, 3), 114, np.uint8)
    import cv2

    canvas[top : top + nh, left : left + nw] = cv2.resize(
        image, (nw, nh), interpolation=cv2.INTER_LINEAR
    )
    mean = (canvas[:, :, ::-1].astype(np.float32) / 255).mean(axis=(0, 1))
    rows = ROWS + 0.001 * mean.sum()
    found = []
    for r in rows:
        cls = int(np.argmax(r[4:]))
        if r[4 + cls] < threshold:
            continue
        cx, cy, bw, bh = r[:4] * SIZE
        box = (
            np.array([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2]) - [left, top, left, top]
        ) / scale
        found.append((cls, float(r[4 + cls]), np.clip(box, 0, [w, h, w, h])))
    found.sort(key=lambda f: -f[1])
    kept: list[tuple[int, float, np.ndarray]] = []
    for f in found:
        if all(k[0] != f[0] or _iou(k[2], f[2]) <= 0.6 for k in kept):
            kept.append(f)
    return kept


def _iou(a, b) -> float:
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


@pytest.mark.parametrize(("transposed", "int8"), [(False, False), (True, False), (False, True)])
def test_yolo_export_decodes_like_the_reference(tmp_path, transposed, int8):
    from edgedetect.detector import Detector

    path = _build(tmp_path / "yolo.tflite", transposed, int8)
    det = Detector(path, threshold=0.3, classes=None, num_threads=1)
    assert det.kind == "yolo" and det.input_size == (SIZE, SIZE)
    assert det.input_dtype == (np.int8 if int8 else np.float32)
    image = np.random.default_rng(1).integers(
        0, 255, (120, 200, 3), dtype=np.uint8
    )  # wide: bars top/bottom
    got = det.detect(image)
    ref = _reference(image, 0.3)
    assert [c for c, _, _ in ref] == [0, 1, 0]  # the duplicate of the first person was suppressed
    assert got.class_id.tolist() == [c for c, _, _ in ref]
    tol = 0.02 if int8 else 1e-4
    np.testing.assert_allclose(got.score, [s for _, s, _ in ref], atol=tol)
    np.testing.assert_allclose(
        got.xyxy, np.stack([b for _, _, b in ref]), atol=2.0 if int8 else 0.01
    )
    assert [got.names[int(i)] for i in got.class_id] == ["person", "bicycle", "person"]


def test_yolo_class_filter_and_metadata_names(tmp_path):
    """Labels from the export's own metadata.json, and the person filter applied before NMS."""
    import json
    import zipfile

    from edgedetect.detector import Detector

    path = _build(tmp_path / "meta.tflite", transposed=False, int8=False)
    path.with_suffix(".labels.txt").unlink()
    with zipfile.ZipFile(path, "a") as zf:
        zf.writestr(
            "metadata.json",
            json.dumps({"names": {"0": "person", "1": "bicycle"}, "imgsz": [SIZE, SIZE]}),
        )
    det = Detector(path, threshold=0.3, num_threads=1)  # default classes: person
    got = det.detect(np.zeros((64, 64, 3), np.uint8))
    assert det.names == {0: "person", 1: "bicycle"}
    assert got.class_id.tolist() == [0, 0] and (got.score > 0.5).all()
