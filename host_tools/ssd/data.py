"""Training batches from a mix of person datasets (``host_tools.datasets``): augment, resize, match.

A run names one or more :class:`DataSource` (a dataset spec, an optional split file, a sampling
weight). Each training example is drawn from a source with probability weight / sum of weights and
uniformly inside it, so a small street set can sit beside a large general-scene set without being
drowned or repeated to death.

Every random choice comes from a numpy generator seeded with (seed, step, slot), so a run with the
same seed sees the same batches and ``--resume`` continues the very same stream. The examples are
made in a ``tf.data`` pipeline (parallel ``map`` over example indices, then batch and prefetch), so
decoding, augmentation and anchor matching overlap the training step.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np
import tensorflow as tf

from edgedetect.errors import ConfigError
from edgedetect.images import read_bgr
from host_tools.datasets import DatasetError
from host_tools.datasets.sources import DataSource
from host_tools.ssd.augment import augment, camera_conditions
from host_tools.ssd.config import SSDConfig
from host_tools.ssd.model import SSDModel
from host_tools.ssd.targets import build_targets


class TrainImages:
    """Decoded images (RGB uint8), normalised person boxes and each image's sampling probability.

    ``ignore_boxes`` are the ignore regions (COCO crowd, VOC difficult, ``#ignore=`` files), kept
    apart so that anchors on them are left out of the loss instead of taught as background.
    ``objects`` are the labelled things that are not people, for ``augment.object_crop_prob``.
    """

    def __init__(self, samples, min_box_px: float = 2.0):
        self.images: list[np.ndarray] = []
        self.boxes: list[np.ndarray] = []
        self.ignore_boxes: list[np.ndarray] = []
        self.objects: list[np.ndarray] = []
        self.names: list[str] = []
        self.source: list[int] = []
        self.source_weights: list[float] = [1.0]
        for s in samples:
            bgr = read_bgr(s.image_path, "training image")
            h, w = bgr.shape[:2]
            b = np.asarray(s.boxes, np.float32).reshape(-1, 4)
            ign = (
                np.asarray(s.ignore, bool).reshape(-1)
                if s.ignore is not None
                else np.zeros(len(b), bool)
            )
            if len(ign) != len(b):
                ign = np.zeros(len(b), bool)
            big = ((b[:, 2] - b[:, 0]) >= min_box_px) & ((b[:, 3] - b[:, 1]) >= min_box_px)
            self.images.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
            self.boxes.append(_normalised(b[~ign & big], w, h))
            self.ignore_boxes.append(_normalised(b[ign & big], w, h))
            self.objects.append(_normalised(np.asarray(s.objects, np.float32).reshape(-1, 4), w, h))
            self.names.append(Path(s.image_path).name)
            self.source.append(0)

    def __len__(self) -> int:
        return len(self.images)

    @classmethod
    def mix(cls, parts: list[tuple[TrainImages, float]]) -> TrainImages:
        """Merge single-source parts; part i is sampled with weight ``w_i`` relative to the rest."""
        out = cls([])
        out.source_weights = [weight for _, weight in parts]
        for i, (part, _) in enumerate(parts):
            out.images += part.images
            out.boxes += part.boxes
            out.ignore_boxes += part.ignore_boxes
            out.objects += part.objects
            out.names += part.names
            out.source += [i] * len(part)
        return out

    def probabilities(self) -> np.ndarray:
        """P(image): its source's share of the weights, split evenly among that source's images."""
        src = np.asarray(self.source)
        counts = np.bincount(src, minlength=len(self.source_weights)).astype(np.float64)
        w = np.asarray(self.source_weights, np.float64)
        if len(w) == 0 or not (np.isfinite(w).all() and (w > 0).all()):
            raise ConfigError(f"sampling weights must be > 0 and finite (got {list(w)})")
        # Relative to the largest: finite weights near the float maximum (1e308) summed to inf,
        # every probability became 0 or nan and the first batch failed inside tf.data.
        p = (w / w.max())[src] / np.maximum(counts[src], 1)
        return p / p.sum()


def _normalised(b: np.ndarray, w: int, h: int) -> np.ndarray:
    """x1, y1, x2, y2 pixels (as in host_tools.datasets and the evaluator) -> normalised
    ymin, xmin, ymax, xmax clipped to the image."""
    norm = np.stack([b[:, 1] / h, b[:, 0] / w, b[:, 3] / h, b[:, 2] / w], axis=1)
    return np.clip(norm, 0, 1).astype(np.float32)


def load_source_images(source: DataSource, limit: int | None = None) -> TrainImages:
    """One source's images (``DataSource.load``); with ``limit``, only its first samples."""
    samples = source.load().samples
    return TrainImages(samples[:limit] if limit else samples)


def load_train_images(
    dataset_spec: str, split_file: str | Path | None, limit: int | None = None
) -> TrainImages:
    """One dataset spec and split file, as the smoke tests name them."""
    return load_source_images(
        DataSource(dataset_spec, str(split_file) if split_file else None), limit
    )


def load_train_mix(sources: list[DataSource], limit: int | None = None) -> TrainImages:
    """Read every source of a mix; ``limit`` caps the images taken from each source."""
    parts = []
    for src in sources:
        part = load_source_images(src, limit)
        if len(part) == 0:
            raise ConfigError(f"dataset {src.spec} (split {src.split_file}) has no images")
        parts.append((part, src.weight))
        print(
            f"data: {len(part):5d} images, weight {src.weight:g}: {src.spec}"
            + (f" (split {src.split_file})" if src.split_file else "")
            + (f" (ignore {src.ignore_file})" if src.ignore_file else "")
            + (
                f" (people under {src.ignore_below:g} of the height ignored)"
                if src.ignore_below
                else ""
            ),
            flush=True,
        )
    mix = TrainImages.mix(parts)
    _refuse_no_people(mix, sources)
    return mix


def _refuse_no_people(mix: TrainImages, sources: list[DataSource]) -> None:
    """A mix without a single person box, refused: it trained, logged a loss and wrote
    ``final.weights.h5``, a detector taught that there are no people (the usual cause: labels
    the reader did not find, e.g. a YOLO set without its ``labels/`` folder). A person-free
    source beside one with people is fine: it gives negatives."""
    if any(len(b) for b in mix.boxes):
        return
    specs = ", ".join(s.spec for s in sources)
    raise DatasetError(
        f"the training data ({specs}) holds no person box in its {len(mix)} images; put the "
        "labels where the reader looks (yolo: ROOT/labels/NAME.txt for ROOT/images/NAME.jpg) or "
        "add a source with people"
    )


class ExampleMaker:
    """Makes training example ``k`` (batch ``k // B``, slot ``k % B``) deterministically."""

    def __init__(
        self,
        data: TrainImages,
        ssd: SSDModel,
        cfg: SSDConfig,
        seed: int,
        augment_images: bool = True,
    ):
        self.data, self.ssd, self.cfg, self.seed = data, ssd, cfg, seed
        self.augment_images = augment_images
        self.p = data.probabilities()
        self.error: BaseException | None = None

    def __call__(self, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Example ``k``; the first exception is kept in ``error`` (``tf.data`` passes on only its
        text, as an ``InvalidArgumentError``) and every later call fails at once."""
        if self.error is not None:
            raise RuntimeError(f"an earlier training example failed: {self.error}")
        try:
            return self._make(k)
        except BaseException as exc:
            self.error = exc
            raise

    def _make(self, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        bs, size = self.cfg.train.batch_size, self.cfg.model.input_size
        step, slot = divmod(int(k), bs)
        i = np.random.default_rng([self.seed, step]).choice(len(self.p), size=bs, p=self.p)[slot]
        rng = np.random.default_rng([self.seed, step, slot])
        img, boxes, ignore = self.data.images[i], self.data.boxes[i], self.data.ignore_boxes[i]
        if self.augment_images:
            # Ignore regions ride along as extra boxes (after the people, so the random draws of
            # an image without any are unchanged) and are split off again by the keep mask.
            n = len(boxes)
            both = np.concatenate([boxes, ignore])
            img, both, keep = augment(img, both, self.cfg.augment, rng, self.data.objects[i])
            n_kept = int(keep[:n].sum())
            boxes, ignore = both[:n_kept], both[n_kept:]
        big = ((boxes[:, 2] - boxes[:, 0]) * size >= 2) & ((boxes[:, 3] - boxes[:, 1]) * size >= 2)
        boxes = boxes[big]
        img = cv2.resize(img, (size, size), interpolation=cv2.INTER_LINEAR)
        # Drawn last and only when asked, so runs without it keep their random draws.
        if self.augment_images and self.cfg.augment.camera_prob > 0:
            if rng.random() < self.cfg.augment.camera_prob:
                img = camera_conditions(img, rng)
        x = img.astype(np.float32) / 127.5 - 1.0
        loc, cls = build_targets(
            self.ssd.anchors,
            self.ssd.anchors_cs,
            boxes,
            np.zeros(len(boxes), np.int32),
            self.cfg.train.matched_iou,
            self.cfg.train.unmatched_iou,
            self.cfg.model.box_scales,
            ignore,
        )
        return x, loc.astype(np.float32), cls.astype(np.int32)


class Batches:
    """An iterator over :func:`train_dataset` that owns its ``tf.data`` iterator and closes it.

    ``next`` raises the pipeline's own exception (an ``EdgeDetectError`` stays one, so the
    tool prints one line and exits 2), not the TensorFlow ``OpError`` that carries only
    its text. ``close`` (or leaving the ``with`` block) destroys the ``tf.data`` iterator at once:
    left to the end of the process (the traceback of an error keeps the frames that hold it), its
    ``map`` workers, still calling into Python for the next examples, deadlocked with the
    interpreter's shutdown and the process hung after printing the error.
    """

    def __init__(self, dataset: tf.data.Dataset, maker: ExampleMaker) -> None:
        self._it: Any = iter(dataset)
        self._maker = maker

    def __iter__(self) -> Batches:
        return self

    def __next__(self) -> Any:
        if self._it is None:
            raise StopIteration
        try:
            return next(self._it)
        except tf.errors.OpError:  # InvalidArgumentError or UnknownError, by the error type
            error = self._maker.error
            if error is None:
                raise
        # Raised here, not in the handler: there TensorFlow's error would be its context, and
        # that error's traceback holds the iterator, kept alive in a cycle through the maker.
        self.close()
        raise error

    def close(self) -> None:
        self._it = None  # the only reference: the iterator and its workers stop here

    def __enter__(self) -> Batches:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def train_batches(
    data: TrainImages,
    ssd: SSDModel,
    cfg: SSDConfig,
    seed: int,
    start_step: int = 0,
    augment_images: bool = True,
    parallel: int | None = None,
) -> Batches:
    """:func:`train_dataset` as :class:`Batches` (close it, or use it in a ``with`` block)."""
    maker = ExampleMaker(data, ssd, cfg, seed, augment_images)
    return Batches(_batched(maker, ssd, cfg, start_step, parallel), maker)


def train_dataset(
    data: TrainImages,
    ssd: SSDModel,
    cfg: SSDConfig,
    seed: int,
    start_step: int = 0,
    augment_images: bool = True,
    parallel: int | None = None,
) -> tf.data.Dataset:
    """Endless training batches from ``start_step`` on.

    Each is (images [B,S,S,3] in [-1,1], loc targets [B,N,4], cls targets [B,N]).

    ``deterministic=True`` keeps the batch order fixed whatever the parallelism, so resume is exact.
    """
    make = ExampleMaker(data, ssd, cfg, seed, augment_images)
    return _batched(make, ssd, cfg, start_step, parallel)


def _batched(
    make: ExampleMaker, ssd: SSDModel, cfg: SSDConfig, start_step: int, parallel: int | None
) -> tf.data.Dataset:
    size, n = cfg.model.input_size, ssd.num_anchors
    bs = cfg.train.batch_size

    def example(k):
        x, loc, cls = tf.numpy_function(
            make, [k], (tf.float32, tf.float32, tf.int32), stateful=False
        )
        x.set_shape((size, size, 3))
        loc.set_shape((n, 4))
        cls.set_shape((n,))
        return x, loc, cls

    ds = tf.data.Dataset.counter(start=start_step * bs)
    ds = ds.map(example, num_parallel_calls=parallel or tf.data.AUTOTUNE, deterministic=True)
    return ds.batch(bs, drop_remainder=True).prefetch(2)
