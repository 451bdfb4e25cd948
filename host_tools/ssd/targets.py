"""Anchor matching (the OD API's ArgMaxMatcher with force-match) and training targets, in numpy.

Done in numpy on the input side, per image, because it is a few thousand IoUs and keeps the training
graph free of ragged ground-truth tensors.
"""

from __future__ import annotations

import numpy as np

from edgedetect.boxes import DEFAULT_SCALES, box_iou, encode_center_size
from host_tools.metrics import overlap_matrix

# An anchor with at least this share of its area inside an ignore region is left out of the loss.
IGNORE_OVERLAP = 0.5


def match(
    anchors: np.ndarray,
    gt: np.ndarray,
    matched_iou: float = 0.5,
    unmatched_iou: float = 0.5,
    force_match: bool = True,
) -> np.ndarray:
    """Per anchor, the index of its ground-truth box, -1 for background or -2 for ignored.

    Anchors with IoU >= ``matched_iou`` take their best box; below ``unmatched_iou`` they are
    background; in between they are ignored. With ``force_match`` each box also claims its best
    anchor, so that no person goes without a positive anchor.
    """
    n = len(anchors)
    if len(gt) == 0:
        return np.full(n, -1, np.int64)
    iou = box_iou(anchors, gt)
    best = iou.argmax(axis=1)
    best_iou = iou[np.arange(n), best]
    out = best.astype(np.int64)
    out[best_iou < matched_iou] = -2
    out[best_iou < unmatched_iou] = -1
    if force_match:
        forced = iou.argmax(axis=0)
        out[forced] = np.arange(len(gt))
    return out


def build_targets(
    anchors: np.ndarray,
    anchors_cs: np.ndarray,
    gt_boxes: np.ndarray,
    gt_classes: np.ndarray,
    matched_iou: float = 0.5,
    unmatched_iou: float = 0.5,
    scales=DEFAULT_SCALES,
    ignore_boxes: np.ndarray | None = None,
    ignore_overlap: float = IGNORE_OVERLAP,
) -> tuple[np.ndarray, np.ndarray]:
    """Targets for one image.

    Returns ``loc`` (N, 4) encoded boxes (zeros where not positive) and ``cls`` (N,) int32 with
    0 = background, k = class k-1 + 1, -1 = ignore. A non-positive anchor lying mostly inside one
    of ``ignore_boxes`` (intersection over the anchor's area >= ``ignore_overlap``, as crowd
    regions are scored) is ignored too: it may show an unlabelled person, so it is no negative.
    """
    m = match(anchors, gt_boxes, matched_iou, unmatched_iou)
    cls = np.zeros(len(anchors), np.int32)
    loc = np.zeros((len(anchors), 4), np.float32)
    pos = m >= 0
    cls[m == -2] = -1
    if ignore_boxes is not None and len(ignore_boxes):
        ign = np.asarray(ignore_boxes, np.float64).reshape(-1, 4)
        inside = overlap_matrix(anchors, ign, np.ones(len(ign), bool)).max(axis=1)
        cls[~pos & (inside >= ignore_overlap)] = -1
    if pos.any():
        cls[pos] = np.asarray(gt_classes, np.int32)[m[pos]] + 1
        loc[pos] = encode_center_size(gt_boxes[m[pos]], anchors_cs[pos], scales)
    return loc, cls
