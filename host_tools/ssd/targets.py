"""Anchor matching (the OD API's ArgMaxMatcher with force-match) and training targets, in numpy.

Done in numpy on the input side, per image, because it is a few thousand IoUs and keeps the training
graph free of ragged ground-truth tensors.
"""

from __future__ import annotations

import numpy as np

from edgedetect.boxes import DEFAULT_SCALES, box_iou, encode_center_size


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
) -> tuple[np.ndarray, np.ndarray]:
    """Targets for one image.

    Returns ``loc`` (N, 4) encoded boxes (zeros where not positive) and ``cls`` (N,) int32 with
    0 = background, k = class k-1 + 1, -1 = ignore.
    """
    m = match(anchors, gt_boxes, matched_iou, unmatched_iou)
    cls = np.zeros(len(anchors), np.int32)
    loc = np.zeros((len(anchors), 4), np.float32)
    pos = m >= 0
    cls[m == -2] = -1
    if pos.any():
        cls[pos] = np.asarray(gt_classes, np.int32)[m[pos]] + 1
        loc[pos] = encode_center_size(gt_boxes[m[pos]], anchors_cs[pos], scales)
    return loc, cls
