"""Detector backends: one small module per model family, behind one interface.

A backend knows how its family wants the image (``prepare``) and what its outputs mean
(``decode``); the :class:`~edgedetect.detector.Detector` owns the interpreter, the labels, the
score threshold, the class filter and the final NMS, which are the same for every family. The
family is chosen from the model's own ops and tensors, never from its file name: each module's
``probe(model)`` returns a backend or ``None``, tried in :data:`FAMILIES` order.

Adding a family means adding one module with a ``probe`` and listing it here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from edgedetect.errors import ModelError


@dataclass(frozen=True)
class Candidates:
    """Decoded boxes before the common threshold / class filter / NMS, in original-image pixels."""

    xyxy: np.ndarray  # (N, 4) float32 x1, y1, x2, y2
    score: np.ndarray  # (N,) float32
    class_id: np.ndarray  # (N,) int32, 0-based


@dataclass(frozen=True)
class ModelIO:
    """What a backend may look at to recognise its family: the model's own tensors and ops."""

    path: Path
    input: dict[str, Any]
    outputs: list[dict[str, Any]]
    output_names: list[str]  # semantic names (signature keys where the model has them)
    ops: list[dict[str, Any]]

    @property
    def input_size(self) -> tuple[int, int]:
        """(width, height) of the model input."""
        return int(self.input["shape"][2]), int(self.input["shape"][1])

    @property
    def input_dtype(self) -> np.dtype:
        return np.dtype(self.input["dtype"])

    def shapes(self) -> list[tuple[int, ...]]:
        return [tuple(int(s) for s in d["shape"]) for d in self.outputs]


class Backend(Protocol):
    """One model family: which outputs to read, how to feed the image, how to read the outputs."""

    kind: str
    output_order: list[int]  # indices into ``ModelIO.outputs``, in the order ``decode`` takes them

    def prepare(self, image_bgr: np.ndarray) -> np.ndarray:
        """BGR uint8 image -> the model's input tensor [1, H, W, 3]."""
        ...

    def decode(
        self,
        tensors: Sequence[np.ndarray],
        image_size: tuple[int, int],
        threshold: float,
        class_filter: set[int] | None,
    ) -> Candidates:
        """Dequantized outputs -> image-pixel candidates above ``threshold`` of the kept classes."""
        ...


def select_backend(model: ModelIO, input_mean: float = 127.5, input_std: float = 127.5) -> Backend:
    """The first family whose ``probe`` recognises the model."""
    for probe in FAMILIES:
        backend = probe(model, input_mean, input_std)
        if backend is not None:
            return backend
    raise ModelError(
        f"{model.path}: not a detector this runtime knows: no TFLite_Detection_PostProcess op, no "
        f"OD-API SavedModel outputs, no YOLO output [1, 4+C, N], no SSD box output [1, N, 4] "
        f"(outputs: {model.shapes()})"
    )


def _families() -> list[Callable[[ModelIO, float, float], Backend | None]]:
    from edgedetect.backends import odapi_saved_model, raw_ssd, ssd_postprocess, yolo

    # raw_ssd last: its probe is the loosest (any [1, N, 4] output).
    return [ssd_postprocess.probe, odapi_saved_model.probe, yolo.probe, raw_ssd.probe]


FAMILIES = _families()
