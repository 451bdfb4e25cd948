"""The one-command comparison of every quantization mode (the conversion is ``host_tools.export``).

Modes: ``float32``; ``dynamic`` (dynamic-range: int8 weights, float activations, as the reference
paper ran on the Pi); ``float16`` (fp16 weights); ``int8`` (full integer: int8 weights per-channel
by default and int8 activations calibrated on a representative set of training images, uint8 input,
TFLITE_BUILTINS_INT8; the postprocess custom op stays float as in the OD-API quant models); ``qat``
(quantization-aware fine-tuning with TF-MOT, then the int8 conversion).

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
from pathlib import Path
from typing import Any

import host_tools.ssd  # noqa: F401  (selects tf_keras before TensorFlow loads)

# isort: split
import numpy as np

from edgedetect.cli import make_folder, path_arg, positive_int
from edgedetect.errors import EdgeDetectError
from host_tools._cli import cli_errors, non_negative_int, path_option, positive_float, threads
from host_tools._deps import require
from host_tools.datasets import DatasetError, load_dataset
from host_tools.export import (
    MODES,
    add_labels_option,
    convert,
    label_names,
    load_ssd,
    representative_images,
    weights_config,
    write_file,
    write_labels,
)
from host_tools.shared_data import PENNFUDAN, TEST_SPLIT
from host_tools.ssd.model import SSDModel

ALL_MODES = (*MODES, "qat")  # export's conversions, and QAT (fine-tune, then int8)
EVAL_DATASET = f"pennfudan:{PENNFUDAN}"  # the comparison's test set, with TEST_SPLIT


def latency_ms(model_path: Path, threads: int = 2, runs: int = 30) -> float:
    """Median invoke time of a TFLite model on this host with random input (size/latency table)."""
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


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m host_tools.quantize", description=__doc__.split("\n")[0]
    )
    _add_conversion_args(p)
    _add_qat_args(p)
    p.add_argument(
        "--no-eval", action="store_true", help="only convert; skip host_tools.evaluate/compare"
    )
    p.add_argument(
        "--threads", type=threads, default=2, help="interpreter threads of the latency runs"
    )
    add_labels_option(p)
    return p


def _add_conversion_args(p: argparse.ArgumentParser) -> None:
    """The float model, where its conversions go, which modes and how int8 is calibrated."""
    p.add_argument(
        "--config",
        type=path_arg,
        help="config name or JSON path (default: the config.json of the run holding --weights, "
        "else ssdlite_mobilenet_v2)",
    )
    p.add_argument(
        "--weights",
        type=path_arg,
        required=True,
        help=".weights.h5 or checkpoint dir of the float model",
    )
    p.add_argument("--out-dir", type=path_option, required=True)
    p.add_argument(
        "--modes",
        default=",".join(ALL_MODES),
        help=f"comma-separated subset of {','.join(ALL_MODES)}",
    )
    p.add_argument(
        "--calibration",
        type=positive_int,
        default=100,
        help="int8 representative set size (from the config's training mix, else the train split)",
    )
    p.add_argument(
        "--per-tensor", action="store_true", help="per-tensor int8 weights instead of per-channel"
    )


def _add_qat_args(p: argparse.ArgumentParser) -> None:
    """The quantization-aware fine-tuning of the qat mode."""
    p.add_argument("--qat-steps", type=positive_int, default=200, help="QAT fine-tuning steps")
    p.add_argument(
        "--qat-delay",
        type=non_negative_int,
        default=0,
        help="QAT quantization delay (steps of float training first)",
    )
    p.add_argument(
        "--qat-batch-size", type=positive_int, default=8, help="QAT fine-tuning batch size"
    )
    p.add_argument(
        "--qat-lr", type=positive_float, default=2e-5, help="QAT fine-tuning peak learning rate"
    )


def _convert_mode(ssd: SSDModel, mode: str, args: argparse.Namespace, reps: Any) -> bytes:
    """One TFLite file of ``ssd`` in ``mode``; ``qat`` first fine-tunes a fake-quantized copy."""
    if mode != "qat":
        return convert(ssd, mode, representative=reps, per_channel=not args.per_tensor)
    from host_tools.ssd.qat import qat_finetune

    qat_model = qat_finetune(
        load_ssd(args.config, args.weights),
        steps=args.qat_steps,
        delay=args.qat_delay,
        out_dir=args.out_dir / "qat_run",
        learning_rate=args.qat_lr,
        batch_size=args.qat_batch_size,
        progress=False,
    )
    return convert(
        ssd, "int8", representative=reps, per_channel=not args.per_tensor, keras_model=qat_model
    )


def parse_modes(text: str) -> list[str]:
    """``--modes``: a comma-separated subset of :data:`ALL_MODES`, checked before any work."""
    modes = list(dict.fromkeys(m.strip() for m in text.split(",") if m.strip()))  # each once
    unknown = [m for m in modes if m not in ALL_MODES]
    if unknown or not modes:
        raise EdgeDetectError(
            f"--modes {text!r}: unknown mode(s) {unknown or '(none given)'}; "
            f"use a comma-separated subset of {','.join(ALL_MODES)}"
        )
    return modes


@cli_errors("quantize")
def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    modes = parse_modes(args.modes)
    if "qat" in modes:
        require("tensorflow_model_optimization")
    if not args.no_eval:
        require("pycocotools", "matplotlib")  # the comparison, checked before any conversion
        check_eval_data()
    args.config = weights_config(args.config, args.weights)  # the QAT run loads it again
    ssd = load_ssd(args.config, args.weights)
    names = label_names(args.labels, ssd.config.model.num_classes)
    make_folder(args.out_dir, "--out-dir")  # a file in the way is named before any conversion
    size = ssd.config.model.input_size
    reps = (
        representative_images(size, args.calibration, sources=ssd.config.data.sources)
        if {"int8", "qat"} & set(modes)
        else None
    )
    rows = []
    for mode in modes:
        out = args.out_dir / f"{ssd.config.name}_{mode}.tflite"
        t0 = time.time()
        data = _convert_mode(ssd, mode, args, reps)
        write_file(out, data)
        write_labels(out, names)
        row = {
            "mode": mode,
            "model": str(out),
            "size_mb": round(len(data) / 1e6, 3),
            "convert_s": round(time.time() - t0, 1),
            "latency_ms": round(latency_ms(out, args.threads), 2),
        }
        print(json.dumps(row), flush=True)
        rows.append(row)
    (args.out_dir / "quantize_summary.json").write_text(json.dumps(rows, indent=2) + "\n")
    if not args.no_eval:
        evaluate_and_compare(rows, args.out_dir)
    return 0


def check_eval_data(dataset: str = EVAL_DATASET, split_file: Path | None = TEST_SPLIT) -> None:
    """Refuse before any conversion when the set the comparison scores on is not there."""
    try:
        load_dataset(dataset, split_file)
    except DatasetError as exc:
        raise EdgeDetectError(
            f"{exc}; quantize scores every mode on the Penn-Fudan test split "
            "(pass --no-eval to only convert)"
        ) from None


def _evaluate(row: dict, out_dir: Path, dataset: str, split_file: Path | None) -> Path:
    """host_tools.evaluate on one mode's model, in a process of its own; returns its report
    folder, or a one-line error when it fails (its own error is printed above)."""
    d = out_dir / f"eval_{row['mode']}"
    cmd = [
        sys.executable,
        "-m",
        "host_tools.evaluate",
        "--model",
        row["model"],
        "--dataset",
        dataset,
        "--out",
        str(d),
        "--no-progress",
    ]
    if split_file is not None:
        cmd += ["--split-file", str(split_file)]
    print("+", " ".join(cmd), flush=True)
    if subprocess.run(cmd).returncode != 0:  # its one-line error is above
        raise EdgeDetectError(
            f"host_tools.evaluate failed on {row['model']}; the models are in {out_dir}"
        )
    return d


def evaluate_and_compare(
    rows: list[dict],
    out_dir: Path,
    dataset: str = EVAL_DATASET,
    split_file: Path | None = TEST_SPLIT,
) -> Path:
    """Run host_tools.evaluate on each model, then host_tools.compare on all.

    Returns the path of the comparison table.
    """
    eval_dirs = [_evaluate(row, out_dir, dataset, split_file) for row in rows]
    cmd = [sys.executable, "-m", "host_tools.compare", *map(str, eval_dirs)]
    print("+", " ".join(cmd), flush=True)
    table = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    out = out_dir / "comparison.md"
    extra = [
        "",
        "| mode | file size MB | convert s | invoke latency ms (median, this host) |",
        "| --- | --- | --- | --- |",
    ]
    extra += [
        f"| {r['mode']} | {r['size_mb']} | {r['convert_s']} | {r['latency_ms']} |" for r in rows
    ]
    out.write_text(table + "\n".join(extra) + "\n")
    print(out.read_text())
    return out


if __name__ == "__main__":
    sys.exit(main())
