r"""Import an OD-API TF1 frozen SSD graph's weights into the Keras SSD, and check the two agree.

Run as

    python -m host_tools.import_weights --pb GRAPH.pb --config ssdlite_mobilenet_v2 \
        --out W.weights.h5

it maps every graph constant ``<scope>/weights``, ``<scope>/depthwise_weights``, ``<scope>/biases``
and ``<scope>/BatchNorm/{gamma,beta,moving_mean,moving_variance}`` onto the Keras layer named after
that scope, then runs the frozen graph and the Keras model on real images and reports the largest
absolute difference of the raw box-predictor outputs (``concat`` = box encodings, ``concat_1`` =
class logits) and of the anchors (``Concatenate/concat``). It refuses to write weights that do not
reproduce the graph (``--tolerance``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import host_tools.ssd  # noqa: F401  (selects tf_keras before TensorFlow loads)

# isort: split
import numpy as np
import tensorflow as tf

from edgedetect.cli import path_arg
from edgedetect.errors import EdgeDetectError, ModelError
from edgedetect.images import read_bgr
from host_tools._cli import cli_errors, output_file, path_option, positive_float
from host_tools.export import save_weights
from host_tools.shared_data import INRIA_TEST, PEDESTRIAN_PB, PENNFUDAN, TRAIN_SPLIT
from host_tools.ssd.config import SSDConfig, load_config
from host_tools.ssd.keras_compat import keras
from host_tools.ssd.model import SEP, SSDModel, build_ssd

DEFAULT_PB = PEDESTRIAN_PB
RAW_BOX = "concat:0"
RAW_CLS = "concat_1:0"
ANCHORS = "Concatenate/concat:0"
PREPROCESSED = "Preprocessor/sub:0"
INPUT = "image_tensor:0"


def load_graph_def(pb_path: Path) -> tf.compat.v1.GraphDef:
    pb_path = Path(pb_path)
    if not pb_path.is_file():
        raise ModelError(
            f"frozen graph {pb_path} not found; pass --pb with an OD-API frozen_inference_graph.pb"
        )
    gd = tf.compat.v1.GraphDef()
    try:
        gd.ParseFromString(pb_path.read_bytes())
    except Exception as exc:  # protobuf raises DecodeError subclasses
        raise ModelError(
            f"{pb_path} is not a TensorFlow GraphDef ({exc}); pass a frozen_inference_graph.pb"
        ) from exc
    if not gd.node:  # an empty file, or a few bytes that happen to parse
        raise ModelError(
            f"{pb_path} holds no graph (an empty or wrong file); "
            "pass an OD-API frozen_inference_graph.pb"
        )
    return gd


def graph_constants(gd: tf.compat.v1.GraphDef) -> dict[str, np.ndarray]:
    """All Const nodes of the graph as numpy arrays, keyed by node name."""
    out = {}
    for node in gd.node:
        if node.op == "Const":
            out[node.name] = tf.make_ndarray(node.attr["value"].tensor)
    return out


def assign_weights(ssd: SSDModel, consts: dict[str, np.ndarray]) -> list[str]:
    """Copy graph constants into the Keras layers; returns the names of graph weights left unused.

    Raises ModelError when a Keras layer finds no matching constant or a shape differs, naming both.
    """
    graph = _GraphConstants(consts)
    for layer in ssd.keras_model.layers:
        _assign_layer(layer, graph)
    weight_like = [
        k
        for k in consts
        if k.split("/")[-1]
        in (
            "weights",
            "depthwise_weights",
            "biases",
            "gamma",
            "beta",
            "moving_mean",
            "moving_variance",
        )
        and (k.startswith("FeatureExtractor/") or k.startswith("BoxPredictor"))
    ]
    return sorted(set(weight_like) - graph.used)


class _GraphConstants:
    """The graph's constants, remembering which were copied so the unused ones can be named."""

    def __init__(self, consts: dict[str, np.ndarray]) -> None:
        self.consts = consts
        self.used: set[str] = set()

    def take(self, key: str, shape) -> np.ndarray:
        """The constant ``key``, checked against the Keras weight's shape."""
        if key not in self.consts:
            raise ModelError(
                f"graph has no constant {key!r} for the Keras layer; "
                "is the config the graph's architecture?"
            )
        arr = self.consts[key]
        if tuple(arr.shape) != tuple(shape):
            raise ModelError(
                f"graph constant {key} has shape {arr.shape}, Keras expects {tuple(shape)}"
            )
        self.used.add(key)
        return arr


def _assign_layer(layer: keras.layers.Layer, graph: _GraphConstants) -> None:
    """One Keras layer's weights from the constants under its graph scope (layers without
    weights are left alone)."""
    graph_scope = layer.name.replace(SEP, "/")
    if isinstance(layer, keras.layers.BatchNormalization):
        names = ["gamma", "beta", "moving_mean", "moving_variance"]
        new = []
        for w, n in zip(layer.weights, names, strict=True):
            key = f"{graph_scope}/{n}"
            if n == "gamma" and key not in graph.consts:  # BN built with scale=False in the graph
                new.append(np.ones(w.shape, np.float32))
                continue
            new.append(graph.take(key, w.shape))
        layer.set_weights(new)
    elif isinstance(layer, keras.layers.DepthwiseConv2D):
        layer.set_weights([graph.take(f"{graph_scope}/depthwise_weights", layer.weights[0].shape)])
    elif isinstance(layer, keras.layers.Conv2D):
        ws = [graph.take(f"{graph_scope}/weights", layer.weights[0].shape)]
        if layer.use_bias:
            ws.append(graph.take(f"{graph_scope}/biases", layer.weights[1].shape))
        layer.set_weights(ws)


