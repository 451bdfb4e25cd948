"""Raw-output SSDs: box encodings (1, N, 4) + class scores (1, N, C+1, column 0 = background) +
anchors (N, 4), from an output named ``anchors`` or a ``<model>.anchors.npy`` beside the model.

Decoded here with the center-size coder; one candidate per (anchor, class) above the threshold, as
the op's regular NMS does.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from edgedetect.backends import Candidates, ModelIO
from edgedetect.backends._input import StretchedInput
from edgedetect.boxes import DEFAULT_SCALES, decode_center_size, to_pixel_xyxy
from edgedetect.errors import ModelError


def probe(model: ModelIO, mean: float, std: float) -> RawSSDBackend | None:
    shapes = model.shapes()
    anchors_i = next((i for i, n in enumerate(model.output_names) if "anchor" in n.lower()), None)
    boxes_i = next(
        (i for i, s in enumerate(shapes) if len(s) == 3 and s[2] == 4 and i != anchors_i), None
    )
    if boxes_i is None:
        return None
    n = shapes[boxes_i][1]
    scores_i = next(
        (
            i
            for i, s in enumerate(shapes)
            if len(s) == 3 and s[1] == n and i not in (boxes_i, anchors_i) and s[2] != 4
        ),
        None,
    )
    if scores_i is None:
        raise ModelError(f"{model.path}: raw SSD model has no class-score output [1, {n}, C]")
    anchors = None if anchors_i is not None else _sidecar_anchors(model, n)
    order = [boxes_i, scores_i] + ([anchors_i] if anchors_i is not None else [])
    return RawSSDBackend(model, order, anchors, mean, std)


def _sidecar_anchors(model: ModelIO, n: int) -> np.ndarray:
    sidecar = model.path.with_suffix(".anchors.npy")
    if not sidecar.is_file():
        raise ModelError(
            f"{model.path}: raw-output SSD model without anchors: add an 'anchors' output or put "
            f"them in {sidecar} as an (N, 4) ycenter,xcenter,h,w array"
        )
    anchors = np.load(sidecar).astype(np.float32).reshape(-1, 4)
    if len(anchors) != n:
        raise ModelError(f"{sidecar}: {len(anchors)} anchors for {n} boxes")
    return anchors


class RawSSDBackend(StretchedInput):
    kind = "raw"

    def __init__(
        self,
        model: ModelIO,
        output_order: list[int],
        anchors: np.ndarray | None,
        mean: float,
        std: float,
    ) -> None:
        super().__init__(model.input_size, model.input_dtype, mean, std)
        self.output_order, self.anchors = output_order, anchors

    def decode(
        self,
        tensors: Sequence[np.ndarray],
        image_size: tuple[int, int],
        threshold: float,
        class_filter: set[int] | None,
    ) -> Candidates:
        codes, class_scores = tensors[0][0], tensors[1][0]
        anchors = self.anchors if self.anchors is not None else tensors[2].reshape(-1, 4)
        scores_fg = class_scores[:, 1:] if class_scores.shape[1] > 1 else class_scores
        mask = scores_fg >= threshold
        if class_filter is not None:
            allowed = np.zeros(scores_fg.shape[1], bool)
            allowed[[c for c in class_filter if c < len(allowed)]] = True
            mask &= allowed[None, :]
        anchor_i, class_i = np.nonzero(mask)
        boxes = np.clip(
            decode_center_size(codes[anchor_i], anchors[anchor_i], DEFAULT_SCALES), 0.0, 1.0
        )
        return Candidates(
            to_pixel_xyxy(boxes, image_size),
            scores_fg[anchor_i, class_i].astype(np.float32),
            class_i.astype(np.int32),
        )
