"""Run a TFLite detector and return :class:`Detections` in image pixels.

The model family is recognised from the model itself, never from its file name, by the backends in
:mod:`edgedetect.backends` (one module per family: the ``TFLite_Detection_PostProcess`` op, whole
OD-API SavedModels, raw-output SSDs with anchors, YOLO-family exports). The backend prepares the
input and decodes the outputs; this class owns what every family shares: the interpreter, the
labels, the score threshold, the class filter and the final class-aware NMS.

SSD inputs: uint8 models get raw RGB pixels (their input quantization maps 0..255 onto the training
normalisation), int8 models get pixels - 128, float models get ``(p - mean) / std`` with the OD-API
SSD default mean = std = 127.5; images are stretched to the input size, as the OD API's
``fixed_shape_resizer`` does in training. YOLO inputs are letterboxed, pixels / 255. Boxes are
scaled back to the original image.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgedetect.backends import Backend, ModelIO, select_backend
from edgedetect.backends.yolo import metadata_names
from edgedetect.detections import Detections
from edgedetect.errors import LabelsError, ModelError
from edgedetect.installed import find_shipped_file, shipped_file_candidates
from edgedetect.labels import check_label_count, find_labels_for, labels_from_metadata, load_labels
from edgedetect.nms import nms
from edgedetect.runtime import class_count, load_interpreter, quiet_stderr

log = logging.getLogger(__name__)

DEFAULT_MODEL_NAME = "person_ssdlite_int8.tflite"
_UNCHANGED: Any = object()
POSTPROCESS_OP = (
    "TFLite_Detection_PostProcess"  # also recognised without the op table (old runtimes)
)
# Signature outputs of an OD-API TF2 SavedModel, in the alphabetical order TFLite numbers them.
_SAVED_MODEL_OUTPUTS = (
    "detection_anchor_indices",
    "detection_boxes",
    "detection_classes",
    "detection_multiclass_scores",
    "detection_scores",
    "num_detections",
    "raw_detection_boxes",
    "raw_detection_scores",
)


def default_model_path() -> Path:
    """The project's own person model: ``$EDGEDETECT_MODEL``, the checkout's ``models/``, or the
    installed copy under ``<prefix>/share/edgedetect/models`` (:mod:`edgedetect.installed`).

    Returns the first that exists, else the checkout path (so the error message names it).
    """
    env = os.environ.get("EDGEDETECT_MODEL")
    if env:
        return Path(env)
    rel = f"models/{DEFAULT_MODEL_NAME}"
    return find_shipped_file(rel, (rel,)) or shipped_file_candidates(rel, (rel,))[0]


@dataclass(frozen=True)
class RawOutput:
    """The model's output tensors of one ``invoke()`` (copies, safe to keep)."""

    tensors: tuple[np.ndarray, ...]


