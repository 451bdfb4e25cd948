"""Training batches from a person dataset (``host_tools.datasets``): augment, resize, normalise, match.

A seeded numpy generator drives every random choice, so a run with the same seed sees the same batches.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from edgedetect.images import read_bgr
from host_tools.ssd.augment import augment
from host_tools.ssd.config import SSDConfig
from host_tools.ssd.model import SSDModel
from host_tools.ssd.targets import build_targets


class TrainImages:
    """Decoded images (RGB uint8) and normalised person boxes of the training samples, kept in memory."""

    def __init__(self, samples, min_box_px: float = 2.0):
        self.images: list[np.ndarray] = []
        self.boxes: list[np.ndarray] = []
        self.names: list[str] = []
        for s in samples:
            bgr = read_bgr(s.image_path, "training image")
            h, w = bgr.shape[:2]
            b = np.asarray(s.boxes, np.float32).reshape(-1, 4)
            ign = np.asarray(s.ignore, bool).reshape(-1) if s.ignore is not None else np.zeros(len(b), bool)
            b = b[~ign] if len(ign) == len(b) else b
            b = b[((b[:, 2] - b[:, 0]) >= min_box_px) & ((b[:, 3] - b[:, 1]) >= min_box_px)]
            # x1, y1, x2, y2 pixels (as host_tools.datasets and the evaluator use them) -> normalised
            norm = np.stack([b[:, 1] / h, b[:, 0] / w, b[:, 3] / h, b[:, 2] / w], axis=1)
            self.images.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
            self.boxes.append(np.clip(norm, 0, 1).astype(np.float32))
            self.names.append(Path(s.image_path).name)

    def __len__(self) -> int:
        return len(self.images)


def load_train_images(dataset_spec: str, split_file: str | Path | None, limit: int | None = None) -> TrainImages:
    """Read a dataset spec (``host_tools.datasets``), optionally only its first ``limit`` samples."""
    from host_tools.datasets import load_dataset

    ds = load_dataset(dataset_spec, split_file)
    return TrainImages(ds.samples[:limit] if limit else ds.samples)


def batches(data: TrainImages, ssd: SSDModel, cfg: SSDConfig, seed: int, start_step: int = 0,
            augment_images: bool = True) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Endless (images [B,S,S,3] in [-1,1], loc targets [B,N,4], cls targets [B,N]) batches.

    Each step's images and augmentations come from a generator seeded with (seed, step), so a run is
    reproducible and a resumed run continues the very same stream from ``start_step``.
    """
    size = cfg.model.input_size
    bs = cfg.train.batch_size
    step = start_step
    while True:
        rng = np.random.default_rng([seed, step])
        idx = rng.choice(len(data), size=bs, replace=len(data) < bs)
        xs = np.empty((bs, size, size, 3), np.float32)
        locs = np.empty((bs, ssd.num_anchors, 4), np.float32)
        clss = np.empty((bs, ssd.num_anchors), np.int32)
        for j, i in enumerate(idx):
            img, boxes = data.images[i], data.boxes[i]
            if augment_images:
                img, boxes, _ = augment(img, boxes, cfg.augment, rng)
            big = ((boxes[:, 2] - boxes[:, 0]) * size >= 2) & ((boxes[:, 3] - boxes[:, 1]) * size >= 2)
            boxes = boxes[big]
            xs[j] = cv2.resize(img, (size, size), interpolation=cv2.INTER_LINEAR).astype(np.float32) / 127.5 - 1.0
            locs[j], clss[j] = build_targets(ssd.anchors, ssd.anchors_cs, boxes, np.zeros(len(boxes), np.int32),
                                             cfg.train.matched_iou, cfg.train.unmatched_iou, cfg.model.box_scales)
        step += 1
        yield xs, locs, clss
