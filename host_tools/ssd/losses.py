"""SSD losses: smooth-L1 localisation + sigmoid/softmax classification.

Classification uses hard-negative mining or focal loss. The losses are normalised by the number of
positive anchors in the batch, as the OD API's ``normalize_loss_by_num_matches`` does.
"""

from __future__ import annotations

import tensorflow as tf

from host_tools.ssd.box_coder import tf_decode
from host_tools.ssd.config import SSDConfig


def smooth_l1(pred: tf.Tensor, target: tf.Tensor, delta: float = 1.0) -> tf.Tensor:
    """Huber loss summed over the 4 coordinates -> [B, N]."""
    diff = tf.abs(pred - target)
    per = tf.where(diff < delta, 0.5 * diff * diff / delta, diff - 0.5 * delta)
    return tf.reduce_sum(per, axis=-1)


def _clip_size_codes(codes: tf.Tensor, scales) -> tf.Tensor:
    """Clip the log-size codes so that a wild prediction early in training cannot overflow exp()."""
    sh, sw = scales[2], scales[3]
    return tf.concat(
        [
            codes[..., :2],
            tf.clip_by_value(codes[..., 2:3], -10.0 * sh, 5.0 * sh),
            tf.clip_by_value(codes[..., 3:4], -10.0 * sw, 5.0 * sw),
        ],
        axis=-1,
    )


def giou_loss(pred: tf.Tensor, target: tf.Tensor) -> tf.Tensor:
    """``1 - GIoU`` per box pair [..., 4] -> [...] (Rezatofighi et al. 2019): in [0, 2], 0 if equal.

    Unlike smooth-L1 on the codes it measures the overlap itself, which is what mean IoU and the
    AP75 end of COCO AP reward.
    """
    area_p = tf.maximum(pred[..., 2] - pred[..., 0], 0.0) * tf.maximum(
        pred[..., 3] - pred[..., 1], 0.0
    )
    area_t = tf.maximum(target[..., 2] - target[..., 0], 0.0) * tf.maximum(
        target[..., 3] - target[..., 1], 0.0
    )
    lt = tf.maximum(pred[..., :2], target[..., :2])
    rb = tf.minimum(pred[..., 2:], target[..., 2:])
    inter = tf.reduce_prod(tf.maximum(rb - lt, 0.0), axis=-1)
    union = area_p + area_t - inter
    iou = inter / tf.maximum(union, 1e-9)
    hull = tf.reduce_prod(
        tf.maximum(
            tf.maximum(pred[..., 2:], target[..., 2:]) - tf.minimum(pred[..., :2], target[..., :2]),
            0.0,
        ),
        axis=-1,
    )
    return 1.0 - (iou - (hull - union) / tf.maximum(hull, 1e-9))


def class_loss(
    logits: tf.Tensor, cls: tf.Tensor, converter: str, background: bool = True
) -> tf.Tensor:
    """Per-anchor classification loss [B, N] vs int targets (0 = background; ignored clamp to 0).

    ``background`` False (sigmoid only) sums over the class columns alone: the background column's
    sigmoid is not read by the postprocess op, so its loss only matters for a start that disagrees
    with this label set about what background is.
    """
    n_cls = tf.shape(logits)[-1]
    onehot = tf.one_hot(tf.maximum(cls, 0), n_cls, dtype=logits.dtype)
    if converter == "softmax":
        return tf.nn.softmax_cross_entropy_with_logits(onehot, logits)
    return _sum_columns(tf.nn.sigmoid_cross_entropy_with_logits(onehot, logits), background)


def focal_loss(
    logits: tf.Tensor, cls: tf.Tensor, alpha: float, gamma: float, background: bool = True
) -> tf.Tensor:
    """Sigmoid focal loss per anchor [B, N] (RetinaNet), over the class columns (and background)."""
    n_cls = tf.shape(logits)[-1]
    onehot = tf.one_hot(tf.maximum(cls, 0), n_cls, dtype=logits.dtype)
    ce = tf.nn.sigmoid_cross_entropy_with_logits(onehot, logits)
    p = tf.sigmoid(logits)
    p_t = onehot * p + (1 - onehot) * (1 - p)
    a_t = onehot * alpha + (1 - onehot) * (1 - alpha)
    return _sum_columns(a_t * tf.pow(1 - p_t, gamma) * ce, background)


