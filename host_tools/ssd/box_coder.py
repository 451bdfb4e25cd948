"""Center-size box coder (the OD API's FasterRcnnBoxCoder, scales 10, 10, 5, 5) in TensorFlow.

The numpy version the runtime uses lives in ``edgedetect.boxes``; this one runs inside the training
graph and in the float SavedModel. Tests check that the two agree.
"""

from __future__ import annotations

import tensorflow as tf

from edgedetect.boxes import DEFAULT_SCALES, decode_center_size, encode_center_size

_EPS = 1e-8

__all__ = ["DEFAULT_SCALES", "decode_center_size", "encode_center_size", "tf_decode", "tf_encode"]


def tf_encode(boxes: tf.Tensor, anchors_cs: tf.Tensor, scales=DEFAULT_SCALES) -> tf.Tensor:
    """Boxes (..., 4) ymin,xmin,ymax,xmax -> codes (..., 4) against center-size anchors (..., 4)."""
    sy, sx, sh, sw = scales
    h = tf.maximum(boxes[..., 2] - boxes[..., 0], _EPS)
    w = tf.maximum(boxes[..., 3] - boxes[..., 1], _EPS)
    yc = boxes[..., 0] + h / 2
    xc = boxes[..., 1] + w / 2
    ah = tf.maximum(anchors_cs[..., 2], _EPS)
    aw = tf.maximum(anchors_cs[..., 3], _EPS)
    return tf.stack(
        [
            (yc - anchors_cs[..., 0]) / ah * sy,
            (xc - anchors_cs[..., 1]) / aw * sx,
            tf.math.log(h / ah) * sh,
            tf.math.log(w / aw) * sw,
        ],
        axis=-1,
    )


def tf_decode(codes: tf.Tensor, anchors_cs: tf.Tensor, scales=DEFAULT_SCALES) -> tf.Tensor:
    """Codes (..., 4) -> boxes (..., 4) ymin,xmin,ymax,xmax."""
    sy, sx, sh, sw = scales
    yc = codes[..., 0] / sy * anchors_cs[..., 2] + anchors_cs[..., 0]
    xc = codes[..., 1] / sx * anchors_cs[..., 3] + anchors_cs[..., 1]
    h = tf.exp(codes[..., 2] / sh) * anchors_cs[..., 2]
    w = tf.exp(codes[..., 3] / sw) * anchors_cs[..., 3]
    return tf.stack([yc - h / 2, xc - w / 2, yc + h / 2, xc + w / 2], axis=-1)
