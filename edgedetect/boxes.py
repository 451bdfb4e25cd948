"""SSD center-size box coding (the OD API's ``FasterRcnnBoxCoder``), in numpy.

Shared by the runtime (decoding raw-output models) and the host training code (its tests check
the TensorFlow encoder against this one), so one definition of the box code exists.

Conventions, as in the OD API: boxes are ``[ymin, xmin, ymax, xmax]`` normalised to [0, 1];
anchors are ``[ycenter, xcenter, height, width]``; codes are ``[ty, tx, th, tw]`` scaled by
``scales = (y, x, h, w) = (10, 10, 5, 5)``.
"""

from __future__ import annotations

import numpy as np

DEFAULT_SCALES: tuple[float, float, float, float] = (10.0, 10.0, 5.0, 5.0)
_EPS = 1e-8


def decode_center_size(
    codes: np.ndarray,
    anchors: np.ndarray,
    scales: tuple[float, float, float, float] = DEFAULT_SCALES,
) -> np.ndarray:
    """Codes (N, 4) relative to anchors (N, 4) -> boxes (N, 4) ``ymin, xmin, ymax, xmax``."""
    codes = np.asarray(codes, dtype=np.float32).reshape(-1, 4)
    anchors = np.asarray(anchors, dtype=np.float32).reshape(-1, 4)
    sy, sx, sh, sw = scales
    yc = codes[:, 0] / sy * anchors[:, 2] + anchors[:, 0]
    xc = codes[:, 1] / sx * anchors[:, 3] + anchors[:, 1]
    h = np.exp(codes[:, 2] / sh) * anchors[:, 2]
    w = np.exp(codes[:, 3] / sw) * anchors[:, 3]
    return np.stack([yc - h / 2, xc - w / 2, yc + h / 2, xc + w / 2], axis=1)


def encode_center_size(
    boxes: np.ndarray,
    anchors: np.ndarray,
    scales: tuple[float, float, float, float] = DEFAULT_SCALES,
) -> np.ndarray:
    """Boxes (N, 4) ``ymin, xmin, ymax, xmax`` -> codes (N, 4) relative to anchors (N, 4)."""
    boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
    anchors = np.asarray(anchors, dtype=np.float32).reshape(-1, 4)
    sy, sx, sh, sw = scales
    h = np.maximum(boxes[:, 2] - boxes[:, 0], _EPS)
    w = np.maximum(boxes[:, 3] - boxes[:, 1], _EPS)
    yc = boxes[:, 0] + h / 2
    xc = boxes[:, 1] + w / 2
    ah = np.maximum(anchors[:, 2], _EPS)
    aw = np.maximum(anchors[:, 3], _EPS)
    return np.stack(
        [
            (yc - anchors[:, 0]) / ah * sy,
            (xc - anchors[:, 1]) / aw * sx,
            np.log(h / ah) * sh,
            np.log(w / aw) * sw,
        ],
        axis=1,
    )


def to_pixel_xyxy(boxes: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Normalised ``ymin, xmin, ymax, xmax`` (N, 4) -> ``x1, y1, x2, y2`` float32 pixels of an
    image of ``size = (w, h)``, clipped to it (what ``Detections.xyxy`` holds)."""
    w, h = size
    boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
    xyxy = np.stack([boxes[:, 1] * w, boxes[:, 0] * h, boxes[:, 3] * w, boxes[:, 2] * h], axis=1)
    return np.clip(xyxy, 0, [w, h, w, h]).astype(np.float32)


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU of ``a`` (N, 4) and ``b`` (M, 4) boxes -> (N, M) float64.

    The runtime's one IoU (NMS, tracker, metrics, training targets). Any corner order works as long
    as both sides share it: ``x1, y1, x2, y2`` pixels or the OD API's ``ymin, xmin, ymax, xmax``.
    Degenerate boxes (zero or negative area) have IoU 0 with everything. Computed in float64.
    """
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    area_a = np.clip(a[:, 2] - a[:, 0], 0, None) * np.clip(a[:, 3] - a[:, 1], 0, None)
    area_b = np.clip(b[:, 2] - b[:, 0], 0, None) * np.clip(b[:, 3] - b[:, 1], 0, None)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    wh = np.clip(rb - lt, 0, None)
    inter = wh[..., 0] * wh[..., 1]
    union = area_a[:, None] + area_b[None, :] - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        iou = np.where(union > 0, inter / union, 0.0)
    return iou
