"""Detection metrics: greedy matching, precision/recall, all-point / COCO AP, log-average miss rate.

Matching follows pycocotools (COCOeval.evaluateImg) exactly, so the numbers here agree with COCO AP:
detections are taken in descending score order and each claims the unclaimed ground-truth box of
highest IoU >= the threshold; a detection that claims nothing but overlaps an ignore region (COCO
``iscrowd``, VOC ``difficult``) by intersection-over-detection-area >= the threshold is ignored
(neither TP nor FP), and ignore regions may absorb any number of detections. pycocotools itself is
used for COCO AP; this module adds what it lacks (operating-point precision/recall, mean IoU, PR
curves for plots, Caltech log-average miss rate), and tests cross-check the two.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from edgedetect.nms import box_iou

#: Caltech protocol (Dollar et al., PAMI 2012): 9 FPPI points evenly log-spaced in [1e-2, 1e0].
LAMR_FPPI_POINTS = np.logspace(-2.0, 0.0, 9)


def overlap_matrix(dets: np.ndarray, gts: np.ndarray, gt_ignore: np.ndarray) -> np.ndarray:
    """(D, G) overlaps: IoU with normal boxes, intersection / detection area with ignore regions.

    The second is what pycocotools (``iscrowd``) and the Caltech toolbox use for ignore regions: a
    detection lying inside a crowd region is covered by it however large the region is.
    """
    dets = np.asarray(dets, np.float64).reshape(-1, 4)
    gts = np.asarray(gts, np.float64).reshape(-1, 4)
    iou = box_iou(dets, gts)
    ign = np.asarray(gt_ignore, bool).reshape(-1)
    if ign.any() and len(dets):
        lt = np.maximum(dets[:, None, :2], gts[None, ign, :2])
        rb = np.minimum(dets[:, None, 2:], gts[None, ign, 2:])
        wh = np.clip(rb - lt, 0, None)
        inter = wh[..., 0] * wh[..., 1]
        area = (
            np.clip(dets[:, 2] - dets[:, 0], 0, None) * np.clip(dets[:, 3] - dets[:, 1], 0, None)
        )[:, None]
        with np.errstate(divide="ignore", invalid="ignore"):
            iou[:, ign] = np.where(area > 0, inter / area, 0.0)
    return iou


@dataclass(frozen=True)
class ImageMatch:
    """Matching result of one image. Arrays over detections are in the order given."""

    scores: np.ndarray  # (D,) float64
    tp: np.ndarray  # (D,) bool: claimed a countable ground-truth box
    ignored: np.ndarray  # (D,) bool: fell on an ignore region (neither TP nor FP)
    iou: np.ndarray  # (D,) float64 IoU with the claimed box (0 when none)
    gt_index: np.ndarray  # (D,) int64 claimed box index or -1
    gt_score: np.ndarray  # (G,) float64 score of the detection that claimed box g, -inf if none
    gt_ignore: np.ndarray  # (G,) bool

    @property
    def fp(self) -> np.ndarray:
        """Detections that are false positives."""
        return ~self.tp & ~self.ignored

    @property
    def num_gt(self) -> int:
        """Countable ground-truth boxes."""
        return int((~self.gt_ignore).sum())


def match_image(
    det_xyxy: np.ndarray,
    det_scores: np.ndarray,
    gt_xyxy: np.ndarray,
    gt_ignore: np.ndarray | None = None,
    iou_threshold: float = 0.5,
) -> ImageMatch:
    """Greedy score-ordered matching of one image's detections to its ground truth (COCO rules)."""
    det_xyxy = np.asarray(det_xyxy, np.float64).reshape(-1, 4)
    scores = np.asarray(det_scores, np.float64).reshape(-1)
    gt_xyxy = np.asarray(gt_xyxy, np.float64).reshape(-1, 4)
    ign = (
        np.zeros(len(gt_xyxy), bool)
        if gt_ignore is None
        else np.asarray(gt_ignore, bool).reshape(-1)
    )
    d, g = len(det_xyxy), len(gt_xyxy)
    if len(scores) != d or len(ign) != g:
        raise ValueError("match_image: array lengths differ")
    tp = np.zeros(d, bool)
    ignored = np.zeros(d, bool)
    ious = np.zeros(d, np.float64)
    gt_index = np.full(d, -1, np.int64)
    gt_score = np.full(g, -np.inf)
    if d and g:
        ov = overlap_matrix(det_xyxy, gt_xyxy, ign)
        thr = min(
            iou_threshold, 1 - 1e-10
        )  # as pycocotools: an IoU threshold of 1 still matches exact boxes
        taken = np.zeros(g, bool)
        normal = np.flatnonzero(~ign)
        crowd = np.flatnonzero(ign)
        for i in np.argsort(-scores, kind="mergesort"):
            free = normal[~taken[normal]]
            if free.size:
                j = free[np.argmax(ov[i, free])]
                if ov[i, j] >= thr:
                    taken[j] = True
                    tp[i] = True
                    ious[i] = ov[i, j]
                    gt_index[i] = j
                    gt_score[j] = scores[i]
                    continue
            if crowd.size and ov[i, crowd].max() >= thr:
                ignored[i] = True
                gt_index[i] = crowd[np.argmax(ov[i, crowd])]
    return ImageMatch(scores, tp, ignored, ious, gt_index, gt_score, ign)


