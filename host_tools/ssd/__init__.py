"""Keras SSD family (SSDLite-MobileNetV2, SSD-MobileNetV1/V2): the TF1 OD-API recipe in TF2.

Importing this package selects the legacy ``tf_keras`` (Keras 2) API for TensorFlow, because
TF-Model-Optimization's quantization-aware training only works with it; every module here uses
``from host_tools.ssd.keras_compat import keras`` so the whole model stack sees one Keras.
"""

from __future__ import annotations

import os

# Must be set before TensorFlow or TF-MOT is imported anywhere in the process.
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import contextlib  # noqa: E402
import sys  # noqa: E402
from collections.abc import Iterator  # noqa: E402


@contextlib.contextmanager
def native_stderr_quiet() -> Iterator[None]:
    """Send file descriptor 2 to /dev/null for the block, unless ``EDGEDETECT_VERBOSE`` is set.

    TensorFlow's C++ start-up lines (oneDNN, CUDA stubs, CPU features, cuInit) are written before
    absl logging is set up, so ``TF_CPP_MIN_LOG_LEVEL`` does not reach them; only the descriptor
    can. Python-level errors raised inside the block still surface after it, with stderr restored.
    """
    if os.environ.get("EDGEDETECT_VERBOSE"):
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


try:
    with native_stderr_quiet():
        import tensorflow  # noqa: E402, F401  (loaded once, quietly; every later import is silent)

        tensorflow.config.list_physical_devices(
            "GPU"
        )  # probes CUDA now, so its cuInit line stays quiet
except ModuleNotFoundError as _exc:  # a venv without the [host] extra
    from host_tools._deps import exit_if_tool

    exit_if_tool(_exc)
    raise
