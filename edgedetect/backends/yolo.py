"""YOLO-family exports (Ultralytics ``export(format="tflite")``, YOLOv5/v8/11 heads without NMS).

One output, ``[1, 4+C, N]`` (Ultralytics' default) or ``[1, N, 4+C]``: per candidate a box
``cx, cy, w, h`` and C class scores, with no objectness column. Boxes are normalised to the input
(Ultralytics TFLite exports) or in input pixels; both are recognised. Float, and int8 models with
their quantization parameters (the detector dequantizes outputs; ``prepare`` quantizes the input).

Input: the image letterboxed into the square input (grey 114 padding, as Ultralytics predicts),
pixels / 255. A model whose appended ``metadata.json`` says ``"letterbox": false`` is stretched.
The class names come from that same metadata (``names``) when no label file is given.
"""

from __future__ import annotations

import ast
import json
import zipfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from edgedetect.backends import Candidates, ModelIO
from edgedetect.backends._input import (
    letterbox_geometry,
    letterboxed_rgb,
    stretched_rgb,
    unit_tensor,
)


def probe(model: ModelIO, mean: float, std: float) -> YoloBackend | None:
    shapes = model.shapes()
    if len(shapes) != 1 or len(shapes[0]) != 3 or shapes[0][0] != 1:
        return None
    _, a, b = shapes[0]
    channels, n = (a, b) if a < b else (b, a)
    if channels < 5 or n < 2 * channels:  # 4 box values + at least one class; many more candidates
        return None
    meta = read_metadata(model.path)
    return YoloBackend(model, transposed=a > b, letterbox=bool(meta.get("letterbox", True)))


def read_metadata(path: Path) -> dict:
    """Ultralytics appends a zip with ``metadata.json`` (JSON; a Python literal in old versions)."""
    try:
        if not zipfile.is_zipfile(path):
            return {}
        with zipfile.ZipFile(path) as zf:
            name = next(
                (n for n in zf.namelist() if n.endswith(("metadata.json", "metadata.yaml"))), None
            )
            if name is None:
                return {}
            text = zf.read(name).decode("utf-8", "replace")
    except (OSError, zipfile.BadZipFile):
        return {}
    for parse in (json.loads, ast.literal_eval):
        try:
            data = parse(text)
            return data if isinstance(data, dict) else {}
        except (ValueError, SyntaxError):
            continue
    return {}


def metadata_names(path: Path) -> dict[int, str]:
    """``names`` of the metadata as {index: name} ({} when absent)."""
    names = read_metadata(path).get("names")
    if isinstance(names, dict):
        return {int(k): str(v) for k, v in names.items()}
    if isinstance(names, list):
        return dict(enumerate(str(n) for n in names))
    return {}


class YoloBackend:
    kind = "yolo"
    output_order = [0]

    def __init__(self, model: ModelIO, transposed: bool, letterbox: bool) -> None:
        self.size, self.dtype = model.input_size, model.input_dtype
        self.quantization = tuple(model.input.get("quantization", (0.0, 0)))
        self.transposed, self.letterbox = transposed, letterbox

    def prepare(self, image_bgr: np.ndarray) -> np.ndarray:
        rgb = (
            letterboxed_rgb(image_bgr, self.size)
            if self.letterbox
            else stretched_rgb(image_bgr, self.size)
        )
        return unit_tensor(rgb, self.dtype, self.quantization)

    def decode(
        self,
        tensors: Sequence[np.ndarray],
        image_size: tuple[int, int],
        threshold: float,
        class_filter: set[int] | None,
    ) -> Candidates:
        out = tensors[0][0]
        rows = out if self.transposed else out.T  # -> (N, 4 + C)
        scores_all = rows[:, 4:]
        if class_filter is not None:
            allowed = np.zeros(scores_all.shape[1], bool)
            allowed[[c for c in class_filter if c < len(allowed)]] = True
            scores_all = np.where(allowed[None, :], scores_all, -np.inf)
        cls = np.argmax(scores_all, axis=1)
        score = scores_all[np.arange(len(rows)), cls]
        keep = score >= threshold
        cx, cy, w, h = (rows[keep, i].astype(np.float32) for i in range(4))
        in_w, in_h = self.size
        if len(cx) and max(float(np.abs(cx).max()), float(np.abs(cy).max())) <= 2.0:
            cx, w, cy, h = cx * in_w, w * in_w, cy * in_h, h * in_h  # normalised -> input pixels
        xyxy = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)
        iw, ih = image_size
        if self.letterbox:
            scale, left, top = letterbox_geometry(image_size, self.size)
            xyxy = (xyxy - np.array([left, top, left, top], np.float32)) / scale
        else:
            xyxy = xyxy * np.array([iw / in_w, ih / in_h, iw / in_w, ih / in_h], np.float32)
        xyxy = np.clip(xyxy, 0, [iw, ih, iw, ih]).astype(np.float32)
        return Candidates(xyxy, score[keep].astype(np.float32), cls[keep].astype(np.int32))