def run_graph(gd: tf.compat.v1.GraphDef, images_rgb: list[np.ndarray]) -> dict[str, np.ndarray]:
    """The frozen graph's preprocessed input, raw outputs and anchors on uint8 RGB images."""
    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.import_graph_def(gd, name="")
    out: dict[str, list[np.ndarray]] = {PREPROCESSED: [], RAW_BOX: [], RAW_CLS: [], ANCHORS: []}
    with tf.compat.v1.Session(graph=graph) as sess:
        for img in images_rgb:
            res = sess.run(list(out), {INPUT: img[None]})
            for k, v in zip(out, res, strict=True):
                out[k].append(v)
    return {k: np.concatenate(v) if k != ANCHORS else v[0] for k, v in out.items()}


def verify(
    ssd: SSDModel, gd: tf.compat.v1.GraphDef, images_rgb: list[np.ndarray], name: str = "graph"
) -> dict[str, float]:
    """Max abs differences of the graph's and the Keras model's raw outputs on the same input.

    A config of another input size than the graph's is refused in one line: its weights fit (the
    layers are the same), and feeding it the graph's input was a Keras ``ValueError`` traceback.
    """
    ref = run_graph(gd, images_rgb)
    _check_input_size(ssd, ref[PREPROCESSED].shape[1:3], name)
    box, cls = ssd.keras_model.predict(ref[PREPROCESSED], verbose=0)
    ref_box = ref[RAW_BOX].reshape(box.shape)
    return {
        "images": len(images_rgb),
        "max_abs_diff_box_encodings": float(np.abs(box - ref_box).max()),
        "max_abs_diff_class_logits": float(np.abs(cls - ref[RAW_CLS]).max()),
        "max_abs_diff_anchors": float(np.abs(ssd.anchors - ref[ANCHORS]).max()),
        "max_abs_box_encoding": float(np.abs(ref_box).max()),
        "max_abs_class_logit": float(np.abs(ref[RAW_CLS]).max()),
    }


def _check_input_size(ssd: SSDModel, graph_hw: tuple[int, ...], name: str) -> None:
    """The graph ``name`` resizes its input to ``graph_hw``; the Keras model takes
    ``model.input_size``."""
    size = ssd.config.model.input_size
    if tuple(graph_hw) != (size, size):
        h, w = graph_hw
        raise ModelError(
            f"{name} takes {w}x{h} images but config {ssd.config.name} has model.input_size "
            f"{size}; pass a --config with input_size {w} (anchors and outputs depend on it)"
        )


def read_rgb(path: Path) -> np.ndarray:
    """A verification image as RGB (the order the TF graph was trained on).

    A folder is refused with this tool's fix: the shared image reader's hint, ``--source dir:``,
    is an option of ``edgedetect``, not of the importers."""
    import cv2

    if Path(path).is_dir():
        raise EdgeDetectError(
            f"--images {path} is a folder; pass its image files, e.g. --images {path}/*.jpg"
        )
    return cv2.cvtColor(read_bgr(path, "verification image"), cv2.COLOR_BGR2RGB)


def import_pb(pb: Path, cfg: SSDConfig) -> tuple[SSDModel, tf.compat.v1.GraphDef, list[str]]:
    gd = load_graph_def(pb)
    ssd = build_ssd(cfg)
    unused = assign_weights(ssd, graph_constants(gd))
    return ssd, gd, unused


def default_verify_images() -> list[Path]:
    imgs = sorted((INRIA_TEST / "pos").glob("*.png"))
    if TRAIN_SPLIT.exists():
        names = [n.strip() for n in TRAIN_SPLIT.read_text().split() if n.strip()][:4]
        imgs += [PENNFUDAN / "PNGImages" / n for n in names]
    return imgs


def write_weights(ssd: SSDModel, out: Path) -> None:
    """Save imported (and verified) Keras weights, creating the folder; used by both importers."""
    out.parent.mkdir(parents=True, exist_ok=True)
    save_weights(ssd.keras_model, out)
    print(f"wrote {out}")


@cli_errors("import_weights")
def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m host_tools.import_weights", description=__doc__.split("\n")[0]
    )
    p.add_argument(
        "--pb", type=path_option, default=DEFAULT_PB, help="OD-API TF1 frozen_inference_graph.pb"
    )
    p.add_argument(
        "--config",
        type=path_arg,
        default="ssdlite_mobilenet_v2",
        help="config name or path matching the graph",
    )
    p.add_argument(
        "--out", type=path_option, required=True, help="Keras weights file to write (*.weights.h5)"
    )
    p.add_argument(
        "--images",
        type=Path,
        nargs="*",
        help="real images to verify on (default: INRIA + 4 Penn-Fudan train)",
    )
    p.add_argument(
        "--tolerance",
        type=positive_float,  # nan passed every check (nothing is > nan), -1 failed every one
        default=1e-3,
        help="max allowed abs difference of raw outputs (a number > 0)",
    )
    args = p.parse_args(argv)
    output_file(args.out, "--out", "model.weights.h5", suffix=".h5")  # before the import
    cfg = load_config(args.config)
    ssd, gd, unused = import_pb(args.pb, cfg)
    images = [read_rgb(x) for x in (args.images or default_verify_images())]
    if not images:
        raise EdgeDetectError("no verification images found; pass --images")
    report = verify(ssd, gd, images, str(args.pb))
    print(json.dumps({**report, "unused_graph_weights": unused}, indent=2))
    worst = max(
        report["max_abs_diff_box_encodings"],
        report["max_abs_diff_class_logits"],
        report["max_abs_diff_anchors"],
    )
    if worst > args.tolerance or unused:
        raise ModelError(
            f"imported Keras model does not reproduce {args.pb} (max abs diff {worst:.3g}, "
            f"unused weights {unused[:5]}); check the config matches the graph"
        )
    write_weights(ssd, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
