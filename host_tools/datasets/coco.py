"""COCO json: reading the person category into samples, and writing samples as COCO json.

The writer is also what the evaluator hands to pycocotools, so the ground truth that COCO AP sees is
exactly the one the other metrics see.
"""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from host_tools.datasets.types import DatasetError, Sample

PERSON_CATEGORY_ID = 1  # COCO's own id for person; also label 1 in the OD API label map


# Person boxes of one image: ([x1, y1, x2, y2], is an ignore region, index in annotations).
PersonBoxes = list[tuple[list[float], bool, int]]


def read_coco_dataset(ann_path: Path, images_dir: Path) -> list[Sample]:
    """Images and person boxes of a COCO json; ``iscrowd`` / ``ignore`` boxes are ignore regions."""
    if not ann_path.is_file():
        raise DatasetError(f"coco annotations {ann_path} not found")
    if not images_dir.is_dir():
        raise DatasetError(f"coco images folder {images_dir} is not a directory")
    data = _load_coco_json(ann_path)
    _refuse_shared_images(data["images"], ann_path)
    people, objects = _boxes_by_image(data, _person_category_ids(data, ann_path), ann_path)
    return [
        _image_sample(j, img, people, objects, ann_path, images_dir)
        for j, img in enumerate(data["images"])
    ]


