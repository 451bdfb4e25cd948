"""The one Keras used by the SSD code: ``tf_keras`` (Keras 2), which TF-MOT's QAT supports."""

from __future__ import annotations

import tf_keras as keras

import host_tools.ssd  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow loads)

__all__ = ["keras"]
