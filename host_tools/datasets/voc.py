"""Pascal VOC xml annotations (``ROOT/Annotations/*.xml`` + ``ROOT/JPEGImages``).

VOC pixel coordinates are 1-based, so boxes are shifted by -1; ``difficult`` objects become ignore
regions, as in the VOC devkit's evaluation.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

from host_tools.datasets._paths import resolve_image
from host_tools.datasets.pascal import is_person_label
from host_tools.datasets.types import DatasetError, Sample


def _object_lines(text: str) -> list[int]:
    """Line of each ``<object>`` element, for messages (ElementTree keeps no line numbers)."""
    lines, pos = [], 0
    while (pos := text.find("<object", pos)) >= 0:
        nxt = text[pos + 7 : pos + 8]
        if nxt in (">", " ", "\t", "\n", "\r"):
            lines.append(text.count("\n", 0, pos) + 1)
        pos += 7
    return lines


def _num(el: ET.Element | None, tag: str, where: str) -> float:
    node = el.find(tag) if el is not None else None
    if node is None or node.text is None:
        raise DatasetError(f"{where}: missing <{tag}>")
    try:
        return float(node.text.strip())
    except ValueError:
        raise DatasetError(f"{where}: <{tag}> is {node.text.strip()!r}, not a number") from None


def read_voc_annotation(path: Path, root: Path) -> Sample:
    """One VOC xml file into a :class:`Sample`."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
        tree = ET.fromstring(text)
    except OSError as exc:
        raise DatasetError(f"cannot read annotation {path}: {exc.strerror or exc}") from exc
    except ET.ParseError as exc:
        line, col = exc.position
        reason = exc.msg if hasattr(exc, "msg") else exc
        raise DatasetError(f"{path}:{line}: malformed xml (column {col}): {reason}") from None
    obj_lines = _object_lines(text)
    fname = tree.findtext("filename")
    if not fname:
        raise DatasetError(f"{path}: missing <filename>")
    size = tree.find("size")
    w = int(_num(size, "width", f"{path}: <size>"))
    h = int(_num(size, "height", f"{path}: <size>"))
    image = resolve_image(
        fname.strip(), [root / "JPEGImages", root / "images", root], [root / "JPEGImages", root]
    )
    if image is None:
        raise DatasetError(f"{path}: image {fname.strip()!r} not found in {root / 'JPEGImages'}")
    boxes, ignore = [], []
    for i, obj in enumerate(tree.findall("object")):
        line = obj_lines[i] if i < len(obj_lines) else 0
        where = f"{path}:{line} (object {i + 1})"
        name = (obj.findtext("name") or "").strip()
        if not name:
            raise DatasetError(f"{where}: object has no <name>")
        if not is_person_label(name):
            continue
        bb = obj.find("bndbox")
        if bb is None:
            raise DatasetError(f"{where}: object has no <bndbox>")
        x1, y1, x2, y2 = (_num(bb, t, where) for t in ("xmin", "ymin", "xmax", "ymax"))
        if x2 < x1 or y2 < y1:
            raise DatasetError(f"{where}: box has xmax < xmin or ymax < ymin")
        boxes.append([x1 - 1, y1 - 1, x2 - 1, y2 - 1])
        ignore.append((obj.findtext("difficult") or "0").strip() in ("1", "true", "True"))
    return Sample(
        image, w, h, np.array(boxes, np.float32).reshape(-1, 4), np.array(ignore, bool), str(path)
    )


def read_voc_dataset(root: Path) -> list[Sample]:
    """Every ``ROOT/Annotations/*.xml``."""
    if not root.is_dir():
        raise DatasetError(f"voc dataset root {root} is not a directory")
    ann_dir = root / "Annotations"
    if not ann_dir.is_dir():
        raise DatasetError(
            f"voc dataset root {root} has no Annotations folder; "
            "pass the folder holding Annotations/ and JPEGImages/"
        )
    files = sorted(ann_dir.glob("*.xml"))
    if not files:
        raise DatasetError(f"voc dataset: no *.xml files in {ann_dir}")
    return [read_voc_annotation(p, root) for p in files]
