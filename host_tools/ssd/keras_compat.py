"""The one Keras used by the SSD code: ``tf_keras`` (Keras 2), which TF-MOT's QAT supports."""

from __future__ import annotations

try:
    import tf_keras as keras
except ModuleNotFoundError as _exc:  # a venv without the [host] extra
    from host_tools._deps import exit_if_tool

    exit_if_tool(_exc)
    raise

import host_tools.ssd  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow loads)

__all__ = ["keras"]
