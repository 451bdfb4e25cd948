r"""Export a trained Keras SSD as a SavedModel and as TFLite (postprocess-op or raw-output variant).

Run as

    python -m host_tools.export --config ssdlite_mobilenet_v2 --weights W.weights.h5 \
        --out models/x.tflite --mode int8

it writes a TFLite model that ends in the ``TFLite_Detection_PostProcess`` custom op, the way the OD
API's ``export_tflite_graph_tf2`` does it: the score converter runs in the graph, and an empty
``tf.function`` whose ``experimental_implements`` string carries the op's attributes receives the
box encodings, the class scores and the center-size anchors as a constant; the TFLite converter
replaces that function by the custom op. Outputs: boxes [1, N, 4] (ymin, xmin, ymax, xmax,
normalised), classes [1, N] (0-based), scores [1, N], count [1].

``--raw`` instead writes box encodings [1, N, 4], class scores [1, N, C+1] (after sigmoid/softmax,
column 0 = background) and the anchors [N, 4] (ycenter, xcenter, h, w) as a constant output named
``anchors``; the runtime decodes with scales 10, 10, 5, 5 and runs its own NMS.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import host_tools.ssd  # noqa: F401  (selects tf_keras before TensorFlow loads)

# isort: split
import numpy as np
import tensorflow as tf

from edgedetect.cli import path_arg, positive_int
from edgedetect.errors import EdgeDetectError, ModelError
from edgedetect.images import read_bgr, whole_file, write_whole
from host_tools._cli import cli_errors, first_line, output_file, path_option
from host_tools.datasets import DatasetError
from host_tools.datasets.sources import DataSource
from host_tools.shared_data import PENNFUDAN, TRAIN_SPLIT
from host_tools.ssd import native_stderr_quiet
from host_tools.ssd.config import SSDConfig, load_config
from host_tools.ssd.model import SSDModel, build_ssd, score_fn

POSTPROCESS_OP = "TFLite_Detection_PostProcess"
MODES = ("float32", "dynamic", "float16", "int8")


DEFAULT_CONFIG = "ssdlite_mobilenet_v2"


def weights_config(config: str | None, weights: str | Path) -> str | Path:
    """``--config``, else the ``config.json`` of the training run that holds ``weights``
    (``RUN/final.weights.h5``, ``RUN/best.weights.h5``, ``RUN/checkpoints``), else the default.

    Without it, ``--weights RUN/final.weights.h5`` took the default config: int8 was calibrated on
    Penn-Fudan instead of the run's ``data.sources`` and the default's postprocess was used, with
    no word; a run of another model failed with a shape error that asked for the config.
    """
    if config is not None:
        return config
    w = Path(weights)
    if is_checkpoint_prefix(w):  # RUN/checkpoints/ckpt-N
        run = w.parent.parent
    else:
        run = w.parent if w.is_file() or w.name == "checkpoints" else w
    saved = run / "config.json"
    if saved.is_file():
        print(f"config: {saved} (the run's own; --config to use another)", flush=True)
        return saved
    return DEFAULT_CONFIG


def is_checkpoint_prefix(path: Path) -> bool:
    """``RUN/checkpoints/ckpt-N``: one checkpoint of a run, named as validate lists its steps.

    Such a prefix is no file (its files are ``ckpt-N.index`` and ``ckpt-N.data-*``), so it was
    called "not found; run host_tools.train first" while the checkpoint was there.
    """
    return not path.exists() and path.with_name(path.name + ".index").is_file()


def _weights_in_run(folder: Path) -> str:
    """The fix for ``--weights RUN``: the weights files that run folder holds, by name."""
    held = [
        str(p)
        for p in (folder / "best.weights.h5", folder / "final.weights.h5", folder / "checkpoints")
        if p.exists()
    ]
    if held:
        return f"it is a training run: pass one of {', '.join(held)}"
    return "pass a training run's checkpoints/ dir or a .weights.h5 file"


def load_ssd(config: str | Path | SSDConfig, weights: str | Path | None) -> SSDModel:
    """Build the model of ``config`` and load ``weights`` into it.

    ``weights``: Keras weights (``.weights.h5``), a training checkpoint dir (its latest) or one
    checkpoint (``RUN/checkpoints/ckpt-N``); None: random init.
    """
    if (
        weights is not None
        and not Path(weights).exists()
        and not is_checkpoint_prefix(Path(weights))
    ):
        raise ModelError(weights_not_found(Path(weights)))  # before the model is built
    cfg = config if isinstance(config, SSDConfig) else load_config(config)
    ssd = build_ssd(cfg)
    if weights is None:
        return ssd
    w = Path(weights)
    if w.is_dir():
        latest = tf.train.latest_checkpoint(str(w))
        if latest is None:
            raise ModelError(f"no checkpoint in {w}; {_weights_in_run(w)}")
        restore_checkpoint(ssd, latest)
    elif is_checkpoint_prefix(w):
        restore_checkpoint(ssd, w)
    elif w.is_file():
        check_weights_file(w, "weights")
        try:
            ssd.keras_model.load_weights(str(w))
        except Exception as exc:  # h5py / Keras raise various types for a wrong file
            raise ModelError(
                f"cannot load weights {w} into {cfg.name} ({exc}); was it made with this config?"
            ) from exc
    else:
        raise ModelError(weights_not_found(w))
    return ssd


def weights_not_found(w: Path) -> str:
    """The error of a ``--weights`` that is not there: in a folder of checkpoints (a step the run
    does not have, ``RUN/checkpoints/ckpt-99``), the steps it does have, not "train first"."""
    steps = sorted(checkpoint_steps(w.parent))
    if not steps:
        return f"weights {w} not found; run host_tools.import_weights or host_tools.train first"
    names = [f"ckpt-{s}" for s in steps]
    if len(names) > 2 and steps == list(range(steps[0], steps[-1] + 1)):
        have = f"{names[0]}..{names[-1]}"
    elif len(names) > 6:
        have = f"{', '.join(names[:2])}, ..., {', '.join(names[-2:])}"
    else:
        have = ", ".join(names)
    one = "it" if len(names) == 1 else "one of them"
    return f"checkpoint {w} not found: {w.parent} has {have}; pass {one}"


def checkpoint_steps(folder: Path) -> list[int]:
    """The steps of the checkpoints in ``folder`` (``ckpt-N.index``); none if it is no folder."""
    if not folder.is_dir():
        return []
    stems = (p.name.removesuffix(".index") for p in folder.glob("ckpt-*.index"))
    return [int(s[5:]) for s in stems if s[5:].isdigit()]


def restore_checkpoint(ssd: SSDModel, prefix: str | Path) -> None:
    """Load the model weights of a ``host_tools.train`` checkpoint (not the optimizer state)."""
    try:
        tf.train.Checkpoint(model=ssd.keras_model).restore(str(prefix)).expect_partial()
    except IndexError as exc:
        raise checkpoint_cut_short(prefix, exc) from exc
    except tf.errors.NotFoundError as exc:  # deleted by hand, still listed in the state file
        state = Path(prefix).parent / "checkpoint"
        raise ModelError(
            f"checkpoint {prefix} is listed in {state} but its files are gone; put them back or "
            "take its lines out of that file"
        ) from exc
    except (tf.errors.OpError, ValueError) as exc:
        raise ModelError(
            f"cannot restore checkpoint {prefix} ({first_line(exc)}); was it made with this config?"
        ) from exc


def checkpoint_step(prefix: str | Path) -> int:
    """The step of a training checkpoint: ``host_tools.train`` numbers them by step
    (``RUN/checkpoints/ckpt-N``)."""
    return int(str(prefix).rsplit("-", 1)[1])


def check_weights_file(path: Path, option: str) -> None:
    """Refuse a weights file that is no whole HDF5 file (empty, cut short, a .tflite or .pb) with
    what it is: the load error asked ``was it made with this config?``, the wrong fix."""
    import h5py

    size = path.stat().st_size
    if not h5py.is_hdf5(str(path)):
        what = "empty (0 bytes)" if size == 0 else f"not an HDF5 file ({size} bytes)"
        raise ModelError(
            f"{option} {path} is {what}: no Keras .weights.h5 file; pass the one host_tools.train "
            "or an importer wrote (or a run's checkpoints/ folder)"
        )
    try:
        with h5py.File(str(path), "r"):
            pass
    except OSError as exc:  # the signature is there, the rest is not
        raise ModelError(
            f"{option} {path} is cut short ({first_line(exc)}); copy or write it again"
        ) from None


def checkpoint_cut_short(prefix: str | Path, exc: IndexError) -> ModelError:
    """The error of a checkpoint whose data file ends early: TensorFlow's reader raises a bare
    ``IndexError("Read less bytes than requested")``."""
    return ModelError(
        f"checkpoint {prefix} is cut short ({exc}): a save stopped by a full disk or an "
        "interrupted copy; copy the run's checkpoints/ again from where it was made"
    )


def postprocess_signature(cfg: SSDConfig) -> str:
    """The ``experimental_implements`` text the MLIR converter legalises into the custom op."""
    pp, m = cfg.postprocess, cfg.model
    sy, sx, sh, sw = m.box_scales
    attrs = [
        ("max_detections", "i", pp.max_detections),
        ("max_classes_per_detection", "i", 1),
        ("detections_per_class", "i", pp.detections_per_class),
        ("use_regular_nms", "b", str(bool(pp.use_regular_nms)).lower()),
        ("nms_score_threshold", "f", pp.nms_score_threshold),
        ("nms_iou_threshold", "f", pp.nms_iou_threshold),
        ("y_scale", "f", sy),
        ("x_scale", "f", sx),
        ("h_scale", "f", sh),
        ("w_scale", "f", sw),
        ("num_classes", "i", m.num_classes),
    ]
    parts = [f'name: "{POSTPROCESS_OP}"']
    for key, kind, value in attrs:
        text = f"{value:.10g}" if kind == "f" else str(value)
        if kind == "f" and "." not in text and "e" not in text:
            text += ".0"
        parts.append(f'attr {{ key: "{key}" value {{ {kind}: {text} }} }}')
    return " ".join(parts)


class SSDExportModule(tf.Module):
    """Inference graph for TFLite: normalised image -> postprocess op outputs, or raw outputs."""

    def __init__(self, ssd: SSDModel, raw: bool = False):
        super().__init__()
        # Track only the variables, not the Keras model: saving a tracked Keras model re-traces
        # every layer for the SavedModel the converter writes (one conversion took ~1 min).
        object.__setattr__(self, "model", ssd.keras_model)
        self.weights = list(ssd.keras_model.variables)
        self.cfg = ssd.config
        self.raw = raw
        self._anchors = ssd.anchors_cs.astype(np.float32)
        self._score = score_fn(ssd.config)
        size = ssd.config.model.input_size

        @tf.function(experimental_implements=postprocess_signature(ssd.config))
        def _postprocess(box_encodings, class_predictions, anchors):
            # Placeholder body: the converter swaps this function for the custom op.
            del box_encodings, class_predictions, anchors
            return (
                tf.constant(0.0, name="boxes"),
                tf.constant(0.0, name="scores"),
                tf.constant(0.0, name="classes"),
                tf.constant(0.0, name="num_detections"),
            )

        self._postprocess = _postprocess
        self.serve = tf.function(
            self._serve,
            input_signature=[
                tf.TensorSpec([1, size, size, 3], tf.float32, name="normalized_input_image_tensor")
            ],
        )

    def _serve(self, image):
        box_encodings, logits = self.model(image, training=False)
        scores = self._score(logits)
        box_encodings = tf.identity(box_encodings, name="box_encodings")
        scores = tf.identity(scores, name="class_predictions")
        anchors = tf.constant(self._anchors, name="anchors")
        if self.raw:
            return {
                "box_encodings": box_encodings,
                "class_predictions": scores,
                "anchors": tf.identity(anchors, name="anchors"),
            }
        # tf.function hands the composite's outputs over reversed, as the OD API notes; undo it.
        return self._postprocess(box_encodings, scores, anchors)[::-1]


def concrete_function(ssd: SSDModel, raw: bool = False):
    module = SSDExportModule(ssd, raw=raw)
    return module, module.serve.get_concrete_function()


def export_saved_model(ssd: SSDModel, out_dir: Path, raw: bool = True) -> Path:
    """SavedModel with signature ``serving_default``.

    Raw outputs by default: it has no custom op to run.
    """
    module, fn = concrete_function(ssd, raw=raw)
    tf.saved_model.save(module, str(out_dir), signatures=fn)
    return out_dir


def normalize(rgb: np.ndarray, size: int) -> np.ndarray:
    """uint8 RGB -> [size, size, 3] float32 in [-1, 1], stretched as the runtime and OD API do."""
    import cv2

    img = cv2.resize(rgb, (size, size), interpolation=cv2.INTER_LINEAR)
    return img.astype(np.float32) / 127.5 - 1.0


def representative_images(
    size: int,
    count: int = 100,
    split_file: Path = TRAIN_SPLIT,
    image_dir: Path = PENNFUDAN / "PNGImages",
    sources: Sequence[DataSource] = (),
) -> list[np.ndarray]:
    """Calibration inputs: ``count`` training images, plus their mirror images if more are needed.

    With ``sources`` (a training mix, as a config's ``[data]`` names it) the images are spread over
    the sources by their weights, picked with a fixed seed, so a general-scene model is calibrated
    on the scenes it was trained for. Without, the first images of the Penn-Fudan train split.
    """
    import cv2

    paths = _mix_paths(sources, count) if sources else _split_paths(split_file, image_dir, count)
    out = [
        normalize(cv2.cvtColor(read_bgr(p, "calibration image"), cv2.COLOR_BGR2RGB), size)
        for p in paths
    ]
    i = 0
    while len(out) < count and i < len(paths):
        out.append(out[i][:, ::-1].copy())
        i += 1
    # Pin the calibrated input range to the full [-1, 1] pixel range so uint8 input = raw pixels.
    if out:
        out[0] = out[0].copy()
        out[0][0, 0, :] = -1.0
        out[0][0, 1, :] = 1.0
    return out


def _split_paths(split_file: Path, image_dir: Path, count: int) -> list[Path]:
    if not split_file.is_file():
        raise EdgeDetectError(
            f"calibration split {split_file} not found; int8 needs the Penn-Fudan train split"
        )
    return [image_dir / n for n in split_file.read_text().split() if n][:count]


def _mix_paths(sources: Sequence[DataSource], count: int) -> list[Path]:
    """``count`` image paths drawn without replacement, each source's share by weight (seed 0)."""
    rng = np.random.default_rng(0)
    total = sum(s.weight for s in sources)
    paths: list[Path] = []
    for s in (src.resolved() for src in sources):
        try:
            samples = s.load().samples
        except DatasetError as exc:  # a run's config.json made where its training sets were
            raise DatasetError(
                f"int8 calibration reads the config's data.sources: {exc}; point them at the "
                "training sets here, or remove data to calibrate on the Penn-Fudan train split"
            ) from None
        n = min(len(samples), max(1, round(count * s.weight / total)))
        paths += [samples[i].image_path for i in sorted(rng.choice(len(samples), n, replace=False))]
    return paths[:count]


def convert(
    ssd: SSDModel,
    mode: str,
    raw: bool = False,
    representative: list[np.ndarray] | None = None,
    per_channel: bool = True,
    keras_model=None,
) -> bytes:
    """Convert the model to TFLite bytes in ``mode`` (see module doc)."""
    if mode not in MODES:
        raise EdgeDetectError(f"unknown mode {mode!r}; use one of {MODES}")
    if keras_model is not None:  # e.g. a QAT model with fake-quant layers
        ssd = SSDModel(ssd.config, keras_model, ssd.feature_map_sizes, ssd.anchors, ssd.anchors_cs)
    module = SSDExportModule(ssd, raw=raw)
    fn = module.serve.get_concrete_function()
    conv = tf.lite.TFLiteConverter.from_concrete_functions([fn], module)
    conv.allow_custom_ops = True
    _set_quantization(conv, mode, representative, per_channel)
    try:
        with native_stderr_quiet():  # its C++ lines; a failure's reason is in the exception
            data = conv.convert()
    except Exception as exc:  # the converter raises ConverterError and others
        raise ModelError(f"TFLite conversion ({mode}) failed: {exc}") from exc
    if raw:
        return name_outputs_after_signature(data)
    if POSTPROCESS_OP not in custom_ops(data):
        # The converter goes through a temporary SavedModel; when it cannot write one it
        # silently freezes the graph instead, which keeps the placeholder body of _postprocess:
        # a model whose outputs are constant zeros.
        raise ModelError(
            f"TFLite conversion ({mode}) produced no {POSTPROCESS_OP} op: TensorFlow could not "
            f"write its temporary SavedModel; check the free space in {tempfile.gettempdir()} "
            "(or point TMPDIR at a folder with room)"
        )
    return data


def _set_quantization(
    conv: tf.lite.TFLiteConverter,
    mode: str,
    representative: list[np.ndarray] | None,
    per_channel: bool,
) -> None:
    """The converter settings of ``mode``: none for float32, weights only for dynamic and
    float16, and for int8 the calibration set with uint8 input and float outputs."""
    if mode == "dynamic":
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
    elif mode == "float16":
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        conv.target_spec.supported_types = [tf.float16]
    elif mode == "int8":
        if not representative:
            raise EdgeDetectError("int8 needs a representative set (--calibration N > 0)")
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        conv.representative_dataset = lambda: ([x[None].astype(np.float32)] for x in representative)
        conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        conv.inference_input_type = tf.uint8
        # Raw variant: outputs dequantized to float so that the anchors keep full precision.
        conv.inference_output_type = tf.float32
        conv._experimental_disable_per_channel = not per_channel  # noqa: SLF001 (the documented knob)


def custom_ops(data: bytes) -> set[str]:
    """The custom op names of a TFLite flatbuffer (``TFLite_Detection_PostProcess``)."""
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model_from_bytearray(bytearray(data))
    return {bytes(c.customCode).decode() for c in model.operatorCodes or [] if c.customCode}


def name_outputs_after_signature(data: bytes) -> bytes:
    """Rename output tensors to their signature keys.

    The TF2 converter names outputs ``StatefulPartitionedCall:k``; runtimes that look for the
    anchors output by name (as ``edgedetect`` does) need the real names (``anchors``,
    ``box_encodings``, ``class_predictions``). Done on the flatbuffer with TF's own
    ``flatbuffer_utils`` rather than by hand.
    """
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model_from_bytearray(bytearray(data))
    for sig in model.signatureDefs or []:
        graph = model.subgraphs[sig.subgraphIndex]
        for out in sig.outputs:
            graph.tensors[out.tensorIndex].name = out.name
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def save_weights(model: Any, path: Path) -> None:
    """``model.save_weights`` whole or not at all (``edgedetect.images.whole_file``): Keras
    writes the file under its name as it goes, so a full disk or a kill mid-write left a truncated
    ``final.weights.h5`` (or ``best.weights.h5``) that export and validate then loaded. It saves to
    the hidden ``.NAME.tmp.weights.h5`` beside ``path`` (the suffix picks Keras's h5 format) and
    renames that once complete; on failure (or Ctrl-C) the temporary file is removed."""
    real = Path(os.path.realpath(path))
    suffix = ".weights.h5" if real.name.endswith(".weights.h5") else real.suffix
    stem = real.name[: len(real.name) - len(suffix)] if suffix else real.name
    with whole_file(real, real.with_name(f".{stem}.tmp{suffix}")) as tmp:
        model.save_weights(str(tmp))


def write_file(path: Path, data: bytes) -> None:
    """A model or label file, whole or not at all (``edgedetect.images.write_whole``): a write
    that fails (a full disk) or is interrupted leaves the file that was there, never half of the
    new one (the runtime or the service may be about to load it). A symlink is written through,
    as a plain write would, and an error names ``path``."""
    try:
        write_whole(Path(os.path.realpath(path)), data)
    except OSError as exc:  # a failed write names no file, a failed rename the temporary one
        raise OSError(exc.errno, exc.strerror, str(path)) from exc


def add_labels_option(parser: argparse.ArgumentParser) -> None:
    """``--labels``, for every tool that writes a model's label file (export, quantize)."""
    parser.add_argument(
        "--labels", default="person", help="comma-separated class names for the label file"
    )


def label_names(text: str, num_classes: int) -> list[str]:
    """``--labels``: one comma-separated name per class of the model, none empty."""
    names = [n.strip() for n in text.split(",")]
    plural = "class" if num_classes == 1 else "classes"
    if not all(names):
        raise EdgeDetectError(
            f"--labels {text!r} holds an empty class name; name the model's {num_classes} "
            f"{plural}, comma-separated (e.g. person)"
        )
    if len(names) != num_classes:
        raise EdgeDetectError(
            f"--labels {text!r} gives {len(names)} names but the model has {num_classes} "
            f"{plural} (model.num_classes)"
        )
    return names


def write_labels(model_path: Path, names: list[str]) -> Path:
    """``<model>.labels.txt`` beside the model: one class name a line, line i = class id i."""
    path = (
        Path(str(model_path)[: -len(".tflite")] + ".labels.txt")
        if str(model_path).endswith(".tflite")
        else Path(str(model_path) + ".labels.txt")
    )
    write_file(path, "".join(n.strip() + "\n" for n in names).encode())
    return path


def _parser() -> argparse.ArgumentParser:
    """The exporter's command line."""
    p = argparse.ArgumentParser(
        prog="python -m host_tools.export", description=__doc__.split("\n")[0]
    )
    p.add_argument(
        "--config",
        type=path_arg,
        help=f"config name or JSON path (default: the config.json of the run holding --weights, "
        f"else {DEFAULT_CONFIG})",
    )
    p.add_argument(
        "--weights",
        type=path_arg,
        required=True,
        help=".weights.h5 file, a run's checkpoints/ directory (its latest) or one checkpoint "
        "(RUN/checkpoints/ckpt-N)",
    )
    p.add_argument("--out", type=path_option, required=True, help="TFLite file to write")
    p.add_argument("--mode", choices=MODES, default="int8")
    p.add_argument(
        "--raw", action="store_true", help="raw-output variant instead of the postprocess op"
    )
    p.add_argument(
        "--saved-model", type=path_option, help="also write a SavedModel to this directory"
    )
    p.add_argument(
        "--calibration",
        type=positive_int,
        default=100,
        help=(
            "representative images for int8, from the config's training mix "
            "(else the Penn-Fudan train split)"
        ),
    )
    p.add_argument(
        "--per-tensor", action="store_true", help="int8: per-tensor instead of per-channel weights"
    )
    add_labels_option(p)
    return p


@cli_errors("export")
def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    output_file(args.out, "--out", "person.tflite")  # before the conversion, not after it
    ssd = load_ssd(weights_config(args.config, args.weights), args.weights)
    names = label_names(args.labels, ssd.config.model.num_classes)
    if args.saved_model:
        export_saved_model(ssd, args.saved_model, raw=True)
        print(f"wrote {args.saved_model}")
    reps = (
        representative_images(
            ssd.config.model.input_size, args.calibration, sources=ssd.config.data.sources
        )
        if args.mode == "int8"
        else None
    )
    data = convert(
        ssd, args.mode, raw=args.raw, representative=reps, per_channel=not args.per_tensor
    )
    write_file(args.out, data)
    write_labels(args.out, names)
    kind = "raw" if args.raw else "postprocess"
    print(f"wrote {args.out} ({len(data) / 1e6:.2f} MB, {args.mode}, {kind})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
