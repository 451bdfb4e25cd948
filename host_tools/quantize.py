"""TFLite conversion in every quantization mode, and the one-command comparison of all of them.

Modes: ``float32``; ``dynamic`` (dynamic-range: int8 weights, float activations, as the reference
paper ran on the Pi); ``float16`` (fp16 weights); ``int8`` (full integer: int8 weights per-channel by
default and int8 activations calibrated on a representative set from the Penn-Fudan TRAIN split, uint8
input, TFLITE_BUILTINS_INT8; the postprocess custom op stays float as in the OD-API quant models);
``qat`` (quantization-aware fine-tuning with TF-MOT, then the int8 conversion).

``python -m host_tools.quantize --weights W --out-dir DIR`` converts every mode, evaluates each with
``host_tools.evaluate`` on the Penn-Fudan test split and writes the comparison table with
``host_tools.compare``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import host_tools.ssd  # noqa: F401  (selects tf_keras before TensorFlow loads)

# isort: split
import numpy as np
import tensorflow as tf

from edgedetect.errors import EdgeDetectError, ModelError
from edgedetect.images import read_bgr
from host_tools._cli import cli_errors
from host_tools.shared_data import PENNFUDAN, TEST_SPLIT, TRAIN_SPLIT
from host_tools.ssd.config import DataSource
from host_tools.ssd.model import SSDModel

MODES = ("float32", "dynamic", "float16", "int8")


def normalize(rgb: np.ndarray, size: int) -> np.ndarray:
    """uint8 RGB -> [size, size, 3] float32 in [-1, 1], stretched as the runtime and the OD API do."""
    import cv2

    img = cv2.resize(rgb, (size, size), interpolation=cv2.INTER_LINEAR)
    return img.astype(np.float32) / 127.5 - 1.0


def representative_images(size: int, count: int = 100, split_file: Path = TRAIN_SPLIT,
                          image_dir: Path = PENNFUDAN / "PNGImages",
                          sources: Sequence[DataSource] = ()) -> list[np.ndarray]:
    """Calibration inputs: ``count`` training images, plus their mirror images if more are needed.

    With ``sources`` (a training mix, as a config's ``[data]`` names it) the images are spread over the
    sources by their weights, picked with a fixed seed, so a general-scene model is calibrated on the
    scenes it was trained for. Without, the first images of the Penn-Fudan train split.
    """
    import cv2

    paths = _mix_paths(sources, count) if sources else _split_paths(split_file, image_dir, count)
    out = [normalize(cv2.cvtColor(read_bgr(p, "calibration image"), cv2.COLOR_BGR2RGB), size) for p in paths]
    i = 0
    while len(out) < count and i < len(paths):
        out.append(out[i][:, ::-1].copy())
        i += 1
    # Pin the calibrated input range to the full [-1, 1] pixel range so that uint8 input = raw pixels.
    if out:
        out[0] = out[0].copy()
        out[0][0, 0, :] = -1.0
        out[0][0, 1, :] = 1.0
    return out


def _split_paths(split_file: Path, image_dir: Path, count: int) -> list[Path]:
    if not split_file.is_file():
        raise EdgeDetectError(f"calibration split {split_file} not found; int8 needs the Penn-Fudan train split")
    return [image_dir / n for n in split_file.read_text().split() if n][:count]


def _mix_paths(sources: Sequence[DataSource], count: int) -> list[Path]:
    """``count`` image paths drawn without replacement, each source's share by its weight (seed 0)."""
    from host_tools.datasets import load_dataset

    rng = np.random.default_rng(0)
    total = sum(s.weight for s in sources)
    paths: list[Path] = []
    for s in (src.resolved() for src in sources):
        samples = load_dataset(s.spec, s.split_file).samples
        n = min(len(samples), max(1, round(count * s.weight / total)))
        paths += [samples[i].image_path for i in sorted(rng.choice(len(samples), n, replace=False))]
    return paths[:count]


def convert(ssd: SSDModel, mode: str, raw: bool = False, representative: list[np.ndarray] | None = None,
            per_channel: bool = True, keras_model=None) -> bytes:
    """Convert the model to TFLite bytes in ``mode`` (see module doc)."""
    from host_tools.export import SSDExportModule

    if mode not in MODES:
        raise EdgeDetectError(f"unknown mode {mode!r}; use one of {MODES}")
    if keras_model is not None:  # e.g. a QAT model with fake-quant layers
        ssd = SSDModel(ssd.config, keras_model, ssd.feature_map_sizes, ssd.anchors, ssd.anchors_cs)
    module = SSDExportModule(ssd, raw=raw)
    fn = module.serve.get_concrete_function()
    conv = tf.lite.TFLiteConverter.from_concrete_functions([fn], module)
    conv.allow_custom_ops = True
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
    try:
        data = conv.convert()
    except Exception as exc:  # the converter raises ConverterError and others
        raise ModelError(f"TFLite conversion ({mode}) failed: {exc}") from exc
    return name_outputs_after_signature(data) if raw else data


def name_outputs_after_signature(data: bytes) -> bytes:
    """Rename output tensors to their signature keys (``anchors``, ``box_encodings``, ``class_predictions``).

    The TF2 converter names outputs ``StatefulPartitionedCall:k``; runtimes that look for the anchors
    output by name (as ``edgedetect`` does) need the real names. Done on the flatbuffer with TF's own
    ``flatbuffer_utils`` rather than by hand.
    """
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model_from_bytearray(bytearray(data))
    for sig in model.signatureDefs or []:
        graph = model.subgraphs[sig.subgraphIndex]
        for out in sig.outputs:
            graph.tensors[out.tensorIndex].name = out.name
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def write_labels(model_path: Path, names: list[str]) -> Path:
    """``<model>.labels.txt`` beside the model: one class name a line, line i = class id i."""
    path = Path(str(model_path)[: -len(".tflite")] + ".labels.txt") if str(model_path).endswith(".tflite") \
        else Path(str(model_path) + ".labels.txt")
    path.write_text("".join(n.strip() + "\n" for n in names))
    return path


def latency_ms(model_path: Path, threads: int = 2, runs: int = 30) -> float:
    """Median invoke time of a TFLite model on this machine (random input), for the size/latency table."""
    from edgedetect.runtime import load_interpreter

    interp, _ = load_interpreter(str(model_path), threads)
    inp = interp.get_input_details()[0]
    x = (np.random.default_rng(0).random(inp["shape"]) * 255).astype(inp["dtype"])
    interp.set_tensor(inp["index"], x)
    interp.invoke()
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        interp.invoke()
        times.append((time.perf_counter() - t) * 1000)
    return float(np.median(times))


@cli_errors("quantize")
def main(argv: list[str] | None = None) -> int:
    from host_tools.export import load_ssd

    p = argparse.ArgumentParser(prog="python -m host_tools.quantize", description=__doc__.split("\n")[0])
    p.add_argument("--config", default="ssdlite_mobilenet_v2")
    p.add_argument("--weights", required=True, help=".weights.h5 or checkpoint dir of the float model")
    p.add_argument("--out-dir", type=Path, required=True)
    p.add_argument("--modes", default=",".join(MODES + ("qat",)), help=f"comma-separated subset of {MODES + ('qat',)}")
    p.add_argument("--calibration", type=int, default=100, help="int8 representative set size (from the config's training mix, else the train split)")
    p.add_argument("--per-tensor", action="store_true", help="per-tensor int8 weights instead of per-channel")
    p.add_argument("--qat-steps", type=int, default=200, help="QAT fine-tuning steps")
    p.add_argument("--qat-delay", type=int, default=0, help="QAT quantization delay (steps of float training first)")
    p.add_argument("--qat-batch-size", type=int, default=8, help="QAT fine-tuning batch size")
    p.add_argument("--qat-lr", type=float, default=2e-5, help="QAT fine-tuning peak learning rate")
    p.add_argument("--no-eval", action="store_true", help="only convert; skip host_tools.evaluate/compare")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)
    ssd = load_ssd(args.config, args.weights)
    size = ssd.config.model.input_size
    args.out_dir.mkdir(parents=True, exist_ok=True)
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    reps = (representative_images(size, args.calibration, sources=ssd.config.data.sources)
            if {"int8", "qat"} & set(modes) else None)
    rows = []
    for mode in modes:
        out = args.out_dir / f"{ssd.config.name}_{mode}.tflite"
        t0 = time.time()
        if mode == "qat":
            from host_tools.ssd.qat import qat_finetune

            qat_model = qat_finetune(load_ssd(args.config, args.weights), steps=args.qat_steps,
                                     delay=args.qat_delay, out_dir=args.out_dir / "qat_run",
                                     learning_rate=args.qat_lr, batch_size=args.qat_batch_size,
                                     progress=False)
            data = convert(ssd, "int8", representative=reps, per_channel=not args.per_tensor,
                           keras_model=qat_model)
        else:
            data = convert(ssd, mode, representative=reps, per_channel=not args.per_tensor)
        out.write_bytes(data)
        write_labels(out, ["person"])
        row = {"mode": mode, "model": str(out), "size_mb": round(len(data) / 1e6, 3),
               "convert_s": round(time.time() - t0, 1), "latency_ms": round(latency_ms(out, args.threads), 2)}
        print(json.dumps(row), flush=True)
        rows.append(row)
    (args.out_dir / "quantize_summary.json").write_text(json.dumps(rows, indent=2) + "\n")
    if not args.no_eval:
        evaluate_and_compare(rows, args.out_dir)
    return 0