class Detector:
    """One TFLite SSD detector. Not thread-safe by design: use one per inference thread.

    Args:
        model_path: a ``.tflite`` file; ``None`` means :func:`default_model_path`.
        labels: a label file; ``None`` means the model's own (beside it or in its metadata).
        threshold: minimum score kept.
        classes: label names to keep (``None`` or ``["all"]`` keeps all, an empty list is a
            :class:`LabelsError`); the default keeps people only.
        num_threads: interpreter threads (leave a core free for capture and drawing on a Pi).
        iou_threshold: class-aware NMS threshold applied to every model kind. At the OD-API
            default of 0.6 it is a no-op on models whose op already ran NMS at 0.6.
        max_detections: cap after NMS.
        input_mean, input_std: normalisation of float-input models.
    """

    def __init__(
        self,
        model_path: str | Path | None = None,
        labels: str | Path | None = None,
        threshold: float = 0.5,
        classes: Iterable[str] | None = ("person",),
        num_threads: int | None = 2,
        iou_threshold: float = 0.6,
        max_detections: int = 100,
        input_mean: float = 127.5,
        input_std: float = 127.5,
    ) -> None:
        if not 0.0 <= threshold <= 1.0:
            raise ModelError(f"threshold must be between 0 and 1, got {threshold}")
        if not 0.0 <= iou_threshold <= 1.0:
            raise ModelError(f"iou_threshold must be between 0 and 1, got {iou_threshold}")
        self.model_path = Path(model_path) if model_path is not None else default_model_path()
        self.threshold = float(threshold)
        self.iou_threshold = float(iou_threshold)
        self.max_detections = int(max_detections)
        self.num_threads = num_threads
        self._mean, self._std = float(input_mean), float(input_std)
        self._interp, self.runtime = load_interpreter(self.model_path, num_threads)
        self._lock = threading.Lock()
        self._setup_io()
        self.labels_source = "the labels in the model's metadata"  # set by _load_names
        self.names = self._load_names(labels)
        check_label_count(
            self.names, class_count(self._interp), self.labels_source, self.model_path
        )
        self.class_filter = self._resolve_classes(classes)

    # ----------------------------------------------------------------- model inspection
    def _setup_io(self) -> None:
        interp = self._interp
        inputs = interp.get_input_details()
        if len(inputs) != 1:
            raise ModelError(f"{self.model_path}: expected one image input, found {len(inputs)}")
        inp = inputs[0]
        sig = list(inp.get("shape_signature", inp["shape"]))
        if len(sig) != 4 or sig[3] != 3:
            raise ModelError(
                f"{self.model_path}: input shape {list(inp['shape'])} is not an image [1, H, W, 3]"
            )
        if sig[1] <= 1 or sig[2] <= 1:
            # Dynamic input (whole-SavedModel exports): fix it at the OD-API TF2 default.
            interp.resize_tensor_input(inp["index"], [1, 320, 320, 3], strict=False)
            with quiet_stderr():  # LiteRT's delegate line again
                interp.allocate_tensors()
            inp = interp.get_input_details()[0]
        self._input = inp
        self.input_size: tuple[int, int] = (int(inp["shape"][2]), int(inp["shape"][1]))
        self.input_dtype = np.dtype(inp["dtype"])
        if self.input_dtype not in (np.uint8, np.int8, np.float32):
            raise ModelError(f"{self.model_path}: unsupported input type {self.input_dtype}")
        outputs = interp.get_output_details()
        self._outputs = outputs
        model = ModelIO(
            self.model_path, inp, outputs, _output_names(interp, outputs), _ops_details(interp)
        )
        self.backend: Backend = select_backend(model, self._mean, self._std)
        self.kind = self.backend.kind
        self._order = self.backend.output_order

    def _load_names(self, labels: str | Path | None) -> dict[int, str]:
        if labels is not None and str(labels) != "":
            self.labels_source = str(labels)
            return load_labels(labels)
        found = find_labels_for(self.model_path)
        if found is not None:
            self.labels_source = str(found)
            return load_labels(found)
        meta = labels_from_metadata(self.model_path)
        if meta:
            return meta
        return metadata_names(self.model_path)

    def _resolve_classes(self, classes: Iterable[str] | None) -> set[int] | None:
        if classes is None:
            return None
        wanted = [c.strip() for c in classes if c and c.strip()]
        if not wanted:  # as `--classes ''` and `[model] classes = []`: not silently "all"
            raise LabelsError(
                "empty class list: name the classes to keep (e.g. person), or 'all' for every class"
            )
        if wanted == ["all"]:
            return None
        if not self.names:
            raise LabelsError(
                f"no label file found for {self.model_path}: pass --labels FILE "
                f"(or put {self.model_path.with_suffix('')}.labels.txt beside it), "
                "or use --classes all"
            )
        lookup: dict[str, set[int]] = {}
        for idx, name in self.names.items():
            lookup.setdefault(name.lower(), set()).add(idx)
        ids: set[int] = set()
        for c in wanted:
            if c.lower() not in lookup:
                sample = ", ".join(sorted(set(self.names.values()))[:8])
                raise LabelsError(
                    f"class {c!r} is not in the labels of {self.model_path} (has: {sample}, ...)"
                )
            ids |= lookup[c.lower()]
        return ids

    def configure(
        self, threshold: float | None = None, classes: Iterable[str] | None | object = _UNCHANGED
    ) -> None:
        """Change the score threshold and/or the kept classes of a loaded detector.

        For a config reload: the interpreter stays loaded. Validated like the constructor;
        on an error nothing is changed.
        """
        if threshold is not None and not 0.0 <= threshold <= 1.0:
            raise ModelError(f"threshold must be between 0 and 1, got {threshold}")
        class_filter = (
            self.class_filter if classes is _UNCHANGED else self._resolve_classes(classes)  # type: ignore[arg-type]
        )
        if threshold is not None:
            self.threshold = float(threshold)
        self.class_filter = class_filter

    # ----------------------------------------------------------------- inference
    def preprocess(self, image_bgr: np.ndarray) -> np.ndarray:
        """BGR uint8 image -> the family's model input tensor [1, H, W, 3] (resize, RGB, dtype)."""
        return self.backend.prepare(image_bgr)

    def infer(self, tensor: np.ndarray) -> RawOutput:
        """Run the interpreter on a preprocessed tensor; returns copies of the used outputs."""
        with self._lock:
            self._interp.set_tensor(self._input["index"], tensor)
            self._interp.invoke()
            tensors = tuple(
                _dequantize(self._interp.get_tensor(self._outputs[i]["index"]), self._outputs[i])
                for i in self._order
            )
        return RawOutput(tensors)

    def postprocess(self, raw: RawOutput, image_size: tuple[int, int]) -> Detections:
        """Model outputs -> filtered :class:`Detections` in pixels of an image of ``(w, h)``."""
        c = self.backend.decode(raw.tensors, image_size, self.threshold, self.class_filter)
        idx = nms(c.xyxy, c.score, self.iou_threshold, self.max_detections, c.class_id)
        return Detections(c.xyxy[idx], c.score[idx], c.class_id[idx], self.names)

    def warm_up(self) -> None:
        """One invoke on a blank input: the first one sets up XNNPACK and packs the weights."""
        self.infer(np.zeros((1, *self.input_size[::-1], 3), self.input_dtype))

    def detect(self, image_bgr: np.ndarray) -> Detections:
        """Detect in one BGR image; boxes in that image's pixels."""
        raw = self.infer(self.preprocess(image_bgr))
        return self.postprocess(raw, (image_bgr.shape[1], image_bgr.shape[0]))

    def info(self) -> dict[str, Any]:
        """What was loaded, for logs, reports and ``/healthz``."""
        return {
            "model": str(self.model_path),
            "kind": self.kind,
            "runtime": self.runtime,
            "input_size": list(self.input_size),
            "input_dtype": str(self.input_dtype),
            "num_threads": self.num_threads,
            "labels": len(self.names),
            "classes": None
            if self.class_filter is None
            else sorted({self.names.get(i, str(i)) for i in self.class_filter}),
            "threshold": self.threshold,
        }


