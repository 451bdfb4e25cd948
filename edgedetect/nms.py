"""Vectorized non-maximum suppression in numpy.

Hand-written on purpose: ``cv2.dnn.NMSBoxes`` takes (x, y, w, h) lists, is not class-aware and
differs in tie-breaking between OpenCV versions; torchvision/TensorFlow are not Pi runtime
dependencies. The loop runs once per *kept* box with a vectorized IoU against the rest, which for
the few hundred candidates of an SSD head is well under a millisecond.
"""

from __future__ import annotations

import numpy as np

from edgedetect.boxes import box_iou

__all__ = ["box_iou", "nms"]  # box_iou re-exported: NMS is where most callers meet it


def nms(
    xyxy: np.ndarray,
    scores: np.ndarray,
    iou_threshold: float = 0.5,
    max_detections: int = 100,
    class_ids: np.ndarray | None = None,
) -> np.ndarray:
    """Greedy NMS; returns indices of kept boxes, highest score first.

    A box is suppressed when its IoU with a higher-scoring kept box is *strictly greater* than
    ``iou_threshold`` (the OD-API and torchvision convention). With ``class_ids``, boxes of
    different classes never suppress each other (each class is suppressed on its own, exactly,
    then the survivors are merged by score). Ties in score keep the lower index first.
    """
    boxes = np.asarray(xyxy, dtype=np.float64).reshape(-1, 4)
    scores = np.asarray(scores, dtype=np.float32).reshape(-1)
    if len(boxes) != len(scores):
        raise ValueError(f"nms: {len(boxes)} boxes but {len(scores)} scores")
    if len(boxes) == 0 or max_detections <= 0:
        return np.zeros(0, dtype=np.int64)
    if class_ids is None:
        return _greedy(boxes, scores, np.arange(len(boxes)), iou_threshold, max_detections)
    cls = np.asarray(class_ids).reshape(-1)
    kept = [
        _greedy(boxes, scores, np.flatnonzero(cls == c), iou_threshold, max_detections)
        for c in np.unique(cls)
    ]
    merged = np.concatenate(kept)
    order = np.lexsort((merged, -scores[merged]))  # score desc, then index asc
    return merged[order][:max_detections].astype(np.int64)


def _greedy(
    boxes: np.ndarray, scores: np.ndarray, idx: np.ndarray, iou_threshold: float, limit: int
) -> np.ndarray:
    """Greedy suppression among ``boxes[idx]``; one vectorized IoU row per kept box."""
    order = idx[np.argsort(-scores[idx], kind="stable")]
    keep: list[int] = []
    while order.size and len(keep) < limit:
        i = int(order[0])
        keep.append(i)
        rest = order[1:]
        if rest.size == 0:
            break
        order = rest[box_iou(boxes[i : i + 1], boxes[rest])[0] <= iou_threshold]
    return np.asarray(keep, dtype=np.int64)
