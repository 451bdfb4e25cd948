"""Keras SSD family (SSDLite-MobileNetV2, SSD-MobileNetV1/V2) re-implementing the TF1 OD-API recipe in TF2.

Importing this package selects the legacy ``tf_keras`` (Keras 2) API for TensorFlow, because
TF-Model-Optimization's quantization-aware training only works with it; every module here uses
``from host_tools.ssd.keras_compat import keras`` so the whole model stack sees one Keras.
"""

from __future__ import annotations

import os

# Must be set before TensorFlow or TF-MOT is imported anywhere in the process.
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
