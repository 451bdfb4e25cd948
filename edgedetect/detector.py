"""Run any SSD-family TFLite detector and return :class:`Detections` in image pixels.

Three kinds of model are recognised from the model itself, never from its file name:

``postprocess``
    ends in the ``TFLite_Detection_PostProcess`` custom op (OD-API TF1 and TF2 exports, and this
    project's own models). Its four outputs are read in the op's own order (boxes, classes,
    scores, count) from the interpreter's op table, because the *output index* order differs
    between TF1 and TF2 exports.
``raw``
    box encodings (1, N, 4) + class scores (1, N, C+1, column 0 = background) + anchors (N, 4)
    (an output named ``anchors`` or a ``<model>.anchors.npy`` beside it). Decoded here with the
    center-size coder and our NMS.
``odapi_saved_model``
    a whole TF2 OD-API SavedModel converted as is (in-graph NMS; outputs named
    ``StatefulPartitionedCall:k`` in the signature's alphabetical order; 1-based classes).

Inputs: uint8 models get raw RGB pixels (their input quantization maps 0..255 onto the training
normalisation), int8 models get pixels - 128, float models get ``(p - mean) / std`` with the OD-API
SSD default mean = std = 127.5. Images are stretched to the input size, as the OD API's
``fixed_shape_resizer`` does in training, and boxes are scaled back to the original image.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from edgedetect.boxes import DEFAULT_SCALES, decode_center_size, to_pixel_xyxy
from edgedetect.detections import Detections
from edgedetect.errors import LabelsError, ModelError
from edgedetect.labels import find_labels_for, labels_from_metadata, load_labels
from edgedetect.nms import nms
from edgedetect.runtime import load_interpreter

log = logging.getLogger(__name__)

DEFAULT_MODEL_NAME = "person_ssdlite_int8.tflite"
_UNCHANGED: Any = object()
POSTPROCESS_OP = "TFLite_Detection_PostProcess"
# Signature outputs of an OD-API TF2 SavedModel, in the alphabetical order TFLite numbers them.
_SAVED_MODEL_OUTPUTS = (
    "detection_anchor_indices", "detection_boxes", "detection_classes",
    "detection_multiclass_scores", "detection_scores", "num_detections",
    "raw_detection_boxes", "raw_detection_scores",
)


def default_model_path() -> Path:
    """The project's own person model: ``$EDGEDETECT_MODEL``, the checkout's ``models/``, or the
    installed copy under ``<prefix>/share/edgedetect/models`` or ``/usr/share/edgedetect/models``.

    Returns the first that exists, else the checkout path (so the error message names it).
    """
    env = os.environ.get("EDGEDETECT_MODEL")
    if env:
        return Path(env)
    candidates = [
        Path(__file__).resolve().parent.parent / "models" / DEFAULT_MODEL_NAME,
        Path(sys.prefix) / "share" / "edgedetect" / "models" / DEFAULT_MODEL_NAME,
        Path("/usr/share/edgedetect/models") / DEFAULT_MODEL_NAME,
    ]
    return next((c for c in candidates if c.is_file()), candidates[0])


@dataclass(frozen=True)
class RawOutput:
    """The model's output tensors of one ``invoke()`` (copies, safe to keep)."""

    tensors: tuple[np.ndarray, ...]
    infer_ms: float


