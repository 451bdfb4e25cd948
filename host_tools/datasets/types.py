"""The one in-memory form every dataset reader produces, so metrics and converters see one shape."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgedetect.errors import EdgeDetectError


class DatasetError(EdgeDetectError):
    """A dataset spec, split file or annotation that cannot be read; the message names file:line."""


def _as_boxes(boxes: object) -> np.ndarray:
    arr = np.asarray(boxes, dtype=np.float32)
    if arr.size == 0:
        return np.zeros((0, 4), dtype=np.float32)
    return arr.reshape(-1, 4)


@dataclass(frozen=True)
class Sample:
    """One annotated image.

    ``boxes`` are person boxes, (N, 4) float32 ``x1, y1, x2, y2`` in 0-based pixel coordinates of
    the original image (1-based formats are shifted by -1 when read). ``ignore[i]`` marks a box that
    must neither count as a miss nor turn a detection on it into a false positive (COCO ``iscrowd``,
    VOC ``difficult``). ``objects`` are labelled things that are not people (COCO's other
    categories, a YOLO set's other classes), same form: training cuts close-ups of them as
    person-free examples (``augment.object_crop_prob``); every reader but COCO and YOLO leaves it
    empty.
    """

    image_path: Path
    width: int
    height: int
    boxes: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), np.float32))
    ignore: np.ndarray = field(default_factory=lambda: np.zeros((0,), bool))  # empty: none
    annotation: str = ""  # where the boxes came from, for messages
    objects: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), np.float32))

    def __post_init__(self) -> None:
        boxes = _as_boxes(self.boxes)
        ignore = (
            np.zeros(0, bool)
            if self.ignore is None
            else np.asarray(self.ignore, dtype=bool).reshape(-1)
        )
        if ignore.size == 0 and len(boxes):
            ignore = np.zeros(len(boxes), dtype=bool)
        if len(ignore) != len(boxes):
            raise ValueError(
                f"{len(boxes)} boxes but {len(ignore)} ignore flags for {self.image_path}"
            )
        object.__setattr__(self, "boxes", boxes)
        object.__setattr__(self, "ignore", ignore)
        object.__setattr__(self, "objects", _as_boxes(self.objects))
        object.__setattr__(self, "image_path", Path(self.image_path))

    @property
    def name(self) -> str:
        """The image file name, which split files refer to."""
        return self.image_path.name

    @property
    def num_people(self) -> int:
        """Boxes that count (not ignored)."""
        return int((~self.ignore).sum())


@dataclass
class Dataset:
    """A list of samples read from one spec (``kind:ROOT...``)."""

    spec: str
    kind: str
    samples: list[Sample]

    def __len__(self) -> int:
        return len(self.samples)

    def __iter__(self):
        return iter(self.samples)

    @property
    def num_boxes(self) -> int:
        """Person boxes that count (ignore regions excluded)."""
        return sum(s.num_people for s in self.samples)