def _load_coco_json(ann_path: Path) -> dict[str, Any]:
    """The parsed json, refused in one line unless it is an object with an ``images`` list."""
    try:
        data = json.loads(ann_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DatasetError(
            f"{ann_path}:{exc.lineno}: malformed json (column {exc.colno}): {exc.msg}"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"cannot read coco annotations {ann_path}: {exc}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("images"), list):
        raise DatasetError(f"{ann_path}: not a COCO detection file (no 'images' list)")
    return data


_SHARED_FIX = {
    "id": "give each image its own id (annotations find their image by it)",
    "file_name": "list each image once",
}


def _refuse_shared_images(images: list[Any], ann_path: Path) -> None:
    """Two ``images`` entries with one id (or one file): the boxes are joined by id, so each got
    the other's people too, and a file listed twice was scored twice; both silently."""
    seen: dict[tuple[str, str], int] = {}
    for j, img in enumerate(images):
        if not isinstance(img, dict):
            continue  # _image_sample names it
        for key, fix in _SHARED_FIX.items():
            if key not in img:
                continue
            first = seen.setdefault((key, repr(img[key])), j)
            if first != j:
                raise DatasetError(
                    f"{ann_path}: images[{j}] has the {key} {img[key]!r} of images[{first}]; {fix}"
                )


def _person_category_ids(data: dict[str, Any], ann_path: Path) -> set[object]:
    """Ids of the categories named person / pedestrian (a file without one is refused)."""
    cats = data.get("categories") or []
    person_ids = {
        c.get("id")
        for c in cats
        if isinstance(c, dict) and str(c.get("name", "")).lower() in ("person", "pedestrian")
    }
    if not person_ids:
        names = ", ".join(str(c.get("name")) for c in cats[:10] if isinstance(c, dict))
        raise DatasetError(f"{ann_path}: no 'person' category (categories: {names or 'none'})")
    return person_ids


def _boxes_by_image(
    data: dict[str, Any], person_ids: set[object], ann_path: Path
) -> tuple[dict[object, PersonBoxes], dict[object, list[list[float]]]]:
    """Image id -> its person boxes (xyxy, crowd flag), and image id -> the other categories'
    boxes (their crowd boxes left out: a crowd of things is no close-up of one)."""
    people: dict[object, PersonBoxes] = {}
    objects: dict[object, list[list[float]]] = {}
    for i, ann in enumerate(data.get("annotations") or []):
        if not isinstance(ann, dict):
            raise DatasetError(f"{ann_path}: annotations[{i}] is not an object")
        xyxy = _annotation_xyxy(i, ann, ann_path)
        crowd = bool(ann.get("iscrowd", 0)) or bool(ann.get("ignore", 0))
        if ann.get("category_id") in person_ids:
            people.setdefault(ann.get("image_id"), []).append((xyxy, crowd, i))
        elif not crowd:
            objects.setdefault(ann.get("image_id"), []).append(xyxy)
    return people, objects


def _annotation_xyxy(i: int, ann: dict[str, Any], ann_path: Path) -> list[float]:
    """The ``bbox`` [x, y, w, h] of ``annotations[i]`` as [x1, y1, x2, y2], checked."""
    bbox = ann.get("bbox")
    if not (
        isinstance(bbox, list) and len(bbox) == 4 and all(isinstance(v, (int, float)) for v in bbox)
    ):
        raise DatasetError(
            f"{ann_path}: annotations[{i}] (id {ann.get('id')}) has bbox {bbox!r}; "
            "expected [x, y, w, h]"
        )
    x, y, w, h = (float(v) for v in bbox)
    if w < 0 or h < 0:
        raise DatasetError(
            f"{ann_path}: annotations[{i}] (id {ann.get('id')}) has a negative width or height"
        )
    return [x, y, x + w, y + h]


def _image_sample(
    j: int,
    img: Any,
    per_image: dict[object, PersonBoxes],
    objects: dict[object, list[list[float]]],
    ann_path: Path,
    images_dir: Path,
) -> Sample:
    """``images[j]`` as a sample with its person boxes (its file must exist in ``images_dir``)."""
    try:
        fname, w, h, iid = img["file_name"], int(img["width"]), int(img["height"]), img["id"]
    except (KeyError, TypeError, ValueError):
        raise DatasetError(
            f"{ann_path}: images[{j}] needs file_name, width, height and id"
        ) from None
    path = images_dir / fname
    if not path.is_file():
        raise DatasetError(f"{ann_path}: images[{j}] file {fname!r} not found in {images_dir}")
    anns = per_image.get(iid, [])
    _refuse_unmatchable(anns, w, h, path, ann_path)
    boxes = np.array([a[0] for a in anns], np.float32).reshape(-1, 4)
    ignore = np.array([a[1] for a in anns], bool)
    things = np.array(objects.get(iid, []), np.float32).reshape(-1, 4)
    return Sample(path, w, h, boxes, ignore, f"{ann_path} (image id {iid})", things)


def _refuse_unmatchable(anns: PersonBoxes, w: int, h: int, image: Path, ann_path: Path) -> None:
    """A person box that no detection can match, refused as the YOLO and PASCAL readers refuse
    one: of zero width or height, or wholly outside its image (one partly outside is kept and
    clipped where it is used). Read, it counted as a missed person in every evaluation (training
    dropped it), and the scores came out low without a word."""
    for (x1, y1, x2, y2), _, i in anns:
        bbox = [round(v, 2) for v in (x1, y1, x2 - x1, y2 - y1)]
        where = f"{ann_path}: annotations[{i}] (image {image.name}): person bbox {bbox}"
        if x2 <= x1 or y2 <= y1:
            raise DatasetError(f"{where} has zero width or height; fix or delete it")
        if x1 >= w or y1 >= h or x2 <= 0 or y2 <= 0:
            raise DatasetError(
                f"{where} lies outside the {w}x{h} image; fix the box (a COCO bbox is [x, y, "
                "width, height]) or the image's width and height"
            )


def to_coco_dict(samples: list[Sample], images_dir: Path | None = None) -> dict:
    """Samples as a COCO detection dict: image ids 1..N in order, category 1 = person.

    ``file_name`` is relative to ``images_dir`` (default: the images' common folder), so that
    ``coco:OUT.json:IMAGES_DIR`` reads the same samples back.
    """
    if images_dir is None:
        images_dir = common_image_dir(samples)
    images: list[dict] = []
    anns: list[dict] = []
    for i, s in enumerate(samples, start=1):
        rel = os.path.relpath(s.image_path, images_dir) if images_dir else s.image_path.name
        images.append(
            {"id": i, "file_name": Path(rel).as_posix(), "width": s.width, "height": s.height}
        )
        for b, ign in zip(s.boxes.tolist(), s.ignore.tolist(), strict=True):
            w, h = b[2] - b[0], b[3] - b[1]
            anns.append(
                {
                    "id": len(anns) + 1,
                    "image_id": i,
                    "category_id": PERSON_CATEGORY_ID,
                    "bbox": [round(b[0], 3), round(b[1], 3), round(w, 3), round(h, 3)],
                    "area": round(w * h, 3),
                    "iscrowd": int(ign),
                }
            )
    return {
        "info": {"description": "written by host_tools (edgedetect)"},
        "images": images,
        "annotations": anns,
        "categories": [{"id": PERSON_CATEGORY_ID, "name": "person", "supercategory": "person"}],
    }


def common_image_dir(samples: list[Sample]) -> Path:
    """The deepest folder holding every image (so COCO ``file_name`` stays short and relative)."""
    if not samples:
        return Path(".")
    return Path(os.path.commonpath([str(s.image_path.resolve().parent) for s in samples]))


def write_coco_json(samples: list[Sample], out: Path, images_dir: Path | None = None) -> Path:
    """Write samples as COCO json; returns the images folder the file names are relative to."""
    images_dir = images_dir or common_image_dir(samples)
    out.parent.mkdir(parents=True, exist_ok=True)
    resolved = [replace(s, image_path=s.image_path.resolve()) for s in samples]
    out.write_text(
        json.dumps(to_coco_dict(resolved, images_dir.resolve()), indent=1), encoding="utf-8"
    )
    return images_dir
