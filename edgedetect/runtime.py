"""Finding and loading a TFLite interpreter.

Order of preference: ``ai_edge_litert`` (the maintained LiteRT wheel, on PyPI for the Pi's
aarch64 and for x86-64), then the legacy ``tflite_runtime``, then ``tensorflow.lite`` (on a host
that has TensorFlow anyway). TensorFlow is only ever imported as the last resort.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from typing import Any

from edgedetect.errors import ModelError

_CANDIDATES = (
    ("ai_edge_litert.interpreter", "ai-edge-litert"),
    ("tflite_runtime.interpreter", "tflite-runtime"),
)


def interpreter_class() -> tuple[type, str]:
    """The first importable ``Interpreter`` class and the name of the package it came from."""
    forced = os.environ.get("EDGEDETECT_RUNTIME", "")
    for module, package in _CANDIDATES:
        if forced and forced != package:
            continue
        try:
            return importlib.import_module(module).Interpreter, package
        except ImportError:
            continue
    if not forced or forced == "tensorflow":
        try:
            tf = importlib.import_module("tensorflow")
            return tf.lite.Interpreter, "tensorflow"
        except ImportError:
            pass
    raise ModelError(
        "no TFLite runtime is installed: run `pip install ai-edge-litert` "
        "(or tflite-runtime on an old Pi OS)"
        + (f"; EDGEDETECT_RUNTIME={forced!r} was requested" if forced else "")
    )


def load_interpreter(model_path: str | Path, num_threads: int | None = None) -> tuple[Any, str]:
    """Load and allocate a model; every failure becomes a :class:`ModelError` naming the file.

    Returns the interpreter and the runtime package name.
    """
    path = Path(model_path)
    if not path.is_file():
        raise ModelError(
            f"model not found: {path} (pass --model PATH, or run from a checkout that has models/)"
        )
    cls, package = interpreter_class()
    kwargs: dict[str, Any] = {"model_path": str(path)}
    if num_threads is not None:
        if num_threads < 1:
            raise ModelError(f"num_threads must be >= 1, got {num_threads}")
        kwargs["num_threads"] = int(num_threads)
    try:
        interpreter = cls(**kwargs)
        interpreter.allocate_tensors()
    except (ValueError, RuntimeError) as err:
        detail = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ModelError(
            f"cannot load model {path}: {detail}. Is it a complete .tflite file? "
            "Re-download or re-export it."
        ) from None
    return interpreter, package
