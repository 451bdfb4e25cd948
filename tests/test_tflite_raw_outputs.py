"""`host_tools.import_tflite.tflite_raw_outputs` feeds each TFLite file what its input type asks
for: a float input the OD-API normalisation (p / 127.5 - 1), a uint8 or int8 input raw pixels
read through the input's own quantization. It fed raw uint8 pixels to every model, float ones
included. Failed before its fix."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

pytest.importorskip("tensorflow", reason="TensorFlow (host extra) is not installed")

from conftest import COCO_MODEL, FPNLITE_MODEL, need_shared, skimage_bgr  # noqa: E402

from edgedetect.errors import ModelError  # noqa: E402


def _astronaut(size: int) -> tuple[np.ndarray, np.ndarray]:
    rgb = cv2.cvtColor(skimage_bgr("astronaut"), cv2.COLOR_BGR2RGB)
    return rgb, cv2.resize(rgb, (size, size), interpolation=cv2.INTER_LINEAR)


def _fed(interp) -> np.ndarray:
    return interp.get_tensor(interp.get_input_details()[0]["index"])


def test_a_float_input_model_gets_the_od_api_normalisation():
    from host_tools.import_tflite import open_interpreter, tflite_raw_outputs

    interp = open_interpreter(need_shared(FPNLITE_MODEL))
    rgb, pixels = _astronaut(320)
    x, boxes, scores = tflite_raw_outputs(interp, [rgb])
    fed = _fed(interp)
    assert fed.dtype == np.float32 and -1.0 <= fed.min() and fed.max() <= 1.0
    np.testing.assert_allclose(fed[0], pixels / 127.5 - 1.0, atol=1e-6)
    np.testing.assert_array_equal(x[0], fed[0])  # the image the Keras rebuild is given
    assert boxes.shape == (1, 12804, 4) and scores.shape[:2] == (1, 12804)
    assert (scores[0, :, 1] > 0.5).sum() >= 1  # the astronaut is found (raw pixels: not)


def test_a_uint8_input_model_gets_raw_pixels_read_through_its_quantization():
    from host_tools.import_tflite import open_interpreter, tflite_raw_outputs

    interp = open_interpreter(need_shared(COCO_MODEL))
    rgb, pixels = _astronaut(300)
    x, _, scores = tflite_raw_outputs(interp, [rgb])
    np.testing.assert_array_equal(_fed(interp)[0], pixels)
    np.testing.assert_allclose(x[0], (pixels.astype(np.float32) - 128) * 0.0078125)
    assert (scores[0, :, 1] > 0.5).sum() >= 1


def test_an_int8_input_gets_pixels_minus_128_and_its_scale():
    from host_tools.import_tflite import model_input

    pixels = np.array([[[0, 128, 255]]], np.uint8)
    inp = {"dtype": np.int8, "quantization": (1 / 127.5, -1), "name": "in"}
    tensor, x = model_input(inp, pixels)
    assert tensor.dtype == np.int8 and tensor.tolist() == [[[[-128, 0, 127]]]]
    np.testing.assert_allclose(x, (pixels.astype(np.float32) - 127) / 127.5, atol=1e-6)
    with pytest.raises(ModelError, match="without quantization"):
        model_input({"dtype": np.int8, "quantization": (0.0, 0), "name": "in"}, pixels)