def _ops_details(interp: Any) -> list[dict[str, Any]]:
    """The interpreter's op table (a private but long-stable API of every TFLite runtime)."""
    try:
        return list(interp._get_ops_details())
    except Exception:  # noqa: BLE001 - old runtimes lack it; fall back to tensor names
        names = [d["name"] for d in interp.get_output_details()]
        if any(n.startswith(POSTPROCESS_OP) for n in names):
            outs = sorted(interp.get_output_details(), key=lambda d: d["name"])
            return [{"op_name": POSTPROCESS_OP, "outputs": [d["index"] for d in outs]}]
        return []


def _output_names(interp: Any, outputs: list[dict[str, Any]]) -> list[str]:
    """Semantic output names: the SavedModel signature's where the model has one (TF2 exports
    keep ``detection_boxes``, ``anchors``, ... there), else the tensor names.

    A signature-less TF2 OD-API SavedModel conversion numbers its outputs
    ``StatefulPartitionedCall:k`` in the signature's alphabetical order; that is mapped back.
    """
    by_index = {d["index"]: d["name"] for d in outputs}
    try:
        for sig in interp._get_full_signature_list().values():
            for name, index in sig.get("outputs", {}).items():
                if index in by_index:
                    by_index[index] = name
    except Exception:  # noqa: BLE001 - old runtimes have no signature API
        pass
    names = [by_index[d["index"]] for d in outputs]
    if len(names) == 8 and all(n.startswith("StatefulPartitionedCall:") for n in names):
        names = [_SAVED_MODEL_OUTPUTS[int(n.rsplit(":", 1)[1])] for n in names]
    return names


def _dequantize(value: np.ndarray, detail: dict[str, Any]) -> np.ndarray:
    scale, zero = detail.get("quantization", (0.0, 0))
    if value.dtype in (np.uint8, np.int8, np.int16) and scale:
        return (value.astype(np.float32) - zero) * scale
    return np.array(value, copy=True)