def evaluate_and_compare(rows: list[dict], out_dir: Path, dataset: str = f"pennfudan:{PENNFUDAN}",
                         split_file: Path | None = TEST_SPLIT) -> Path:
    """Run host_tools.evaluate on each model, then host_tools.compare on all; returns the table's path."""
    eval_dirs = []
    for row in rows:
        d = out_dir / f"eval_{row['mode']}"
        cmd = [sys.executable, "-m", "host_tools.evaluate", "--model", row["model"], "--dataset", dataset,
               "--out", str(d), "--no-progress"]
        if split_file is not None:
            cmd += ["--split-file", str(split_file)]
        print("+", " ".join(cmd), flush=True)
        subprocess.run(cmd, check=True)
        eval_dirs.append(d)
    cmd = [sys.executable, "-m", "host_tools.compare", *map(str, eval_dirs)]
    print("+", " ".join(cmd), flush=True)
    table = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    out = out_dir / "comparison.md"
    extra = ["", "| mode | file size MB | convert s | invoke latency ms (median, this host) |", "| --- | --- | --- | --- |"]
    extra += [f"| {r['mode']} | {r['size_mb']} | {r['convert_s']} | {r['latency_ms']} |" for r in rows]
    out.write_text(table + "\n".join(extra) + "\n")
    print(out.read_text())
    return out


if __name__ == "__main__":
    sys.exit(main())