def _sum_columns(per_column: tf.Tensor, background: bool) -> tf.Tensor:
    """Per-anchor sum of a per-column sigmoid loss, with or without the background column 0."""
    return tf.reduce_sum(per_column if background else per_column[..., 1:], axis=-1)


def _mined_class_loss(
    cfg: SSDConfig, logits: tf.Tensor, cls_t: tf.Tensor, pos: tf.Tensor, valid: tf.Tensor
) -> tf.Tensor:
    """The classification loss summed over the positives and the hard negatives only: the easy
    background anchors outnumber the people by thousands and would drown their loss."""
    t = cfg.train
    per = class_loss(logits, cls_t, cfg.model.score_converter, t.background_loss)
    neg = valid * (1.0 - pos)
    neg_loss = per * neg
    # Hard-negative mining: per image, the ratio*positives worst negatives (>= min_negatives).
    k = tf.maximum(tf.cast(tf.reduce_sum(pos, axis=1) * t.neg_pos_ratio, tf.int32), t.min_negatives)
    k = tf.minimum(k, tf.cast(tf.reduce_sum(neg, axis=1), tf.int32))
    sorted_neg = tf.sort(neg_loss, axis=1, direction="DESCENDING")
    ranks = tf.range(tf.shape(neg_loss)[1])[None, :]
    hard = tf.cast(ranks < k[:, None], tf.float32) * sorted_neg
    return tf.reduce_sum(per * pos) + tf.reduce_sum(hard)


def _giou_per_anchor(
    cfg: SSDConfig, box_pred: tf.Tensor, loc_t: tf.Tensor, anchors_cs: tf.Tensor
) -> tf.Tensor:
    """``1 - GIoU`` of every anchor's decoded box and its target: the codes are decoded against
    the anchors because GIoU is measured on boxes, not codes."""
    anchors = tf.cast(anchors_cs, box_pred.dtype)[None]
    scales = cfg.model.box_scales
    return giou_loss(
        tf_decode(_clip_size_codes(box_pred, scales), anchors, scales),
        tf_decode(_clip_size_codes(loc_t, scales), anchors, scales),
    )


def ssd_loss(
    cfg: SSDConfig,
    box_pred: tf.Tensor,
    logits: tf.Tensor,
    loc_t: tf.Tensor,
    cls_t: tf.Tensor,
    anchors_cs: tf.Tensor | None = None,
) -> dict[str, tf.Tensor]:
    """Total loss and its parts for a batch. ``cls_t`` -1 marks ignored anchors.

    With ``train.giou_weight`` > 0 positive decoded boxes also pay ``giou_weight * (1 - GIoU)``
    against their targets; that needs the anchors (``anchors_cs``, [N, 4] ycenter, xcenter, h, w).
    With ``train.box_code_limit`` > 0 every anchor's codes beyond +-limit pay their squared excess,
    so the int8 box-code tensor's range is set by the codes that matter (quantization-friendly).
    """
    t = cfg.train
    pos = tf.cast(cls_t > 0, tf.float32)
    valid = tf.cast(cls_t >= 0, tf.float32)
    num_pos = tf.maximum(tf.reduce_sum(pos), 1.0)
    loc = tf.reduce_sum(smooth_l1(box_pred, loc_t) * pos) / num_pos
    if t.loss == "focal":
        cl = (
            tf.reduce_sum(
                focal_loss(logits, cls_t, t.focal_alpha, t.focal_gamma, t.background_loss) * valid
            )
            / num_pos
        )
    else:
        cl = _mined_class_loss(cfg, logits, cls_t, pos, valid) / num_pos
    total = t.localization_weight * loc + t.classification_weight * cl
    parts = {"loc": loc, "cls": cl, "num_pos": num_pos}
    if t.giou_weight > 0:
        if anchors_cs is None:
            raise ValueError("train.giou_weight > 0 needs the anchors (anchors_cs) to decode boxes")
        giou = tf.reduce_sum(_giou_per_anchor(cfg, box_pred, loc_t, anchors_cs) * pos) / num_pos
        total = total + t.giou_weight * giou
        parts["giou"] = giou
    if t.box_code_limit > 0:
        # Background anchors' codes are unconstrained by the loss and drift far (|code| ~ 18 seen),
        # which widens the single int8 scale shared by all box codes; keep them within the limit.
        excess = tf.nn.relu(tf.abs(box_pred) - t.box_code_limit)
        rng = tf.reduce_mean(tf.reduce_sum(excess * excess, axis=-1))
        total = total + rng
        parts["range"] = rng
    return {"loss": total, **parts}