@dataclass(frozen=True)
class Curve:
    """Dataset-level cumulative counts over detections sorted by descending score.

    Ignored detections are dropped.
    """

    scores: np.ndarray
    tp: np.ndarray  # cumulative true positives
    fp: np.ndarray  # cumulative false positives
    num_gt: int
    num_images: int

    @property
    def precision(self) -> np.ndarray:
        """Precision after each detection."""
        return self.tp / np.maximum(self.tp + self.fp, np.finfo(np.float64).tiny)

    @property
    def recall(self) -> np.ndarray:
        """Recall after each detection (0 when the dataset has no countable boxes)."""
        return self.tp / self.num_gt if self.num_gt else np.zeros_like(self.tp)

    @property
    def fppi(self) -> np.ndarray:
        """False positives per image after each detection."""
        return self.fp / max(self.num_images, 1)

    @property
    def miss_rate(self) -> np.ndarray:
        """1 - recall after each detection."""
        return 1.0 - self.recall


def accumulate(matches: Sequence[ImageMatch]) -> Curve:
    """Merge per-image matches into one score-sorted curve.

    The sort is stable and the images stay in order, as in pycocotools.
    """
    if matches:
        scores = np.concatenate([m.scores for m in matches])
        tp = np.concatenate([m.tp for m in matches])
        keep = ~np.concatenate([m.ignored for m in matches])
    else:
        scores, tp, keep = np.zeros(0), np.zeros(0, bool), np.zeros(0, bool)
    order = np.argsort(-scores, kind="mergesort")
    order = order[keep[order]]
    tps = tp[order].astype(np.float64)
    return Curve(
        scores[order],
        np.cumsum(tps),
        np.cumsum(1.0 - tps),
        sum(m.num_gt for m in matches),
        len(matches),
    )


def average_precision(recall: np.ndarray, precision: np.ndarray) -> float:
    """All-point interpolated AP (PASCAL VOC 2010+): area under the monotone precision envelope."""
    r = np.concatenate([[0.0], np.asarray(recall, np.float64), [1.0]])
    p = np.concatenate([[0.0], np.asarray(precision, np.float64), [0.0]])
    p = np.maximum.accumulate(p[::-1])[::-1]
    steps = np.flatnonzero(r[1:] != r[:-1])
    return float(np.sum((r[steps + 1] - r[steps]) * p[steps + 1]))


def coco_interpolated_ap(recall: np.ndarray, precision: np.ndarray, points: int = 101) -> float:
    """AP as COCOeval.accumulate does it: envelope precision sampled at ``points`` recall levels."""
    rc = np.asarray(recall, np.float64)
    pr = np.maximum.accumulate(np.asarray(precision, np.float64)[::-1])[::-1]
    rec_thrs = np.linspace(0.0, 1.0, points)
    inds = np.searchsorted(rc, rec_thrs, side="left")
    q = np.zeros(points)
    ok = inds < len(pr)
    q[ok] = pr[inds[ok]]
    return float(np.mean(q))


def log_average_miss_rate(
    fppi: np.ndarray, miss_rate: np.ndarray, points: np.ndarray = LAMR_FPPI_POINTS
) -> float:
    """Caltech log-average miss rate: geometric mean of the miss rate at ``points`` FPPI.

    As in the Caltech toolbox (bbGt.compRoc + dbEval): at each reference FPPI the miss rate of the
    last operating point whose FPPI is <= the reference is used (1.0 if none), floored at 1e-10
    before the log. ``fppi``/``miss_rate`` are the per-detection curve in descending score order.
    """
    xs = np.concatenate([[-np.inf], np.asarray(fppi, np.float64)])
    ys = np.concatenate([[1.0], np.asarray(miss_rate, np.float64)])
    at = [ys[np.flatnonzero(xs <= ref)[-1]] for ref in points]
    return float(np.exp(np.mean(np.log(np.maximum(1e-10, at)))))


