r"""Import the weights of an OD-API SSD *TFLite* model into the Keras SSD.

The model is e.g. the COCO SSD-MobileNet-v1 quant model; only the background and person columns of
its class predictor are kept.

    python -m host_tools.import_tflite --tflite M.tflite --config ssd_mobilenet_v1_075_coco \
        --out W.weights.h5

TFLite exports of the OD API fold batch norm into the convolutions and (for the quant models) store
uint8 weights; they are dequantised (``(q - zero_point) * scale``), transposed from TFLite's
[out, kh, kw, in] / [1, kh, kw, C] layouts to Keras', and the folded bias goes into the Keras
batch-norm layer as ``beta`` with an identity normalisation (gamma 1, mean 0, variance 1 - epsilon).
The import is then checked against the TFLite model's own raw predictor outputs (the inputs of its
``TFLite_Detection_PostProcess`` op) on real images; the differences are those of int8 arithmetic.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NamedTuple

import host_tools.ssd  # noqa: F401  (selects tf_keras before TensorFlow loads)

# isort: split
import numpy as np

from edgedetect.backends._input import ssd_tensor
from edgedetect.cli import path_arg
from edgedetect.errors import ModelError
from host_tools._cli import cli_errors, first_line, output_file, path_option
from host_tools.ssd.config import SSDConfig, load_config
from host_tools.ssd.keras_compat import keras
from host_tools.ssd.model import SEP, SSDModel, build_ssd
from host_tools.ssd.tflite_graph import dequantize

PERSON_COLUMNS = (0, 1)  # background, person in the OD-API COCO label map
OD_API_MEAN = OD_API_STD = 127.5  # a float input's normalisation: p / 127.5 - 1, in [-1, 1]


def open_interpreter(path: Path):
    """The model with every tensor kept readable; a broken file is one line naming it."""
    from edgedetect.runtime import load_interpreter

    if not Path(path).is_file():
        raise ModelError(f"TFLite model {path} not found")
    return load_interpreter(path, preserve_all_tensors=True)[0]


def _dequant(interp, detail) -> np.ndarray:
    params = detail["quantization_parameters"]
    return dequantize(
        interp.get_tensor(detail["index"]),
        params["scales"],
        params["zero_points"],
        params.get("quantized_dimension", 0),
    )


def assign_from_tflite(
    ssd: SSDModel, interp, class_columns=PERSON_COLUMNS, classes_in_model: int = 91
) -> int:
    """Copy weights into every conv and batch-norm layer of ``ssd``; returns how many were set."""
    tensors = {d["name"]: d for d in interp.get_tensor_details()}
    eps_bn = {}
    count = 0

    def get(name: str) -> np.ndarray:
        if name not in tensors:
            raise ModelError(f"no tensor {name!r}")
        return _dequant(interp, tensors[name])

    for layer in ssd.keras_model.layers:
        scope = layer.name.replace(SEP, "/")
        if isinstance(layer, keras.layers.DepthwiseConv2D):
            w = get(f"{scope}/weights_quant/FakeQuantWithMinMaxVars")  # [1, kh, kw, C]
            layer.set_weights([np.transpose(w, (1, 2, 3, 0))])
            eps_bn[scope] = get(f"{scope}/depthwise_Fold_bias")
            count += 1
        elif isinstance(layer, keras.layers.Conv2D):
            folded = _assign_conv(layer, scope, get, class_columns, classes_in_model)
            if folded is not None:
                eps_bn[scope] = folded
            count += 1
    return count + _assign_folded_batchnorm(ssd, eps_bn)


def _assign_conv(
    layer: keras.layers.Conv2D,
    scope: str,
    get: Callable[[str], np.ndarray],
    class_columns: Sequence[int],
    classes_in_model: int,
) -> np.ndarray | None:
    """A plain conv's weights; returns the bias TFLite folded into it from its batch norm, or
    None for a box-predictor conv, whose bias is its own (and whose class columns are cut to
    ``class_columns``)."""
    w = np.transpose(
        get(f"{scope}/weights_quant/FakeQuantWithMinMaxVars"), (1, 2, 3, 0)
    )  # -> kh,kw,in,out
    if not layer.use_bias:
        layer.set_weights([w])
        return get(f"{scope}/Conv2D_Fold_bias")
    # box predictor: plain conv with bias
    b = get(f"{scope}/Conv2D_bias")
    if scope.endswith("ClassPredictor"):
        per = w.shape[-1] // classes_in_model
        keep = [a * classes_in_model + c for a in range(per) for c in class_columns]
        w, b = w[..., keep], b[keep]
    layer.set_weights([w, b])
    return None


def _assign_folded_batchnorm(ssd: SSDModel, eps_bn: dict[str, np.ndarray]) -> int:
    """Each batch norm passes its conv through with the folded bias added (gamma 1, mean 0,
    variance 1 - epsilon), as TFLite computes it; returns how many were set."""
    count = 0
    for layer in ssd.keras_model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            conv_scope = layer.name.replace(SEP, "/").rsplit("/BatchNorm", 1)[0]
            beta = eps_bn[conv_scope]
            n = beta.shape[0]
            layer.set_weights(
                [
                    np.ones(n, np.float32),
                    beta,
                    np.zeros(n, np.float32),
                    np.full(n, 1.0 - layer.epsilon, np.float32),
                ]
            )
            count += 1
    return count


class RawOutputs(NamedTuple):
    """What an SSD TFLite file computes on a batch of images, before its postprocess op."""

    inputs: np.ndarray  # [B, H, W, 3] float32: the normalised image the model computes on
    boxes: np.ndarray  # [B, N, 4] box encodings
    scores: np.ndarray  # [B, N, C] class scores (after the LOGISTIC)


def model_input(
    inp: dict, rgb: np.ndarray, mean: float = OD_API_MEAN, std: float = OD_API_STD
) -> tuple[np.ndarray, np.ndarray]:
    """``(tensor, normalised)`` for one RGB image already at the input size: what to feed the
    input ``inp`` (an interpreter's input details) and the float image that stands for.

    As the runtime's Detector feeds SSDs: a float input gets ``(p - mean) / std`` (the OD-API
    ``p / 127.5 - 1`` by default); a uint8 input raw pixels and an int8 one pixels - 128, whose
    values the model reads through its own quantization, ``(q - zero_point) * scale``.
    """
    dtype = np.dtype(inp["dtype"])
    if dtype not in (np.uint8, np.int8, np.float32):
        raise ModelError(f"TFLite model input {inp.get('name', '')!r}: unsupported type {dtype}")
    tensor = ssd_tensor(rgb, dtype, mean, std)
    if dtype == np.float32:
        return tensor, tensor[0]
    scale, zero = inp["quantization"]
    if not scale:
        raise ModelError(
            f"TFLite model input {inp.get('name', '')!r} is {dtype} without quantization "
            "parameters: its pixel scale is unknown"
        )
    return tensor, (tensor[0].astype(np.float32) - zero) * np.float32(scale)


def tflite_raw_outputs(
    interp, images_rgb: list[np.ndarray], mean: float = OD_API_MEAN, std: float = OD_API_STD
) -> RawOutputs:
    """The normalised inputs, box encodings and class scores that the TFLite model feeds its
    postprocess op, per image (each stretched to the model's input size, see `model_input`)."""
    import cv2

    pp = [op for op in interp._get_ops_details() if op["op_name"] == "TFLite_Detection_PostProcess"]  # noqa: SLF001
    if not pp:
        raise ModelError(
            "TFLite model has no TFLite_Detection_PostProcess op to read raw outputs from"
        )
    box_i, cls_i = pp[0]["inputs"][:2]
    details = {d["index"]: d for d in interp.get_tensor_details()}
    inp = interp.get_input_details()[0]
    height, width = int(inp["shape"][1]), int(inp["shape"][2])
    inputs, boxes, scores = [], [], []
    for img in images_rgb:
        pixels = cv2.resize(img, (width, height), interpolation=cv2.INTER_LINEAR)
        tensor, x = model_input(inp, pixels, mean, std)
        interp.set_tensor(inp["index"], tensor)
        interp.invoke()
        inputs.append(x)
        boxes.append(_dequant(interp, details[box_i]).reshape(-1, 4))
        scores.append(_dequant(interp, details[cls_i]).reshape(boxes[-1].shape[0], -1))
    return RawOutputs(np.stack(inputs), np.stack(boxes), np.stack(scores))


def verify_tflite(ssd: SSDModel, interp, images_rgb: list[np.ndarray]) -> dict:
    import tensorflow as tf

    size = ssd.config.model.input_size
    shape = tuple(int(d) for d in interp.get_input_details()[0]["shape"][1:3])
    if shape != (size, size):
        raise ModelError(
            f"the TFLite model takes {shape[1]}x{shape[0]} images, the config {size}x{size}: "
            "set model.input_size to match"
        )
    # the Keras model gets exactly the normalised image the TFLite model computed on
    x, ref_box, ref_scores = tflite_raw_outputs(interp, images_rgb)
    box, logits = ssd.keras_model.predict(x, verbose=0)
    scores = tf.sigmoid(logits).numpy()
    ref = (
        ref_scores[..., list(PERSON_COLUMNS)]
        if ref_scores.shape[-1] > scores.shape[-1]
        else ref_scores
    )
    person = ref[..., 1] > 0.5
    return {
        "images": len(images_rgb),
        "max_abs_diff_box_encodings": float(np.abs(box - ref_box).max()),
        "mean_abs_diff_box_encodings": float(np.abs(box - ref_box).mean()),
        "max_abs_diff_person_score": float(np.abs(scores[..., 1] - ref[..., 1]).max()),
        "mean_abs_diff_person_score": float(np.abs(scores[..., 1] - ref[..., 1]).mean()),
        "anchors_with_person_score_over_0.5_tflite": int(person.sum()),
        "of_those_also_over_0.5_keras": int((scores[..., 1][person] > 0.5).sum()),
    }


def import_tflite(tflite: Path, cfg: SSDConfig) -> tuple[SSDModel, object]:
    """The Keras model of ``cfg`` holding the weights of ``tflite``, and the file's interpreter.

    A config whose layers do not fit the file (another depth multiplier: ``ssd_mobilenet_v1``
    for the depth-0.75 COCO model) is one line naming both; Keras' shape error was a traceback.
    """
    interp = open_interpreter(tflite)
    ssd = build_ssd(cfg)
    try:
        assign_from_tflite(ssd, interp)
    except (ModelError, ValueError) as exc:
        raise ModelError(
            f"{tflite} does not fit config {cfg.name} ({first_line(exc)}); pass the --config of "
            "its architecture (ssd_mobilenet_v1_075_coco for the COCO SSD-MobileNet-v1 quant "
            "model), or train from the file as it is with model.arch 'tflite_graph'"
        ) from None
    return ssd, interp


@cli_errors("import_tflite")
def main(argv: list[str] | None = None) -> int:
    from host_tools.import_weights import default_verify_images, read_rgb, write_weights

    p = argparse.ArgumentParser(
        prog="python -m host_tools.import_tflite", description=__doc__.split("\n")[0]
    )
    p.add_argument(
        "--tflite",
        type=path_option,
        required=True,
        help="OD-API SSD TFLite model with the postprocess op",
    )
    p.add_argument(
        "--config",
        type=path_arg,
        default="ssd_mobilenet_v1_075_coco",
        help="config matching its architecture",
    )
    p.add_argument(
        "--out", type=path_option, required=True, help="Keras weights file to write (*.weights.h5)"
    )
    p.add_argument("--images", type=Path, nargs="*", help="real images to verify on")
    args = p.parse_args(argv)
    output_file(args.out, "--out", "model.weights.h5", suffix=".h5")  # before the import
    ssd, interp = import_tflite(args.tflite, load_config(args.config))
    images = [read_rgb(x) for x in (args.images or default_verify_images())]
    report = verify_tflite(ssd, interp, images)
    print(json.dumps(report, indent=2))
    write_weights(ssd, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
