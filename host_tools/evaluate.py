"""Evaluate a person detector on an annotated dataset through the runtime ``edgedetect`` Detector.

    python -m host_tools.evaluate --model M.tflite [--labels L] --dataset SPEC [--split-file F]
        [--threshold 0.5] [--threads N] --out DIR
    python -m host_tools.evaluate --model hog --dataset SPEC --out DIR      # Dalal-Triggs baseline

The detector runs once per image at a low score threshold (``--curve-threshold``, default 0.05; 0 =
the SVM boundary for HOG) so that COCO AP and the log-average miss rate see the whole score range;
precision, recall and mean IoU are read at the operating ``--threshold`` from the same matches
(greedy matching in score order makes that exact). Writes DIR/report.json, DIR/report.md,
DIR/pr_curve.png, DIR/miss_rate_fppi.png, DIR/gallery.png and DIR/detections.json.

This module is the command line and the detector factory; ``host_tools.scoring`` runs and scores,
``host_tools.report`` renders.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import hashlib
import math
import platform
import sys
from pathlib import Path
from typing import Any

from edgedetect.cli import make_folder, path_arg
from edgedetect.errors import ModelError
from host_tools._cli import cli_errors, path_option, threads
from host_tools._deps import require
from host_tools.conditions import CONDITIONS, camera_condition
from host_tools.datasets import KINDS, Dataset, DatasetError
from host_tools.datasets.sources import DataSource, load_sources
from host_tools.report import write_report
from host_tools.scoring import DEFAULT_CURVE_THRESHOLD, evaluate


def file_digest(path: Path) -> str:
    """sha256 of a file, so a report names exactly which model it measured."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def model_info(detector: Any, model_arg: str) -> dict[str, Any]:
    """Model path, size and sha256 (a detector that is not a file, like HOG, names its own)."""
    info = dict(detector.info()) if hasattr(detector, "info") else {}
    info.pop("model", None)
    info.pop("threshold", None)  # the detector ran at the curve threshold, reported at top level
    if "sha256" not in info:
        p = Path(model_arg)
        info.update(
            path=str(p.resolve()), name=p.name, size_bytes=p.stat().st_size, sha256=file_digest(p)
        )
    return info


def make_detector(
    model: str,
    labels: str | None,
    curve_threshold: float,
    threads: int,
    classes: list[str],
    tiles: str = "off",
) -> Any:
    """The runtime Detector for a .tflite (tiled second pass if ``tiles``), or HOG for ``hog``."""
    if model == "hog":
        from edgedetect.tiling import parse_tiles
        from host_tools.hog import HogDetector

        if parse_tiles(tiles) != (1, 1):
            raise ModelError(
                f"--tiles {tiles} needs a .tflite model: the HOG baseline already scans the whole "
                "image at every scale (leave out --tiles with --model hog)"
            )
        return HogDetector(threshold=curve_threshold)
    path = Path(model)
    if path.is_dir() and not (path / "saved_model.pb").is_file():  # the runtime names SavedModels
        raise ModelError(
            f"model {path} is a directory, not a model file "
            "(pass a .tflite file, or --model hog for the HOG baseline)"
        )
    if not path.exists():
        raise ModelError(
            f"model file {path} not found "
            "(pass a .tflite file, or --model hog for the HOG baseline)"
        )
    from edgedetect.detector import Detector
    from edgedetect.tiling import with_tiles

    det = Detector(
        path, labels=labels, threshold=curve_threshold, classes=classes, num_threads=threads
    )
    return with_tiles(det, tiles)


def _opencv_threads() -> int:
    """HOG runs on OpenCV's own thread pool (all cores by default), not on --threads."""
    import cv2

    return int(cv2.getNumThreads())


