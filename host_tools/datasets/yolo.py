"""YOLO labels (``class cx cy w h``, normalized) with a class map naming which class is a person.

Layouts: ``ROOT/images/**`` + ``ROOT/labels/**`` (Ultralytics; ``images`` -> ``labels`` in the
path), or each ``.txt`` beside its image (darknet). The class map is ``ROOT/classes.txt`` or
``ROOT/obj.names`` (one name per line, line i = class i) or the ``names`` of ``ROOT/data.yaml``
(needs PyYAML). An image without a label file is a negative image, as in both tools.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from host_tools.datasets._paths import read_text_lines
from host_tools.datasets.pascal import is_person_label
from host_tools.datasets.types import DatasetError, Sample

IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")


def read_class_map(root: Path) -> dict[int, str]:
    """Class id -> name from classes.txt / obj.names / data.yaml in ROOT, else in its parent: a
    Roboflow or Ultralytics export keeps one data.yaml beside its train/ valid/ test/ splits."""
    for folder in (root, root.parent):
        found = _class_map_in(folder)
        if found is not None:
            return found
    raise DatasetError(
        f"yolo dataset {root} has no class map; "
        "add classes.txt (one class name per line, line 1 = class 0)"
    )


def _class_map_in(root: Path) -> dict[int, str] | None:
    """The class map of one folder, or None when it has none."""
    for name in ("classes.txt", "obj.names"):
        p = root / name
        if p.is_file():
            names = [ln.strip() for ln in read_text_lines(p)]
            while names and not names[-1]:
                names.pop()
            if not names:  # said: no class named 'person' in the class map ()
                raise DatasetError(
                    f"class map {p} is empty; list one class name per line "
                    "(line 1 = class 0), e.g. person"
                )
            return dict(enumerate(names))
    for name in ("data.yaml", "dataset.yaml"):
        p = root / name
        if p.is_file():
            try:
                import yaml  # optional: only Ultralytics-style datasets need it
            except ImportError:
                raise DatasetError(
                    f"{p} needs PyYAML to read (pip install pyyaml), "
                    f"or put a classes.txt (one name per line) in {root}"
                ) from None
            try:
                doc = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
            except yaml.YAMLError as exc:
                raise DatasetError(f"{p}: malformed yaml: {exc}") from None
            listed = doc.get("names") if isinstance(doc, dict) else None
            if isinstance(listed, list):
                return dict(enumerate(str(n) for n in listed))
            if isinstance(listed, dict):  # Ultralytics' newer form: {0: person, 1: bicycle}
                if not all(isinstance(k, int) for k in listed):
                    raise DatasetError(f"{p}: 'names' keys must be class numbers (0: person)")
                return {k: str(v) for k, v in listed.items()}
            raise DatasetError(f"{p}: no 'names' list or mapping")
    return None


def _label_path(image: Path, root: Path) -> Path:
    rel = image.relative_to(root)
    parts = list(rel.parts)
    if "images" in parts:
        i = len(parts) - 1 - parts[::-1].index("images")
        parts[i] = "labels"
        return root.joinpath(*parts).with_suffix(".txt")
    return image.with_suffix(".txt")


def _image_size(path: Path) -> tuple[int, int]:
    from PIL import Image  # reads the header only; pillow comes with matplotlib on the host

    try:
        with Image.open(path) as im:
            return im.size
    except Exception as exc:  # noqa: BLE001 - any decoder failure is the same user error
        raise DatasetError(f"cannot read image size of {path}: {exc}") from None


def read_yolo_dataset(root: Path) -> list[Sample]:
    """Every image under ROOT with its label file (missing label file = no people)."""
    if not root.is_dir():
        raise DatasetError(f"yolo dataset root {root} is not a directory")
    _refuse_split_root(root)
    classes = read_class_map(root)
    person = _person_class_ids(root, classes)
    samples = []
    for img in _image_files(root):
        w, h = _image_size(img)
        lab = _label_path(img, root)
        boxes, objects = _read_boxes(lab, classes, person, w, h) if lab.is_file() else ([], [])
        samples.append(
            Sample(
                img,
                w,
                h,
                np.array(boxes, np.float32).reshape(-1, 4),
                annotation=str(lab),
                objects=np.array(objects, np.float32).reshape(-1, 4),
            )
        )
    return samples


def _person_class_ids(root: Path, classes: dict[int, str]) -> set[int]:
    """The class ids that name a person; a dataset without one is refused."""
    person = {i for i, n in classes.items() if is_person_label(n)}
    if not person:
        known = ", ".join(list(classes.values())[:10])
        raise DatasetError(
            f"yolo dataset {root}: no class named 'person' in the class map ({known}); name "
            "the person class 'person' (or 'pedestrian') there"
        )
    return person


def _refuse_split_root(root: Path) -> None:
    """A ROOT whose sub-folders hold their own ``images/`` (an export's train/ valid/ test/) is
    refused: with a data.yaml beside them every split was read as one data set, so validation
    images were trained on and a test score counted training images, silently; without one the
    error asked for a classes.txt there, which would do the same."""
    if (root / "images").is_dir():
        return
    splits = sorted(d.name for d in root.iterdir() if (d / "images").is_dir())
    if splits:
        raise DatasetError(
            f"yolo dataset {root} holds the splits {', '.join(splits)} (each with its own "
            f"images/); pass one of them, e.g. yolo:{root / splits[0]}"
        )


def _image_files(root: Path) -> list[Path]:
    """The images under ``ROOT/images`` (Ultralytics) or else ROOT (darknet), sorted; not none."""
    img_root = root / "images" if (root / "images").is_dir() else root
    images = sorted(
        p for p in img_root.rglob("*") if p.suffix.lower() in IMAGE_EXTS and p.is_file()
    )
    if not images:
        raise DatasetError(f"yolo dataset {root}: no images found")
    return images


def _read_boxes(
    lab: Path, classes: dict[int, str], person: set[int], w: int, h: int
) -> tuple[list[list[float]], list[list[float]]]:
    """The person boxes and the other classes' boxes of one label file, in pixels (x1, y1, x2,
    y2) of a ``w`` x ``h`` image.

    Every line is checked, including those of other classes: a broken file fails loudly.
    """
    boxes: list[list[float]] = []
    objects: list[list[float]] = []
    for lineno, line in enumerate(read_text_lines(lab), start=1):
        label = _parse_label_line(lab, lineno, line, classes)
        if label is None:
            continue
        cls, cx, cy, bw, bh = label
        xyxy = [(cx - bw / 2) * w, (cy - bh / 2) * h, (cx + bw / 2) * w, (cy + bh / 2) * h]
        (boxes if cls in person else objects).append(xyxy)
    return boxes, objects


def _parse_label_line(
    lab: Path, lineno: int, line: str, classes: dict[int, str]
) -> tuple[int, float, float, float, float] | None:
    """``class cx cy w h`` of one label line, checked (None for a blank line)."""
    fields = line.split()
    if not fields:
        return None
    if len(fields) != 5:
        raise DatasetError(
            f"{lab}:{lineno}: expected 'class cx cy w h' (5 fields), got {len(fields)}"
        )
    try:
        cls_value = float(fields[0])  # "0.0": some exporters write the class as a float
        cx, cy, bw, bh = (float(v) for v in fields[1:])
    except ValueError:
        raise DatasetError(f"{lab}:{lineno}: not numbers: {line.strip()!r}") from None
    if not cls_value.is_integer():
        raise DatasetError(
            f"{lab}:{lineno}: class {fields[0]} is not a whole number: {line.strip()!r}"
        )
    cls = int(cls_value)
    if cls not in classes:
        raise DatasetError(
            f"{lab}:{lineno}: class {cls} is not in the class map (0..{len(classes) - 1})"
        )
    if not all(0.0 <= v <= 1.0 for v in (cx, cy, bw, bh)):
        raise DatasetError(
            f"{lab}:{lineno}: coordinates must be normalized to [0, 1]: {line.strip()!r}"
        )
    if bw <= 0 or bh <= 0:
        raise DatasetError(f"{lab}:{lineno}: box has zero width or height: {line.strip()!r}")
    return cls, cx, cy, bw, bh
