"""Ignore regions from a JSON file (``host_tools.ignore_regions`` writes it), added to a dataset.

Some datasets leave people unboxed; a confident reference detection there is better left out of the
loss (and out of TP/FP counting) than taught as background. The file maps an image path relative
to the dataset root to ``[[x1, y1, x2, y2], ...]`` pixel boxes of the original image.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np

from host_tools.datasets.types import DatasetError, Sample


def dataset_root(kind: str, paths: list[Path]) -> Path:
    """The folder image keys are relative to: the images folder of a COCO spec, else the root."""
    return paths[1] if kind == "coco" else paths[0]


def image_key(image_path: Path, root: Path) -> str:
    """The key of an image in an ignore file: its path under ``root`` with ``/``, else its name."""
    try:
        return Path(image_path).resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return Path(image_path).name


def read_ignore_file(path: Path) -> dict[str, np.ndarray]:
    """Image key -> (K, 4) float32 boxes; a malformed file is a :class:`DatasetError` naming it."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise DatasetError(f"cannot read ignore file {path}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise DatasetError(f"ignore file {path} is not JSON: {exc}") from None
    images = data.get("images") if isinstance(data, dict) else None
    if not isinstance(images, dict):
        raise DatasetError(f"ignore file {path}: no 'images' mapping of image path -> boxes")
    out = {}
    for key, boxes in images.items():
        try:
            arr: np.ndarray | None = np.asarray(boxes, np.float32)
        except (TypeError, ValueError):  # a word, a mapping, boxes of different lengths
            arr = None
        if arr is None or (arr.size and (arr.ndim != 2 or arr.shape[1] != 4)):
            raise DatasetError(f"ignore file {path}: {key!r} is not a list of [x1, y1, x2, y2]")
        arr = arr.reshape(-1, 4)
        for j, (x1, y1, x2, y2) in enumerate(arr.tolist()):
            if not np.isfinite(arr[j]).all() or x2 <= x1 or y2 <= y1:
                raise DatasetError(
                    f"ignore file {path}: {key!r} box {j + 1} [{x1:g}, {y1:g}, {x2:g}, {y2:g}] "
                    "is empty or inverted (need x1 < x2 and y1 < y2, pixels)"
                )
        out[str(key)] = arr
    return out


def add_ignore_regions(samples: list[Sample], root: Path, path: Path) -> list[Sample]:
    """The samples with the file's boxes appended as ``ignore=True``; keys must name images."""
    regions = read_ignore_file(path)
    keys = {image_key(s.image_path, root): i for i, s in enumerate(samples)}
    unknown = sorted(set(regions) - set(keys))
    if unknown:
        raise DatasetError(
            f"ignore file {path}: {len(unknown)} image(s) not in the dataset under {root}, "
            f"e.g. {unknown[0]!r}; was it made for another dataset?"
        )
    out = list(samples)
    for key, boxes in regions.items():
        if not len(boxes):
            continue
        i = keys[key]
        s = samples[i]
        out[i] = replace(
            s,
            boxes=np.concatenate([s.boxes, boxes]),
            ignore=np.concatenate([np.asarray(s.ignore, bool), np.ones(len(boxes), bool)]),
            annotation=f"{s.annotation} + {path}",
        )
    return out


def ignore_short_people(samples: list[Sample], min_height: float) -> list[Sample]:
    """Boxes shorter than ``min_height`` x the image height become ignore regions, in images that
    keep a taller person.

    Why: the smallest anchor of the 300 px SSDs is 0.1 of the image, so a 20 px crowd figure can
    only be force-matched to an anchor that fits it badly; taught as a positive it pulls the box
    head, taught as background it punishes a correct detection. Ignored, it costs neither. An image
    whose people are all that short keeps them, so it is not turned into a pure background image.
    """
    out = []
    for s in samples:
        heights = (s.boxes[:, 3] - s.boxes[:, 1]) / max(s.height, 1)
        counted = ~np.asarray(s.ignore, bool)
        short = counted & (heights < min_height)
        if not short.any() or not (counted & ~short).any():
            out.append(s)
            continue
        out.append(
            replace(
                s,
                ignore=np.asarray(s.ignore, bool) | short,
                annotation=f"{s.annotation} (people under {min_height:g} of the height ignored)",
            )
        )
    return out