def build_parser() -> argparse.ArgumentParser:
    """The evaluator's command line."""
    p = argparse.ArgumentParser(
        prog="python -m host_tools.evaluate", description=__doc__.split("\n\n")[0]
    )
    _add_model_args(p)
    _add_dataset_args(p)
    _add_detection_args(p)
    p.add_argument("--out", required=True, type=path_option, help="report folder (created)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def _add_model_args(p: argparse.ArgumentParser) -> None:
    """The detector under test and its labels."""
    p.add_argument(
        "--model",
        type=path_arg,
        required=True,
        help="a .tflite detector, or 'hog' for OpenCV's HOG+SVM baseline",
    )
    p.add_argument(
        "--labels", type=path_arg, help="label file of the model (default: the one beside it)"
    )


def _add_dataset_args(p: argparse.ArgumentParser) -> None:
    """The annotated images it is measured on."""
    p.add_argument(
        "--dataset",
        required=True,
        action="append",
        help="; ".join(KINDS.values()) + "; repeat to evaluate on the union of several sets "
        "(each SPEC[#split=FILE][#ignore=FILE][#ignore_below=H])",
    )
    p.add_argument(
        "--split-file", type=path_option, help="image names, one per line, to evaluate a subset"
    )


def _add_detection_args(p: argparse.ArgumentParser) -> None:
    """How the detector runs and which of its detections count."""
    p.add_argument(
        "--threshold",
        type=float,
        default=0.5,
        help="operating score threshold for precision/recall/IoU (HOG: SVM margin)",
    )
    p.add_argument(
        "--curve-threshold",
        type=float,
        help=f"lowest score kept for AP/LAMR (default {DEFAULT_CURVE_THRESHOLD}; HOG 0)",
    )
    p.add_argument(
        "--classes",
        default="person",
        help="comma-separated model labels that count as a person (default person)",
    )
    p.add_argument(
        "--threads",
        type=threads,
        default=2,
        help="interpreter threads, 1..2 x CPU count (default 2)",
    )
    p.add_argument(
        "--tiles",
        default="off",
        help=(
            "tiled second pass for small people: ROWSxCOLS, e.g. 2x2 "
            "(edgedetect.tiling; default off)"
        ),
    )
    p.add_argument(
        "--condition",
        choices=list(CONDITIONS),
        help=(
            "see every image through a fixed camera condition, to measure robustness: "
            "gray (IR, no colour), noise (gain noise 10/255), dark (low light and noise), "
            "night_ir (grey, tinted, flat, noisy), blur (2 px); default none"
        ),
    )


def run_evaluation(
    model: str | Path,
    dataset: str | list[str],
    out: str | Path,
    *,
    labels: str | Path | None = None,
    split_file: str | Path | None = None,
    threshold: float = 0.5,
    curve_threshold: float | None = None,
    threads: int = 2,
    classes: tuple[str, ...] | list[str] = ("person",),
    progress: bool = True,
    tiles: str = "off",
    condition: str | None = None,
) -> dict[str, Any]:
    """Evaluate ``model`` (a .tflite path or ``"hog"``) on a dataset spec, reporting to ``out``.

    The Python entry point behind the CLI (the training code calls it after export); returns the
    report dict written to ``out/report.json``. Raises :class:`EdgeDetectError` on bad input.
    """
    model = str(model)
    out = Path(out)
    split = Path(split_file) if split_file is not None else None
    for option, value in (("--threshold", threshold), ("--curve-threshold", curve_threshold)):
        if value is not None and not math.isfinite(value):  # HOG's margins: any number but these
            raise ModelError(f"{option} {value} is not a finite number")
    if model != "hog" and not 0.0 <= threshold <= 1.0:
        raise ModelError(
            f"--threshold {threshold} is not a score in [0, 1] (only HOG margins go beyond)"
        )
    if curve_threshold is None:
        curve_threshold = min(0.0 if model == "hog" else DEFAULT_CURVE_THRESHOLD, threshold)
    ds = load_union(dataset, split)
    if not ds.samples:
        raise DatasetError(f"dataset {dataset} has no images")
    detector = make_detector(
        model, str(labels) if labels else None, curve_threshold, threads, list(classes), tiles
    )
    make_folder(out, "--out")  # before the run, not after it
    transform = camera_condition(condition) if condition else None
    ev = evaluate(detector, ds, threshold, curve_threshold, progress=progress, transform=transform)
    meta = report_meta(detector, model, ds, split, threads)
    meta["condition"] = condition
    return write_report(ev, out, meta)


def report_meta(
    detector: Any, model: str, ds: Dataset, split: Path | None, threads: int
) -> dict[str, Any]:
    """What a report records besides its numbers, so that a run can be traced and repeated.

    The model (with its sha256), the dataset, the threads it ran on, the host and the time.
    """
    return {
        "model": model_info(detector, model),
        "dataset": {
            "spec": ds.spec,
            "kind": ds.kind,
            "split_file": str(split.resolve()) if split else None,
        },
        "threads": threads if model != "hog" else _opencv_threads(),
        "host": {
            "machine": platform.machine(),
            "python": platform.python_version(),
            "system": platform.system(),
        },
        "created_utc": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def load_union(specs: str | list[str], split: Path | None) -> Dataset:
    """One spec (with ``split``), or the union of several ``SPEC[#split=FILE]`` as one dataset.

    ``#ignore=FILE`` adds ignore regions: detections on them count neither as TP nor as FP. A
    test split is welcome here (training and validation refuse one).
    """
    if isinstance(specs, str) or len(specs) == 1:
        src = DataSource.parse(specs if isinstance(specs, str) else specs[0], test_split_ok=True)
        return src.load(split)
    if split is not None:
        raise DatasetError(
            "--split-file goes with one --dataset; give each its own SPEC#split=FILE"
        )
    sources = [DataSource.parse(s, test_split_ok=True) for s in specs]
    return load_sources(sources, "--dataset union", test_split_ok=True)


@cli_errors("evaluate")
def main(argv: list[str] | None = None) -> int:
    """Entry point; user errors print one line and return 2."""
    args = build_parser().parse_args(argv)
    require("pycocotools", "matplotlib")  # the report's AP and plots, checked before the images
    m = run_evaluation(
        args.model,
        args.dataset,
        args.out,
        labels=args.labels,
        split_file=args.split_file,
        threshold=args.threshold,
        curve_threshold=args.curve_threshold,
        threads=args.threads,
        classes=[c.strip() for c in args.classes.split(",")],
        progress=not args.no_progress,
        tiles=args.tiles,
        condition=args.condition,
    )
    shown = {k: "n/a" if m[k] is None else f"{m[k]:.3f}" for k in ("ap", "ap50", "lamr", "recall")}
    print(
        f"{args.out}: AP {shown['ap']}  AP50 {shown['ap50']}  LAMR {shown['lamr']}  "
        f"precision {m['precision']:.3f}  recall {shown['recall']}  mean IoU {m['mean_iou']:.3f}  "
        f"p50 {m['latency_ms_p50']:.1f} ms"
        + ("  (AP, LAMR, recall: n/a, no annotated people)" if m.get("not_measurable") else "")
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
