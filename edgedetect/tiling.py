"""A tiled second pass for small, far-away people: the whole frame plus a grid of overlapping tiles.

An SSD at 300x300 sees a 1280x720 frame shrunk about 4x: a person 80 px tall becomes 19 px, below
what its smallest anchors (about 0.1 of the input) find well. Running the same model again on
``rows x cols`` overlapping tiles shows such a person 2-3x larger. The whole-frame pass still runs,
because people larger than a tile are found only there.

Merging: a tile detection that touches a tile edge inside the frame is a person cut by the tile;
it is dropped (the overlap puts a small person wholly inside a neighbouring tile, and a large one is
the whole-frame pass's). So is a tile detection lying mostly (80 %) inside a whole-frame box of its
class that scores at least as high: a part of a person already found (legs seen in a lower tile).
The rest are merged with the whole-frame detections by class-aware NMS, the same greedy NMS every
model uses, so a person seen in both keeps its best-scored box.

The cost is ``1 + rows * cols`` inferences per frame (5x for 2x2): on a Pi 4 it turns ~15 FPS into
~3, so it is off by default and meant for fixed cameras watching far-away spaces (a drive, a yard).
``TiledDetector`` keeps ``Detector``'s preprocess / infer / postprocess split, so the pipeline runs
it unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from edgedetect.detections import Detections
from edgedetect.detector import Detector, RawOutput
from edgedetect.errors import ConfigError
from edgedetect.nms import nms

EDGE_FRACTION = (
    0.02  # a box this close to an inner tile edge (fraction of the tile side) is cut by it
)
INSIDE_FRACTION = 0.8  # a tile box this much inside a whole-frame box is part of that person


def parse_tiles(text: str) -> tuple[int, int]:
    """``"off"``/``""`` -> (1, 1); ``"2x2"`` -> (2, 2) (rows x cols, each 1..4)."""
    if text.strip().lower() in ("", "off", "none", "1x1"):
        return 1, 1
    rows, sep, cols = text.lower().partition("x")
    if sep and rows.isdigit() and cols.isdigit() and 1 <= int(rows) <= 4 and 1 <= int(cols) <= 4:
        return int(rows), int(cols)
    raise ConfigError(f"tiles {text!r}: use ROWSxCOLS with each 1..4 (e.g. '2x2'), or 'off'")


def with_tiles(detector: Detector, tiles: str) -> Detector | TiledDetector:
    """``detector`` as it is for ``"off"``/``"1x1"``, else wrapped in a :class:`TiledDetector`."""
    rows, cols = parse_tiles(tiles)
    return detector if rows * cols == 1 else TiledDetector(detector, rows, cols)


def _cut_by_tile(
    xyxy: np.ndarray, rect: tuple[int, int, int, int], size: tuple[int, int]
) -> np.ndarray:
    """Boxes touching an edge of ``rect`` that lies inside the frame (the tile cut the person)."""
    x1, y1, x2, y2 = rect
    w, h = size
    margin = EDGE_FRACTION * np.array([x2 - x1, y2 - y1, x2 - x1, y2 - y1], np.float32)
    cut = np.zeros(len(xyxy), bool)
    for axis, edge, inner in ((0, x1, x1 > 0), (1, y1, y1 > 0), (2, x2, x2 < w), (3, y2, y2 < h)):
        if inner:
            cut |= np.abs(xyxy[:, axis] - edge) <= max(2.0, float(margin[axis]))
    return cut


def _inside(
    xyxy: np.ndarray, score: np.ndarray, class_id: np.ndarray, whole: Detections
) -> np.ndarray:
    """Boxes mostly inside a surer whole-frame box of their class (a part of a person found)."""
    if len(xyxy) == 0 or len(whole) == 0:
        return np.zeros(len(xyxy), bool)
    lt = np.maximum(xyxy[:, None, :2], whole.xyxy[None, :, :2])
    rb = np.minimum(xyxy[:, None, 2:], whole.xyxy[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=2)
    area = np.prod(np.clip(xyxy[:, 2:] - xyxy[:, :2], 1e-6, None), axis=1)
    same = (class_id[:, None] == whole.class_id[None, :]) & (whole.score[None, :] >= score[:, None])
    return ((inter / area[:, None] >= INSIDE_FRACTION) & same).any(axis=1)


def lores_size(detector: object) -> tuple[int, int] | None:
    """The camera's second, detector-sized stream for ``detector``: its input size, or none for a
    tiled detector, which cuts the full-resolution main stream."""
    if getattr(detector, "needs_full_frame", False):
        return None
    size = getattr(detector, "input_size", None)
    return (int(size[0]), int(size[1])) if size else (320, 240)


def tile_rects(
    width: int, height: int, rows: int, cols: int, overlap: float
) -> list[tuple[int, int, int, int]]:
    """``rows x cols`` tiles (x1, y1, x2, y2) covering the frame, overlapping by ``overlap``."""

    def spans(size: int, n: int) -> list[tuple[int, int]]:
        if n == 1:
            return [(0, size)]
        length = size / (n - (n - 1) * overlap)
        step = length * (1 - overlap)
        starts = [min(size - 1, round(i * step)) for i in range(n)]
        # at least one pixel each: a frame a few pixels wide would otherwise cut empty tiles
        return [(a, max(a + 1, min(size, round(i * step + length)))) for i, a in enumerate(starts)]

    return [(x1, y1, x2, y2) for y1, y2 in spans(height, rows) for x1, x2 in spans(width, cols)]


@dataclass(frozen=True)
class TiledInput:
    """The whole-frame tensor and one per tile, with the tiles' rectangles in frame pixels."""

    tensors: tuple[np.ndarray, ...]
    rects: tuple[tuple[int, int, int, int], ...]


