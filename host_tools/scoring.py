"""Run a person detector over an annotated dataset and score it: matching, COCO AP, LAMR, P/R, IoU.

The detector runs once per image at a low score threshold (the curve threshold) so that COCO AP and
the log-average miss rate see the whole score range; precision, recall and mean IoU are read at the
operating threshold from the same matches (greedy matching in score order makes that exact).
``host_tools.evaluate`` is the command line; ``host_tools.report`` draws and writes the report.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from edgedetect.errors import EdgeDetectError
from edgedetect.images import read_bgr
from host_tools.datasets import Dataset, DatasetError, Sample
from host_tools.datasets.coco import PERSON_CATEGORY_ID, to_coco_dict
from host_tools.metrics import (
    LAMR_FPPI_POINTS,
    ImageMatch,
    accumulate,
    average_precision,
    coco_ap,
    log_average_miss_rate,
    match_image,
    miss_rates_at,
    operating_point,
)

DEFAULT_CURVE_THRESHOLD = 0.05
MATCH_IOU = 0.5
# Precision / recall / mean IoU at these score thresholds too, to pick an operating point per scene.
OPERATING_THRESHOLDS = (0.2, 0.3, 0.4, 0.5, 0.6, 0.7)


ImageTransform = Callable[[np.ndarray, int], np.ndarray]


class PersonDetector(Protocol):
    """What the evaluator needs of a detector.

    ``edgedetect.detector.Detector`` and ``HogDetector`` fit.
    """

    def detect(self, image_bgr: np.ndarray) -> Any: ...


@dataclass
class ImageResult:
    """Detections and matching of one image."""

    sample: Sample
    xyxy: np.ndarray
    scores: np.ndarray
    match: ImageMatch
    latency_ms: float


@dataclass
class Evaluation:
    """Everything one evaluation run measured."""

    images: list[ImageResult]
    threshold: float
    curve_threshold: float
    metrics: dict[str, Any] = field(default_factory=dict)


def run_detector(
    detector: PersonDetector,
    dataset: Dataset,
    curve_threshold: float,
    iou_threshold: float = MATCH_IOU,
    progress: bool = True,
    transform: ImageTransform | None = None,
) -> list[ImageResult]:
    """Detect in every image (with a tqdm bar on stderr) and match against its ground truth.

    ``transform(image, index)`` changes each image before detection, outside the latency (a
    camera condition of ``host_tools.conditions``).
    """
    from tqdm import tqdm

    results = []
    warmed = False
    for index, sample in enumerate(
        tqdm(dataset.samples, desc="evaluate", unit="img", file=sys.stderr, disable=not progress)
    ):
        image = read_bgr(sample.image_path)
        h, w = image.shape[:2]
        if (w, h) != (sample.width, sample.height):
            raise DatasetError(
                f"{sample.image_path} is {w}x{h} but its annotation {sample.annotation} says "
                f"{sample.width}x{sample.height}; fix the annotation or the image"
            )
        if transform is not None:
            image = transform(image, index)
        if not warmed:  # the first invoke allocates and packs weights; keep it out of the latency
            detector.detect(image)
            warmed = True
        t0 = time.perf_counter()
        dets = detector.detect(image)
        latency = (time.perf_counter() - t0) * 1000.0
        keep = np.asarray(dets.score) >= curve_threshold
        xyxy = np.asarray(dets.xyxy, np.float64)[keep]
        scores = np.asarray(dets.score, np.float64)[keep]
        match = match_image(xyxy, scores, sample.boxes, sample.ignore, iou_threshold)
        results.append(ImageResult(sample, xyxy, scores, match, latency))
    return results


def compute_metrics(
    results: list[ImageResult], threshold: float, curve_threshold: float
) -> dict[str, Any]:
    """The report's numbers from per-image results (the keys in the report's order)."""
    matches = [r.match for r in results]
    curve = _curve_metrics(matches)
    op = operating_point(matches, threshold)
    return {
        **_coco_metrics(results),
        **curve,
        "mean_iou": op.mean_iou,
        "precision": op.precision,
        "recall": op.recall,
        "tp": op.tp,
        "fp": op.fp,
        "fn": op.fn,
        "threshold": threshold,
        "curve_threshold": curve_threshold,
        "match_iou": MATCH_IOU,
        **_count_metrics(results, threshold),
        **_latency_metrics(results),
        "operating_points": _operating_points(matches, curve_threshold),
    }


def _curve_metrics(matches: list[ImageMatch]) -> dict[str, Any]:
    """All-point AP50 and the miss rate against false positives per image (LAMR and its points)."""
    curve = accumulate(matches)
    return {
        "ap50_all_point": average_precision(curve.recall, curve.precision),
        "lamr": log_average_miss_rate(curve.fppi, curve.miss_rate),
        "miss_rate_at_fppi": dict(
            zip(
                [f"{p:.4g}" for p in LAMR_FPPI_POINTS],
                miss_rates_at(curve.fppi, curve.miss_rate),
                strict=True,
            )
        ),
    }


def _coco_metrics(results: list[ImageResult]) -> dict[str, Any]:
    """COCO AP (pycocotools) on the same ground truth the other metrics see."""
    coco_dets = [
        {
            "image_id": i,
            "category_id": PERSON_CATEGORY_ID,
            "bbox": [float(b[0]), float(b[1]), float(b[2] - b[0]), float(b[3] - b[1])],
            "score": float(s),
        }
        for i, r in enumerate(results, start=1)
        for b, s in zip(r.xyxy, r.scores, strict=True)
    ]
    coco = coco_ap(to_coco_dict([r.sample for r in results]), coco_dets)
    return {k: coco[k] for k in ("ap", "ap50", "ap75", "ap50_by_size")}


def _count_metrics(results: list[ImageResult], threshold: float) -> dict[str, int]:
    """How much was scored, and how many person-free images raised an alarm at ``threshold``."""
    samples = [r.sample for r in results]
    # Images with no box at all (not even an ignore region): what a camera sees most of the day.
    person_free = [r for r in results if len(r.sample.boxes) == 0]
    return {
        "images": len(results),
        "gt_boxes": int(sum(s.num_people for s in samples)),
        "ignored_boxes": int(sum(int(s.ignore.sum()) for s in samples)),
        "detections_at_curve_threshold": int(sum(len(r.scores) for r in results)),
        "person_free_images": len(person_free),
        "person_free_images_with_alarm": int(
            sum(bool((r.scores >= threshold).any()) for r in person_free)
        ),
    }


def _latency_metrics(results: list[ImageResult]) -> dict[str, float]:
    """Median, 95th percentile and mean detection time per image (0 for no images)."""
    lat = np.array([r.latency_ms for r in results]) if results else np.zeros(1)
    return {
        "latency_ms_p50": float(np.percentile(lat, 50)),
        "latency_ms_p95": float(np.percentile(lat, 95)),
        "latency_ms_mean": float(lat.mean()),
    }


def _operating_points(matches: list[ImageMatch], curve_threshold: float) -> list[dict[str, float]]:
    """Precision, recall and mean IoU at each of :data:`OPERATING_THRESHOLDS` the curve covers."""
    return [
        {"threshold": t, "precision": p.precision, "recall": p.recall, "mean_iou": p.mean_iou}
        for t in OPERATING_THRESHOLDS
        if t >= curve_threshold
        for p in [operating_point(matches, t)]
    ]


def evaluate(
    detector: PersonDetector,
    dataset: Dataset,
    threshold: float,
    curve_threshold: float,
    progress: bool = True,
    transform: ImageTransform | None = None,
) -> Evaluation:
    """Run and score a detector on a dataset (each image through ``transform`` first, if given)."""
    if curve_threshold > threshold:
        raise EdgeDetectError(
            f"--curve-threshold {curve_threshold} must not exceed --threshold {threshold}"
        )
    results = run_detector(
        detector, dataset, curve_threshold, progress=progress, transform=transform
    )
    return Evaluation(
        results, threshold, curve_threshold, compute_metrics(results, threshold, curve_threshold)
    )