def miss_rates_at(
    fppi: np.ndarray, miss_rate: np.ndarray, points: np.ndarray = LAMR_FPPI_POINTS
) -> list[float]:
    """The miss rate at each reference FPPI (the values LAMR averages), for the report."""
    xs = np.concatenate([[-np.inf], np.asarray(fppi, np.float64)])
    ys = np.concatenate([[1.0], np.asarray(miss_rate, np.float64)])
    return [float(ys[np.flatnonzero(xs <= ref)[-1]]) for ref in points]


@dataclass(frozen=True)
class OperatingPoint:
    """Counts and rates at one score threshold (the reference paper's IoU / precision / recall)."""

    threshold: float
    tp: int
    fp: int
    fn: int
    precision: float
    recall: float
    mean_iou: float


def operating_point(matches: Sequence[ImageMatch], threshold: float) -> OperatingPoint:
    """Precision, recall and mean IoU of matches, counting only detections with score >= threshold.

    Greedy matching visits detections by descending score, so the matches of the detections above a
    threshold do not depend on those below it: one matching at a low threshold serves every
    operating point.
    """
    tp = fp = fn = 0
    ious: list[np.ndarray] = []
    for m in matches:
        on = m.scores >= threshold
        tp += int((m.tp & on).sum())
        fp += int((m.fp & on).sum())
        fn += int(((m.gt_score < threshold) & ~m.gt_ignore).sum())
        ious.append(m.iou[m.tp & on])
    all_iou = np.concatenate(ious) if ious else np.zeros(0)
    return OperatingPoint(
        threshold=float(threshold),
        tp=tp,
        fp=fp,
        fn=fn,
        precision=tp / (tp + fp) if tp + fp else 0.0,
        recall=tp / (tp + fn) if tp + fn else 0.0,
        mean_iou=float(all_iou.mean()) if all_iou.size else 0.0,
    )


SIZE_RANGES = ("small", "medium", "large")  # COCOeval's areaRng: < 32^2, < 96^2, above (pixels)


def coco_ap(gt: dict, detections: list[dict]) -> dict[str, Any]:
    """COCO AP@[.5:.95], AP50, AP75 and AP50 per size range for category 1 (person), pycocotools.

    ``ap50_by_size`` (small / medium / large people by box area in the image's pixels) says where a
    model gains or loses: a stride-8 layer or tiles should move ``small``. A range with no person
    is ``None``.

    ``gt`` is a COCO dict (see ``host_tools.datasets.coco.to_coco_dict``); ``detections`` the COCO
    results list (``image_id``, ``category_id``, ``bbox`` xywh, ``score``). pycocotools prints its
    progress and table to stdout; that is captured so the CLI's stdout stays clean.
    """
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    if not detections or not gt.get("annotations"):
        # pycocotools cannot load an empty result list; no detections (or nothing to find) is AP 0.
        return {"ap": 0.0, "ap50": 0.0, "ap75": 0.0, "ap50_by_size": dict.fromkeys(SIZE_RANGES)}
    sink = io.StringIO()
    with contextlib.redirect_stdout(sink):
        coco_gt = COCO()
        coco_gt.dataset = gt
        coco_gt.createIndex()
        coco_dt = coco_gt.loadRes(detections)
        ev = COCOeval(coco_gt, coco_dt, iouType="bbox")
        ev.params.catIds = [1]
        ev.params.imgIds = sorted(img["id"] for img in gt["images"])
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    s = ev.stats
    return {
        "ap": max(float(s[0]), 0.0),
        "ap50": max(float(s[1]), 0.0),
        "ap75": max(float(s[2]), 0.0),
        "ap50_by_size": _ap50_by_size(ev),
    }


def _ap50_by_size(ev: Any) -> dict[str, float | None]:
    """AP at IoU 0.5 per COCO area range, from the accumulated precision table.

    ``eval["precision"]`` is [IoU, recall, category, area range, max dets] with -1 where a range
    has no ground truth; summarize() prints AP per size only over IoU .5:.95.
    """
    p = ev.params
    t = int(np.argmin(np.abs(np.asarray(p.iouThrs) - 0.5)))
    m = len(p.maxDets) - 1
    out: dict[str, float | None] = {}
    for name in SIZE_RANGES:
        prec = ev.eval["precision"][t, :, 0, p.areaRngLbl.index(name), m]
        # accumulate() leaves -1 only where the range has no (non-crowd) person at all
        out[name] = float(np.mean(np.maximum(prec, 0.0))) if (prec > -1).any() else None
    return out
