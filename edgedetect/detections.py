"""The ``Detections`` container: one frame's boxes as parallel numpy arrays.

Modelled on supervision's ``Detections`` (parallel arrays, boolean-mask indexing) but kept to what
a Pi pipeline needs, with no dependency beyond numpy: arrays are validated once at construction so
every later stage (NMS, tracker, overlay, JSON) can trust their shapes and dtypes.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Detections:
    """Boxes of one image in that image's pixel coordinates.

    Attributes:
        xyxy: (N, 4) float32, ``x1, y1, x2, y2`` in pixels of the image the detector was given.
        score: (N,) float32 confidence in [0, 1].
        class_id: (N,) int32 0-based model class index (key into ``names``).
        names: class index to label, shared by all detections of a model.
        tracker_id: (N,) int64 track ids once a tracker has run, else ``None``.
    """

    xyxy: np.ndarray
    score: np.ndarray
    class_id: np.ndarray
    names: Mapping[int, str] = field(default_factory=dict)
    tracker_id: np.ndarray | None = None

    def __post_init__(self) -> None:
        xyxy = np.asarray(self.xyxy, dtype=np.float32).reshape(-1, 4)
        n = len(xyxy)
        score = np.asarray(self.score, dtype=np.float32).reshape(-1)
        class_id = np.asarray(self.class_id, dtype=np.int32).reshape(-1)
        if len(score) != n or len(class_id) != n:
            raise ValueError(
                f"Detections arrays differ in length: xyxy {n}, score {len(score)}, "
                f"class_id {len(class_id)}"
            )
        object.__setattr__(self, "xyxy", xyxy)
        object.__setattr__(self, "score", score)
        object.__setattr__(self, "class_id", class_id)
        if self.tracker_id is not None:
            tid = np.asarray(self.tracker_id, dtype=np.int64).reshape(-1)
            if len(tid) != n:
                raise ValueError(f"tracker_id has {len(tid)} entries for {n} detections")
            object.__setattr__(self, "tracker_id", tid)

    @classmethod
    def empty(cls, names: Mapping[int, str] | None = None) -> Detections:
        """No detections (keeps ``names`` so labels still resolve after filtering)."""
        return cls(
            np.zeros((0, 4), np.float32),
            np.zeros(0, np.float32),
            np.zeros(0, np.int32),
            dict(names or {}),
        )

    def __len__(self) -> int:
        return len(self.xyxy)

    def __getitem__(self, index: Any) -> Detections:
        """Select by boolean mask, integer array or slice; always returns ``Detections``."""
        if isinstance(index, (int, np.integer)):
            index = [int(index)]
        return Detections(
            self.xyxy[index],
            self.score[index],
            self.class_id[index],
            self.names,
            None if self.tracker_id is None else self.tracker_id[index],
        )

    def __iter__(self) -> Iterator[tuple[np.ndarray, float, int]]:
        for i in range(len(self)):
            yield self.xyxy[i], float(self.score[i]), int(self.class_id[i])

    @property
    def labels(self) -> list[str]:
        """Label text of each detection (``class <id>`` when the label map lacks it)."""
        return [self.names.get(int(c), f"class {int(c)}") for c in self.class_id]

    @property
    def area(self) -> np.ndarray:
        """Box areas in square pixels."""
        wh = np.clip(self.xyxy[:, 2:] - self.xyxy[:, :2], 0, None)
        return wh[:, 0] * wh[:, 1]

    def filter(self, min_score: float = 0.0, class_ids: set[int] | None = None) -> Detections:
        """Keep detections with ``score >= min_score`` and, if given, a class in ``class_ids``."""
        keep = self.score >= min_score
        if class_ids is not None:
            keep &= np.isin(self.class_id, np.fromiter(class_ids, np.int32, len(class_ids)))
        return self[keep]

    def with_tracker_ids(self, tracker_id: np.ndarray) -> Detections:
        """A copy carrying track ids (set by the service's tracker)."""
        return Detections(self.xyxy, self.score, self.class_id, self.names, tracker_id)

    def to_json(self, decimals: int = 1) -> list[dict[str, Any]]:
        """JSON-ready list: ``[{"label", "score", "box": [x1, y1, x2, y2]}, ...]``."""
        out: list[dict[str, Any]] = []
        for i, label in enumerate(self.labels):
            item: dict[str, Any] = {
                "label": label,
                "score": round(float(self.score[i]), 4),
                "box": [round(float(v), decimals) for v in self.xyxy[i]],
            }
            if self.tracker_id is not None:
                item["track_id"] = int(self.tracker_id[i])
            out.append(item)
        return out