class Detector:
    """One TFLite SSD detector. Not thread-safe by design: use one per inference thread.

    Args:
        model_path: a ``.tflite`` file; ``None`` means :func:`default_model_path`.
        labels: a label file; ``None`` means the model's own (beside it or in its metadata).
        threshold: minimum score kept.
        classes: label names to keep (``None`` keeps all); the default keeps people only.
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
        self.names = self._load_names(labels)
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
            interp.allocate_tensors()
            inp = interp.get_input_details()[0]
        self._input = inp
        self.input_size: tuple[int, int] = (int(inp["shape"][2]), int(inp["shape"][1]))
        self.input_dtype = np.dtype(inp["dtype"])
        if self.input_dtype not in (np.uint8, np.int8, np.float32):
            raise ModelError(f"{self.model_path}: unsupported input type {self.input_dtype}")
        outputs = interp.get_output_details()
        self._outputs = outputs
        ops = _ops_details(interp)
        pp = [op for op in ops if op.get("op_name") == POSTPROCESS_OP]
        if pp:
            self.kind = "postprocess"
            by_index = {d["index"]: i for i, d in enumerate(outputs)}
            self._order = [by_index[t] for t in list(pp[-1]["outputs"])[:4]]
            return
        names = _output_names(interp, outputs)
        wanted = ("detection_boxes", "detection_classes", "detection_scores", "num_detections")
        if all(w in names for w in wanted):
            self.kind = "odapi_saved_model"
            self._order = [names.index(w) for w in wanted]
            return
        self.kind = "raw"
        self._setup_raw(outputs)

    def _setup_raw(self, outputs: list[dict[str, Any]]) -> None:
        shapes = [tuple(int(s) for s in d["shape"]) for d in outputs]
        names = _output_names(self._interp, outputs)
        anchors_i = next((i for i, n in enumerate(names) if "anchor" in n.lower()), None)
        boxes_i = next(
            (i for i, s in enumerate(shapes) if len(s) == 3 and s[2] == 4 and i != anchors_i), None
        )
        if boxes_i is None:
            raise ModelError(
                f"{self.model_path}: not an SSD detector: no {POSTPROCESS_OP} op and no box "
                f"output of shape [1, N, 4] (outputs: {shapes})"
            )
        n = shapes[boxes_i][1]
        scores_i = next(
            (i for i, s in enumerate(shapes)
             if len(s) == 3 and s[1] == n and i not in (boxes_i, anchors_i) and s[2] != 4),
            None,
        )
        if scores_i is None:
            raise ModelError(f"{self.model_path}: raw SSD model has no class-score output [1, {n}, C]")
        if anchors_i is not None:
            self._anchors: np.ndarray | None = None  # read from the output after each invoke
        else:
            sidecar = self.model_path.with_suffix(".anchors.npy")
            if not sidecar.is_file():
                raise ModelError(
                    f"{self.model_path}: raw-output SSD model without anchors: add an 'anchors' "
                    f"output or put them in {sidecar} as an (N, 4) ycenter,xcenter,h,w array"
                )
            self._anchors = np.load(sidecar).astype(np.float32).reshape(-1, 4)
            if len(self._anchors) != n:
                raise ModelError(f"{sidecar}: {len(self._anchors)} anchors for {n} boxes")
        self._order = [boxes_i, scores_i] + ([anchors_i] if anchors_i is not None else [])

    def _load_names(self, labels: str | Path | None) -> dict[int, str]:
        if labels is not None and str(labels) != "":
            return load_labels(labels)
        found = find_labels_for(self.model_path)
        if found is not None:
            return load_labels(found)
        meta = labels_from_metadata(self.model_path)
        if meta:
            return meta
        return {}

    def _resolve_classes(self, classes: Iterable[str] | None) -> set[int] | None:
        if classes is None:
            return None
        wanted = [c.strip() for c in classes if c and c.strip()]
        if not wanted or wanted == ["all"]:
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

    def configure(self, threshold: float | None = None,
                  classes: Iterable[str] | None | object = _UNCHANGED) -> None:
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
        """BGR uint8 image -> model input tensor [1, H, W, 3] (resize, RGB, dtype)."""
        if image_bgr is None or image_bgr.ndim != 3 or image_bgr.shape[2] not in (3, 4):
            shape = None if image_bgr is None else image_bgr.shape
            raise ValueError(f"expected a BGR image of shape (H, W, 3), got {shape}")
        w, h = self.input_size
        if image_bgr.shape[2] == 4:
            image_bgr = image_bgr[:, :, :3]
        if image_bgr.shape[1] != w or image_bgr.shape[0] != h:
            image_bgr = cv2.resize(image_bgr, (w, h), interpolation=cv2.INTER_LINEAR)
        rgb = cv2.cvtColor(image_bgr, cv2.COLOR_BGR2RGB)
        if self.input_dtype == np.uint8:
            tensor = rgb
        elif self.input_dtype == np.int8:
            tensor = (rgb.astype(np.int16) - 128).astype(np.int8)
        else:
            tensor = (rgb.astype(np.float32) - self._mean) / self._std
        return tensor[np.newaxis]

    def infer(self, tensor: np.ndarray) -> RawOutput:
        """Run the interpreter on a preprocessed tensor; returns copies of the used outputs."""
        with self._lock:
            t0 = time.perf_counter()
            self._interp.set_tensor(self._input["index"], tensor)
            self._interp.invoke()
            infer_ms = (time.perf_counter() - t0) * 1000.0
            tensors = tuple(
                _dequantize(self._interp.get_tensor(self._outputs[i]["index"]), self._outputs[i])
                for i in self._order
            )
        return RawOutput(tensors, infer_ms)

    def postprocess(self, raw: RawOutput, image_size: tuple[int, int]) -> Detections:
        """Model outputs -> filtered :class:`Detections` in pixels of an image of ``(w, h)``."""
        if self.kind == "raw":
            boxes, scores, classes = self._decode_raw(raw.tensors)
        else:
            b, c, s, n = raw.tensors
            count = int(np.clip(round(float(np.ravel(n)[0])), 0, b.shape[1]))
            boxes = b[0, :count].astype(np.float32)
            classes = np.rint(c[0, :count]).astype(np.int32)
            scores = s[0, :count].astype(np.float32)
            if self.kind == "odapi_saved_model":
                classes -= 1  # label_id_offset: SavedModel exports emit 1-based ids
        keep = scores >= self.threshold
        if self.class_filter is not None:
            keep &= np.isin(classes, list(self.class_filter))
        boxes, scores, classes = boxes[keep], scores[keep], classes[keep]
        xyxy = to_pixel_xyxy(boxes, image_size)
        idx = nms(xyxy, scores, self.iou_threshold, self.max_detections, classes)
        return Detections(xyxy[idx], scores[idx], classes[idx], self.names)

    def _decode_raw(self, tensors: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        codes, class_scores = tensors[0][0], tensors[1][0]
        anchors = self._anchors if self._anchors is not None else tensors[2].reshape(-1, 4)
        scores_fg = class_scores[:, 1:] if class_scores.shape[1] > 1 else class_scores
        # One candidate per (anchor, class) above threshold, as the op's regular NMS does.
        mask = scores_fg >= self.threshold
        if self.class_filter is not None:
            allowed = np.zeros(scores_fg.shape[1], bool)
            allowed[[c for c in self.class_filter if c < len(allowed)]] = True
            mask &= allowed[None, :]
        anchor_i, class_i = np.nonzero(mask)
        boxes = decode_center_size(codes[anchor_i], anchors[anchor_i], DEFAULT_SCALES)
        boxes = np.clip(boxes, 0.0, 1.0)
        return boxes, scores_fg[anchor_i, class_i].astype(np.float32), class_i.astype(np.int32)

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
            "classes": None if self.class_filter is None else sorted(
                {self.names.get(i, str(i)) for i in self.class_filter}),
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
