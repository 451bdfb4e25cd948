"""A whole TF2 OD-API SavedModel converted as is: NMS inside the graph, 1-based classes.

Its outputs keep the signature names (``detection_boxes``, ...) or, without a signature, are
numbered ``StatefulPartitionedCall:k`` in the signature's alphabetical order (mapped back by the
detector when it names the outputs). Its input is dynamic and is fixed by the detector at 320x320,
the OD-API TF2 default.
"""

from __future__ import annotations

from edgedetect.backends import ModelIO
from edgedetect.backends.ssd_postprocess import PostprocessOpBackend

WANTED = ("detection_boxes", "detection_classes", "detection_scores", "num_detections")


def probe(model: ModelIO, mean: float, std: float) -> SavedModelBackend | None:
    if not all(w in model.output_names for w in WANTED):
        return None
    return SavedModelBackend(model, [model.output_names.index(w) for w in WANTED], mean, std)


class SavedModelBackend(PostprocessOpBackend):
    """The postprocess-op layout, with the SavedModel's 1-based class ids (``label_id_offset``)."""

    kind = "odapi_saved_model"
    class_offset = 1
