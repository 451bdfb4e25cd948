"""PASCAL Annotation Version 1.00 text files (INRIA Person, Penn-Fudan).

Both datasets use this 2005-era format, with one bounding-box line per object::

    Image filename : "..."
    Image size (X x Y x C) : W x H x C
    Bounding box for object N "LABEL" (Xmin, Ymin) - (Xmax, Ymax) : (x1, y1) - (x2, y2)

The files state their origin (``# Top left pixel co-ordinates : (0, 0)`` for INRIA, ``(1, 1)``
for Penn-Fudan); that statement wins over the per-dataset default. No library reads this format,
so it is parsed here with regular expressions.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from host_tools.datasets._paths import read_text_lines, resolve_image
from host_tools.datasets.types import DatasetError, Sample

_FILENAME = re.compile(r'^\s*Image filename\s*:\s*"(?P<name>[^"]+)"\s*$', re.I)
_SIZE = re.compile(
    r"^\s*Image size\s*\(X x Y x C\)\s*:\s*(?P<w>\d+)\s*x\s*(?P<h>\d+)(\s*x\s*(?P<c>\d+))?\s*$",
    re.I,
)
_COUNT = re.compile(r"^\s*Objects with ground truth\s*:\s*(?P<n>\d+)", re.I)
_ORIGIN = re.compile(
    r"^\s*#\s*Top left pixel co-?ordinates\s*:\s*\(\s*(?P<x>\d+)\s*,\s*(?P<y>\d+)\s*\)", re.I
)
_BOX = re.compile(
    r'^\s*Bounding box for object\s+(?P<idx>\d+)\s+"(?P<label>[^"]*)"\s*'
    r"\(Xmin, Ymin\)\s*-\s*\(Xmax, Ymax\)\s*:\s*"
    r"\(\s*(?P<x1>-?\d+(\.\d+)?)\s*,\s*(?P<y1>-?\d+(\.\d+)?)\s*\)\s*-\s*"
    r"\(\s*(?P<x2>-?\d+(\.\d+)?)\s*,\s*(?P<y2>-?\d+(\.\d+)?)\s*\)\s*$",
    re.I,
)

# What each known line should look like, for the error that names a malformed one.
_FILENAME_FORM = 'image filename line; expected Image filename : "DIR/NAME.png"'
_SIZE_FORM = "image size line; expected Image size (X x Y x C) : W x H x 3"
_COUNT_FORM = "object count line; expected Objects with ground truth : N { ... }"
_BOX_FORM = (
    'bounding box line; expected \'Bounding box for object N "LABEL" '
    "(Xmin, Ymin) - (Xmax, Ymax) : (x1, y1) - (x2, y2)'"
)


def is_person_label(label: str) -> bool:
    """Whether ``label`` means a person (``PASperson``, ``PASpersonWalking``, ``person``, ...)."""
    low = label.strip().lower()
    return low.startswith("pasperson") or low in {"person", "pedestrian", "people", "persons"}


@dataclass
class _Parsed:
    """What the lines of one annotation file said so far."""

    origin: int
    ref: str | None = None
    ref_line: int = 0
    size: tuple[int, int] | None = None
    count: int | None = None
    count_line: int = 0
    boxes: list[tuple[float, float, float, float, bool, int]] = field(default_factory=list)


def _parse_line(p: _Parsed, path: Path, lineno: int, line: str) -> None:
    """Fold one line into ``p``; a malformed known line is a :class:`DatasetError` at file:line."""
    key = line.lstrip().lower()
    if m := _ORIGIN.match(line):
        if m["x"] != m["y"] or m["x"] not in ("0", "1"):
            raise DatasetError(
                f"{path}:{lineno}: unsupported pixel origin ({m['x']}, {m['y']}); "
                "expected (0, 0) or (1, 1)"
            )
        p.origin = int(m["x"])
    elif not key or key.startswith("#"):
        return
    elif key.startswith("image filename"):
        m = _must(_FILENAME, line, path, lineno, _FILENAME_FORM)
        p.ref, p.ref_line = m["name"], lineno
    elif key.startswith("image size"):
        m = _must(_SIZE, line, path, lineno, _SIZE_FORM)
        p.size = (int(m["w"]), int(m["h"]))
    elif key.startswith("objects with ground truth"):
        m = _must(_COUNT, line, path, lineno, _COUNT_FORM)
        p.count, p.count_line = int(m["n"]), lineno
    elif key.startswith("bounding box"):
        p.boxes.append(_parse_box(path, lineno, line))


def _parse_box(path: Path, lineno: int, line: str) -> tuple[float, float, float, float, bool, int]:
    """A bounding box line: its corners as written, whether it is a person, and the line number
    (for the errors the whole file can only raise later)."""
    m = _must(_BOX, line, path, lineno, _BOX_FORM)
    x1, y1, x2, y2 = (float(m[k]) for k in ("x1", "y1", "x2", "y2"))
    if x2 < x1 or y2 < y1:
        raise DatasetError(
            f"{path}:{lineno}: box has Xmax < Xmin or Ymax < Ymin: "
            f"({x1:g}, {y1:g}) - ({x2:g}, {y2:g})"
        )
    return (x1, y1, x2, y2, is_person_label(m["label"]), lineno)


def _must(pattern: re.Pattern[str], line: str, path: Path, lineno: int, what: str) -> re.Match[str]:
    m = pattern.match(line)
    if not m:
        raise DatasetError(f"{path}:{lineno}: malformed {what}")
    return m


def read_pascal_annotation(
    path: Path, root: Path, default_origin: int, image_dirs: list[Path]
) -> Sample:
    """Parse one annotation file into a :class:`Sample` (person boxes only, 0-based pixels)."""
    p = _Parsed(default_origin)
    for lineno, line in enumerate(read_text_lines(path), start=1):
        _parse_line(p, path, lineno, line)
    if p.ref is None:
        raise DatasetError(
            f"{path}: no 'Image filename : \"...\"' line; is this a PASCAL Annotation v1.00 file?"
        )
    if p.size is None:
        raise DatasetError(f"{path}: no 'Image size (X x Y x C) : W x H x C' line")
    if p.count is not None and p.count != len(p.boxes):
        raise DatasetError(
            f"{path}:{p.count_line}: says {p.count} objects but the file has {len(p.boxes)} "
            "bounding box lines"
        )
    image = resolve_image(p.ref, [root, root.parent], image_dirs)
    if image is None:
        searched = ", ".join(map(str, image_dirs)) or "-"
        raise DatasetError(
            f'{path}:{p.ref_line}: image "{p.ref}" not found under {root} '
            f"(nor by name in {searched})"
        )
    w, h = p.size
    people = [b for b in p.boxes if b[4]]
    for x1, y1, x2, y2, _, lineno in people:
        # Partly outside is clipped by the readers' users; wholly outside is a wrong line.
        if x1 - p.origin >= w or y1 - p.origin >= h or x2 - p.origin < 0 or y2 - p.origin < 0:
            raise DatasetError(
                f"{path}:{lineno}: box ({x1:g}, {y1:g}) - ({x2:g}, {y2:g}) lies outside "
                f"the {w}x{h} image"
            )
    arr = np.array([b[:4] for b in people], dtype=np.float32).reshape(-1, 4) - p.origin
    return Sample(
        image_path=image,
        width=w,
        height=h,
        boxes=arr,
        ignore=np.zeros(len(arr), bool),
        annotation=str(path),
    )


def _annotation_dirs(root: Path, names: tuple[str, ...]) -> list[Path]:
    found = []
    for sub in ("Train", "Test", "train", "test", ""):
        for name in names:
            d = root / sub / name if sub else root / name
            if d.is_dir() and d not in found:
                found.append(d)
    return found


def read_pascal_dataset(root: Path, kind: str, default_origin: int) -> list[Sample]:
    """Every annotation of an INRIA or Penn-Fudan root.

    INRIA keeps them under ``ROOT/{Train,Test}/annotations``, Penn-Fudan under ``ROOT/Annotation``.
    """
    if not root.is_dir():
        raise DatasetError(f"{kind} dataset root {root} is not a directory")
    dirs = _annotation_dirs(root, ("annotations", "Annotation", "Annotations"))
    if not dirs:
        expect = "Train/annotations or Test/annotations" if kind == "inria" else "Annotation"
        raise DatasetError(
            f"{kind} dataset root {root} has no {expect} folder; pass the folder that contains it"
        )
    samples = []
    for d in dirs:
        image_dirs = [
            p
            for p in (
                d.parent / "pos",
                d.parent / "PNGImages",
                d.parent / "JPEGImages",
                d.parent / "images",
            )
            if p.is_dir()
        ]
        for ann in sorted(d.glob("*.txt")):
            samples.append(read_pascal_annotation(ann, root, default_origin, image_dirs))
    if not samples:
        raise DatasetError(
            f"{kind} dataset root {root}: no *.txt annotations in {', '.join(map(str, dirs))}"
        )
    return samples