class TiledDetector:
    """A :class:`Detector` run on the whole frame and on ``rows x cols`` overlapping tiles."""

    needs_full_frame = True  # tiles cut the full-resolution image, not a detector-sized copy

    def __init__(
        self, detector: Detector, rows: int = 2, cols: int = 2, overlap: float = 0.25
    ) -> None:
        if not 0.0 <= overlap < 0.5:
            raise ConfigError(f"tile overlap must be in [0, 0.5), got {overlap}")
        self.detector, self.rows, self.cols, self.overlap = detector, rows, cols, overlap

    def __getattr__(self, name: str) -> Any:  # names, threshold, input_size, model_path, ...
        return getattr(self.detector, name)

    def preprocess(self, image_bgr: np.ndarray) -> TiledInput:
        h, w = image_bgr.shape[:2]
        rects = tile_rects(w, h, self.rows, self.cols, self.overlap)
        tensors = [self.detector.preprocess(image_bgr)]
        tensors += [self.detector.preprocess(image_bgr[y1:y2, x1:x2]) for x1, y1, x2, y2 in rects]
        return TiledInput(tuple(tensors), tuple(rects))

    def infer(self, tiled: TiledInput) -> tuple[TiledInput, list[RawOutput]]:
        return tiled, [self.detector.infer(t) for t in tiled.tensors]

    def postprocess(
        self, inferred: tuple[TiledInput, list[RawOutput]], image_size: tuple[int, int]
    ) -> Detections:
        tiled, raws = inferred
        w, h = image_size
        whole = self.detector.postprocess(raws[0], image_size)
        parts = [whole]
        for (x1, y1, x2, y2), raw in zip(tiled.rects, raws[1:], strict=True):
            d = self.detector.postprocess(raw, (x2 - x1, y2 - y1))
            xyxy = d.xyxy + np.array([x1, y1, x1, y1], np.float32)
            drop = _cut_by_tile(xyxy, (x1, y1, x2, y2), (w, h)) | _inside(
                xyxy, d.score, d.class_id, whole
            )
            parts.append(Detections(xyxy[~drop], d.score[~drop], d.class_id[~drop], d.names))
        xyxy = np.concatenate([p.xyxy for p in parts])
        score = np.concatenate([p.score for p in parts])
        cls = np.concatenate([p.class_id for p in parts])
        keep = nms(xyxy, score, self.detector.iou_threshold, self.detector.max_detections, cls)
        return Detections(xyxy[keep], score[keep], cls[keep], self.detector.names)

    def detect(self, image_bgr: np.ndarray) -> Detections:
        raw = self.infer(self.preprocess(image_bgr))
        return self.postprocess(raw, (image_bgr.shape[1], image_bgr.shape[0]))

    def info(self) -> dict[str, Any]:
        return {
            **self.detector.info(),
            "tiles": f"{self.rows}x{self.cols}",
            "tile_overlap": self.overlap,
        }
