"""Ignore regions from reference detections: confident people that no label covers.

Some training sets (Capston2) leave background people unboxed, which teaches the detector that
people are background. Reference detectors find many of them: each confident person detection
that matches no labelled box (IoU < ``--max-iou``), is not a part of a labelled person (its own
area inside one by < ``--max-inside``) and does not hold one (a labelled box inside it by as much:
a group or whole-scene box) becomes an ignore region, merged over the models by NMS.
``SPEC#ignore=FILE`` (``host_tools.datasets.sources``) then keeps such regions out of the loss.

    python -m host_tools.ignore_regions --dataset yolo:../shared/data/capston2/train \\
        --model models/person_ssdlite_int8.tflite \\
        --model ../shared/data/models/ssd_mobilenet_v2_fpnlite_320_coco_tf2.tflite \\
        --min-score 0.6 --max-iou 0.3 --out capston2_train_ignore.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from edgedetect.cli import path_arg
from edgedetect.errors import ConfigError
from edgedetect.images import read_bgr
from edgedetect.nms import nms
from host_tools._cli import cli_errors, output_file, path_option, threads
from host_tools.datasets import parse_spec
from host_tools.datasets.ignore import dataset_root, image_key
from host_tools.datasets.sources import DataSource
from host_tools.metrics import overlap_matrix

DEFAULT_MAX_INSIDE = 0.7  # a detection this much inside a labelled box is a part of that person
MERGE_IOU = 0.5  # NMS over the models' detections


def parse_model(text: str, labels: str | None) -> tuple[str, str | None]:
    """``PATH[#labels=FILE]`` -> (path, labels); without ``#labels=`` the shared ``labels``."""
    path, *options = text.split("#")
    for opt in options:
        key, sep, value = opt.partition("=")
        if key != "labels" or not sep or not value:
            raise ConfigError(f"--model {text!r}: unknown option {opt!r}; use PATH[#labels=FILE]")
        labels = value
    return path, labels


def unlabelled_people(
    dets: np.ndarray, labelled: np.ndarray, max_iou: float, max_inside: float
) -> np.ndarray:
    """Mask over ``dets`` (x1, y1, x2, y2): matches no labelled box, is no part of one and holds
    none (a box around a labelled person is a group or the whole scene, not someone unlabelled)."""
    if not len(labelled) or not len(dets):
        return np.ones(len(dets), bool)
    iou = overlap_matrix(dets, labelled, np.zeros(len(labelled), bool)).max(axis=1)
    inside = overlap_matrix(dets, labelled, np.ones(len(labelled), bool)).max(axis=1)
    holds = overlap_matrix(labelled, dets, np.ones(len(dets), bool)).max(axis=0)
    return (iou < max_iou) & (inside < max_inside) & (holds < max_inside)


def find_regions(
    detectors: list, image: np.ndarray, labelled: np.ndarray, args: argparse.Namespace
) -> np.ndarray:
    """(K, 4) ignore regions of one image: every model's unlabelled people, merged by NMS."""
    boxes, scores = [], []
    for det in detectors:
        d = det.detect(image)
        xyxy = np.asarray(d.xyxy, np.float64).reshape(-1, 4)
        score = np.asarray(d.score, np.float64).reshape(-1)
        keep = (score >= args.min_score) & unlabelled_people(
            xyxy, labelled, args.max_iou, args.max_inside
        )
        boxes.append(xyxy[keep])
        scores.append(score[keep])
    xyxy, score = np.concatenate(boxes), np.concatenate(scores)
    return xyxy[nms(xyxy, score, MERGE_IOU, max_detections=len(xyxy))]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m host_tools.ignore_regions", description=__doc__.split("\n")[0]
    )
    p.add_argument("--dataset", required=True, metavar="SPEC[#split=FILE]")
    p.add_argument(
        "--model",
        required=True,
        action="append",
        metavar="PATH[#labels=FILE]",
        help="a reference detector (repeat for several); labels default to the file beside it",
    )
    p.add_argument(
        "--labels", type=path_arg, help="labels of the one --model (else PATH#labels=FILE)"
    )
    p.add_argument("--min-score", type=float, default=0.6, help="lowest score kept (0.6)")
    p.add_argument(
        "--max-iou", type=float, default=0.3, help="a detection must overlap every label less (0.3)"
    )
    p.add_argument(
        "--max-inside",
        type=float,
        default=DEFAULT_MAX_INSIDE,
        help=f"share of a detection inside a label that skips it ({DEFAULT_MAX_INSIDE})",
    )
    p.add_argument(
        "--threads",
        type=threads,
        default=2,
        help="interpreter threads, 1..2 x CPU count (default 2)",
    )
    p.add_argument("--out", required=True, type=path_option, help="JSON file to write")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


@cli_errors("ignore_regions")
def main(argv: list[str] | None = None) -> int:
    """Entry point; user errors print one line and return 2."""
    from tqdm import tqdm

    from edgedetect.detector import Detector

    args = build_parser().parse_args(argv)
    output_file(args.out, "--out", "ignore.json")  # before the detectors run, not after
    for name in ("min_score", "max_iou", "max_inside"):
        if not 0.0 <= getattr(args, name) <= 1.0:
            raise ConfigError(f"--{name.replace('_', '-')} must be in [0, 1]")
    if args.labels and len(args.model) > 1:
        raise ConfigError("--labels goes with one --model; give each its own PATH#labels=FILE")
    models = [parse_model(m, args.labels) for m in args.model]
    for path, _ in models:
        if not Path(path).is_file():
            raise ConfigError(f"model {path} not found")
    src = DataSource.parse(args.dataset)
    ds = src.load()
    root = dataset_root(*parse_spec(src.spec))
    detectors = [
        Detector(path, labels=labels, threshold=args.min_score, num_threads=args.threads)
        for path, labels in models
    ]
    images: dict[str, list[list[float]]] = {}
    for sample in tqdm(ds.samples, desc="ignore", unit="img", disable=args.no_progress):
        image = read_bgr(sample.image_path)
        regions = find_regions(detectors, image, sample.boxes, args)
        if len(regions):
            images[image_key(sample.image_path, root)] = np.round(regions, 1).tolist()
    result = {
        "spec": args.dataset,
        "models": [str(Path(path).resolve()) for path, _ in models],
        "min_score": args.min_score,
        "max_iou": args.max_iou,
        "max_inside": args.max_inside,
        "images": images,
    }
    args.out.write_text(json.dumps(result) + "\n", encoding="utf-8")
    n_boxes = sum(len(b) for b in images.values())
    print(
        f"{args.out}: {len(ds)} images, {len(images)} with ignore regions, {n_boxes} boxes",
        flush=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
