"""Models ending in the ``TFLite_Detection_PostProcess`` custom op: OD-API TF1/TF2 exports and ours.

The op already decoded and suppressed the boxes. Its four outputs are read in the op's own order
(boxes, classes, scores, count) from the interpreter's op table, because the *output index* order
differs between TF1 and TF2 exports.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from edgedetect.backends import Candidates, ModelIO
from edgedetect.backends._input import StretchedInput
from edgedetect.boxes import to_pixel_xyxy

POSTPROCESS_OP = "TFLite_Detection_PostProcess"


def probe(model: ModelIO, mean: float, std: float) -> PostprocessOpBackend | None:
    ops = [op for op in model.ops if op.get("op_name") == POSTPROCESS_OP]
    if not ops:
        return None
    by_index = {d["index"]: i for i, d in enumerate(model.outputs)}
    return PostprocessOpBackend(
        model, [by_index[t] for t in list(ops[-1]["outputs"])[:4]], mean, std
    )


class PostprocessOpBackend(StretchedInput):
    kind = "postprocess"
    class_offset = 0  # the op emits 0-based class ids

    def __init__(self, model: ModelIO, output_order: list[int], mean: float, std: float) -> None:
        super().__init__(model.input_size, model.input_dtype, mean, std)
        self.output_order = output_order

    def decode(
        self,
        tensors: Sequence[np.ndarray],
        image_size: tuple[int, int],
        threshold: float,
        class_filter: set[int] | None,
    ) -> Candidates:
        b, c, s, n = tensors
        count = int(np.clip(round(float(np.ravel(n)[0])), 0, b.shape[1]))
        boxes = b[0, :count].astype(np.float32)
        classes = np.rint(c[0, :count]).astype(np.int32) - self.class_offset
        scores = s[0, :count].astype(np.float32)
        keep = scores >= threshold
        if class_filter is not None:
            keep &= np.isin(classes, list(class_filter))
        return Candidates(to_pixel_xyxy(boxes[keep], image_size), scores[keep], classes[keep])
