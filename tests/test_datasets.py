"""Dataset readers: real INRIA / Penn-Fudan files, and small written files of every format."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from host_tools.datasets import DatasetError, load_dataset, parse_spec

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
INRIA = SHARED / "inria"
PENNFUDAN = SHARED / "pennfudan" / "PennFudanPed"
SPLIT_TEST = SHARED / "splits" / "pennfudan_test.txt"


def need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"shared data not found: {path} (it lives in ../shared/data beside the repo)")
    return path


def _png(path: Path, w: int = 64, h: int = 48) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), np.full((h, w, 3), 127, np.uint8))
    return path


# ------------------------------------------------------------------------------- real data
def test_inria_real_annotations_are_zero_based():
    ds = load_dataset(f"inria:{need(INRIA)}")
    assert len(ds) == 4 and ds.num_boxes == 10
    by = {s.name: s for s in ds}
    s = by["crop001501.png"]
    assert (s.width, s.height) == (1060, 605)
    assert s.image_path.is_file() and s.image_path.parent.name == "pos"
    # first box in the file: (250, 151) - (299, 294), origin (0, 0): kept as is
    assert s.boxes[0].tolist() == [250, 151, 299, 294]
    counts = {n: len(by[n].boxes) for n in by}
    assert counts == {
        "crop001501.png": 4,
        "crop_000001.png": 1,
        "person_and_bike_006.png": 2,
        "person_138.png": 3,
    }


def test_pennfudan_real_annotations_are_shifted_to_zero_based():
    ds = load_dataset(f"pennfudan:{need(PENNFUDAN)}")
    assert len(ds) == 170 and ds.num_boxes == 423
    s = next(s for s in ds if s.name == "FudanPed00001.png")
    # file says (160, 182) - (302, 431) with origin (1, 1)
    assert s.boxes[0].tolist() == [159, 181, 301, 430]
    assert (s.width, s.height) == (559, 536)
    assert all(s.image_path.is_file() for s in ds)


def test_pennfudan_split_file_selects_test_images():
    ds = load_dataset(f"pennfudan:{need(PENNFUDAN)}", need(SPLIT_TEST))
    names = [ln.strip() for ln in SPLIT_TEST.read_text().splitlines() if ln.strip()]
    assert [s.name for s in ds] == names
    assert len(ds) == 42 and ds.num_boxes == 111


# ------------------------------------------------------------------------------- PASCAL v1.00
PASCAL = """# PASCAL Annotation Version 1.00

Image filename : "Test/pos/a.png"
Image size (X x Y x C) : 64 x 48 x 3
Objects with ground truth : 2 { "PASperson" "PASbicycle" }

# Top left pixel co-ordinates : (0, 0)

Original label for object 1 "PASperson" : "UprightPerson"
Bounding box for object 1 "PASperson" (Xmin, Ymin) - (Xmax, Ymax) : (10, 5) - (30, 40)
Bounding box for object 2 "PASbicycle" (Xmin, Ymin) - (Xmax, Ymax) : (1, 1) - (5, 5)
"""


def _inria_root(tmp_path: Path, text: str, newline: str = "\n") -> Path:
    root = tmp_path / "INRIAPerson"
    _png(root / "Test" / "pos" / "a.png")
    ann = root / "Test" / "annotations" / "a.txt"
    ann.parent.mkdir(parents=True)
    ann.write_bytes(text.replace("\n", newline).encode())
    return root


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_pascal_crlf_and_lf_and_person_only(tmp_path, newline):
    root = _inria_root(tmp_path, PASCAL, newline)
    (s,) = load_dataset(f"inria:{root}").samples
    assert s.image_path == root / "Test" / "pos" / "a.png"
    assert s.boxes.tolist() == [[10, 5, 30, 40]]  # the bicycle is not a person
    assert not s.ignore.any()


def test_pascal_origin_line_wins_over_dataset_default(tmp_path):
    root = _inria_root(tmp_path, PASCAL.replace("(0, 0)", "(1, 1)"))
    (s,) = load_dataset(f"inria:{root}").samples
    assert s.boxes.tolist() == [[9, 4, 29, 39]]


@pytest.mark.parametrize(
    ("bad", "line", "words"),
    [
        ("(10, 5) - (30, 40)", 10, "malformed bounding box"),
        ("(30, 5) - (10, 40)", 10, "Xmax < Xmin"),
    ],
)
def test_pascal_bad_box_names_file_and_line(tmp_path, bad, line, words):
    text = PASCAL.replace(
        "(10, 5) - (30, 40)", bad if "malformed" not in words else "(10, 5) - (30)"
    )
    root = _inria_root(tmp_path, text)
    with pytest.raises(DatasetError, match=rf"a\.txt:{line}: .*{words}"):
        load_dataset(f"inria:{root}")


def test_pascal_count_mismatch_and_missing_image(tmp_path):
    root = _inria_root(tmp_path, PASCAL.replace(": 2 {", ": 3 {"))
    with pytest.raises(DatasetError, match=r"a\.txt:5: says 3 objects but the file has 2"):
        load_dataset(f"inria:{root}")
    root2 = _inria_root(tmp_path / "b", PASCAL.replace("a.png", "zz.png"))
    with pytest.raises(DatasetError, match=r'a\.txt:3: image "Test/pos/zz.png" not found'):
        load_dataset(f"inria:{root2}")


# ------------------------------------------------------------------------------- VOC
VOC = """<annotation>
  <filename>v.png</filename>
  <size><width>64</width><height>48</height><depth>3</depth></size>
  <object>
    <name>person</name><difficult>0</difficult>
    <bndbox><xmin>11</xmin><ymin>6</ymin><xmax>31</xmax><ymax>41</ymax></bndbox>
  </object>
  <object>
    <name>dog</name>
    <bndbox><xmin>1</xmin><ymin>1</ymin><xmax>5</xmax><ymax>5</ymax></bndbox>
  </object>
  <object>
    <name>person</name><difficult>1</difficult>
    <bndbox><xmin>40</xmin><ymin>6</ymin><xmax>60</xmax><ymax>41</ymax></bndbox>
  </object>
</annotation>
"""


def _voc_root(tmp_path: Path, text: str) -> Path:
    _png(tmp_path / "JPEGImages" / "v.png")
    (tmp_path / "Annotations").mkdir()
    (tmp_path / "Annotations" / "v.xml").write_text(text)
    return tmp_path


def test_voc_one_based_difficult_is_ignore(tmp_path):
    (s,) = load_dataset(f"voc:{_voc_root(tmp_path, VOC)}").samples
    assert s.boxes.tolist() == [[10, 5, 30, 40], [39, 5, 59, 40]]
    assert s.ignore.tolist() == [False, True]
    assert s.num_people == 1


def test_voc_errors_name_file_and_line(tmp_path):
    root = _voc_root(
        tmp_path / "a",
        VOC.replace(
            "<bndbox><xmin>40</xmin><ymin>6</ymin><xmax>60</xmax><ymax>41</ymax></bndbox>", ""
        ),
    )
    with pytest.raises(DatasetError, match=r"v\.xml:12 \(object 3\): object has no <bndbox>"):
        load_dataset(f"voc:{root}")
    root = _voc_root(tmp_path / "b", VOC.replace("</size>", ""))
    with pytest.raises(DatasetError, match=r"v\.xml:\d+: malformed xml"):
        load_dataset(f"voc:{root}")


# ------------------------------------------------------------------------------- COCO
def _coco(tmp_path: Path, anns: list | None = None) -> Path:
    _png(tmp_path / "img" / "c.png")
    data = {
        "images": [{"id": 7, "file_name": "c.png", "width": 64, "height": 48}],
        "annotations": anns
        if anns is not None
        else [
            {"id": 1, "image_id": 7, "category_id": 1, "bbox": [10, 5, 20, 35], "iscrowd": 0},
            {"id": 2, "image_id": 7, "category_id": 1, "bbox": [0, 0, 64, 48], "iscrowd": 1},
            {"id": 3, "image_id": 7, "category_id": 18, "bbox": [1, 1, 4, 4], "iscrowd": 0},
        ],
        "categories": [{"id": 1, "name": "person"}, {"id": 18, "name": "dog"}],
    }
    (tmp_path / "ann.json").write_text(json.dumps(data, indent=1))
    return tmp_path


def test_coco_crowd_is_ignore_and_other_classes_dropped(tmp_path):
    root = _coco(tmp_path)
    (s,) = load_dataset(f"coco:{root / 'ann.json'}:{root / 'img'}").samples
    assert s.boxes.tolist() == [[10, 5, 30, 40], [0, 0, 64, 48]]
    assert s.ignore.tolist() == [False, True]


def test_coco_malformed_json_names_line(tmp_path):
    root = _coco(tmp_path)
    text = (root / "ann.json").read_text().splitlines()
    text[3] = text[3] + ","  # a stray comma on line 4
    (root / "ann.json").write_text("\n".join(text))
    with pytest.raises(DatasetError, match=r"ann\.json:\d+: malformed json"):
        load_dataset(f"coco:{root / 'ann.json'}:{root / 'img'}")


def test_coco_bad_bbox(tmp_path):
    root = _coco(tmp_path, [{"id": 5, "image_id": 7, "category_id": 1, "bbox": [1, 2, 3]}])
    with pytest.raises(DatasetError, match=r"annotations\[0\] \(id 5\) has bbox"):
        load_dataset(f"coco:{root / 'ann.json'}:{root / 'img'}")


# ------------------------------------------------------------------------------- YOLO
def _yolo(tmp_path: Path, label: str, classes: str | None = "car\nbike\nperson\n") -> Path:
    _png(tmp_path / "images" / "train" / "y.png", 100, 50)
    _png(tmp_path / "images" / "train" / "empty.png", 100, 50)
    (tmp_path / "labels" / "train").mkdir(parents=True)
    (tmp_path / "labels" / "train" / "y.txt").write_text(label)
    if classes is not None:
        (tmp_path / "classes.txt").write_text(classes)
    return tmp_path


def test_yolo_normalized_to_pixels_with_class_map(tmp_path):
    root = _yolo(tmp_path, "2 0.5 0.5 0.2 0.4\n0 0.1 0.1 0.1 0.1\n")
    ds = load_dataset(f"yolo:{root}")
    by = {s.name: s for s in ds}
    np.testing.assert_allclose(by["y.png"].boxes, [[40, 15, 60, 35]], atol=1e-4)
    assert len(by["empty.png"].boxes) == 0  # no label file: a negative image


def test_yolo_errors(tmp_path):
    root = _yolo(tmp_path / "a", "2 0.5 0.5 0.2\n")
    with pytest.raises(DatasetError, match=r"y\.txt:1: expected 'class cx cy w h'"):
        load_dataset(f"yolo:{root}")
    root = _yolo(tmp_path / "b", "2 0.5 0.5 0.2 0.4\n", classes=None)
    with pytest.raises(DatasetError, match="no class map; add classes.txt"):
        load_dataset(f"yolo:{root}")


@pytest.mark.parametrize(
    "yaml_text",
    ["names: [car, bike, person]\n", "names:\n  0: car\n  1: bike\n  2: person\n"],
    ids=["list", "mapping"],
)
def test_yolo_data_yaml_names_as_list_or_mapping(tmp_path, yaml_text):
    """Ultralytics writes ``names`` as a list (older) or a {number: name} mapping (newer); the
    mapping was an UnboundLocalError."""
    root = _yolo(tmp_path, "2 0.5 0.5 0.2 0.4\n0 0.1 0.1 0.1 0.1\n", classes=None)
    (root / "data.yaml").write_text(yaml_text)
    by = {s.name: s for s in load_dataset(f"yolo:{root}")}
    np.testing.assert_allclose(by["y.png"].boxes, [[40, 15, 60, 35]], atol=1e-4)


@pytest.mark.parametrize(
    ("yaml_text", "message"),
    [
        ("names:\n  a: person\n", "'names' keys must be class numbers"),
        ("- person\n", "no 'names' list or mapping"),
        ("names: [person\n", "malformed yaml"),
    ],
)
def test_yolo_data_yaml_errors_name_the_file(tmp_path, yaml_text, message):
    root = _yolo(tmp_path, "0 0.5 0.5 0.2 0.4\n", classes=None)
    (root / "data.yaml").write_text(yaml_text)
    with pytest.raises(DatasetError, match=f"data.yaml: {message}"):
        load_dataset(f"yolo:{root}")


# ------------------------------------------------------------------------------- specs, splits
def test_spec_parsing_and_errors(tmp_path):
    assert parse_spec("coco:/a/b.json:/c/d") == ("coco", [Path("/a/b.json"), Path("/c/d")])
    with pytest.raises(
        DatasetError, match="unknown dataset spec 'kitti:/x'; use one of: inria:ROOT"
    ):
        load_dataset("kitti:/x")
    with pytest.raises(DatasetError, match="is not a directory"):
        load_dataset(f"pennfudan:{tmp_path / 'missing'}")
    with pytest.raises(DatasetError, match="coco:ANNOTATIONS.json:IMAGES_DIR"):
        load_dataset("coco:/x/y")


def test_split_file_errors(tmp_path):
    root = _inria_root(tmp_path, PASCAL)
    with pytest.raises(DatasetError, match="split file .* not found"):
        load_dataset(f"inria:{root}", tmp_path / "nope.txt")
    split = tmp_path / "split.txt"
    split.write_text("# test\na.png\nb.png\n")
    with pytest.raises(DatasetError, match=r"'b\.png' \(entry 2\) is not an image of the dataset"):
        load_dataset(f"inria:{root}", split)
    split.write_text("a\n")  # a stem works too
    assert [s.name for s in load_dataset(f"inria:{root}", split)] == ["a.png"]


@pytest.mark.parametrize(("key", "value"), [("id", 7), ("file_name", "c.png")])
def test_coco_two_images_with_one_id_or_file_are_refused(tmp_path, key, value):
    """An ``images`` entry sharing the id of another got that image's people as well (53 person
    boxes instead of 46 in minicoco's val.json with one id repeated) and one sharing its file
    was scored twice; both loaded without a word."""
    root = _coco(tmp_path)
    _png(root / "img" / "d.png")
    data = json.loads((root / "ann.json").read_text())
    other = {"id": 8, "file_name": "d.png", "width": 64, "height": 48, key: value}
    data["images"].append(other)
    (root / "ann.json").write_text(json.dumps(data))
    with pytest.raises(DatasetError) as err:
        load_dataset(f"coco:{root / 'ann.json'}:{root / 'img'}")
    fix = "give each image its own id" if key == "id" else "list each image once"
    assert str(err.value).startswith(
        f"{root / 'ann.json'}: images[1] has the {key} {value!r} of images[0]; {fix}"
    ), err.value


def _person(bbox: list[float]) -> list[dict]:
    return [{"id": 4, "image_id": 7, "category_id": 1, "bbox": bbox, "iscrowd": 0}]


@pytest.mark.parametrize(
    ("bbox", "why"),
    [
        ([10, 5, 0, 20], "has zero width or height; fix or delete it"),
        ([100, 10, 10, 10], "lies outside the 64x48 image; fix the box"),
        ([10, -40, 10, 30], "lies outside the 64x48 image; fix the box"),
    ],
)
def test_coco_person_box_no_detection_can_match_is_refused(tmp_path, bbox, why):
    """A person box of zero width, or one wholly outside its image, was read as it was (the YOLO
    and PASCAL readers refuse them): every evaluation counted it as a missed person and the
    scores came out low without a word."""
    root = _coco(tmp_path, _person(bbox))
    with pytest.raises(DatasetError) as err:
        load_dataset(f"coco:{root / 'ann.json'}:{root / 'img'}")
    shown = [float(v) for v in bbox]
    assert str(err.value).startswith(
        f"{root / 'ann.json'}: annotations[0] (image c.png): person bbox {shown} {why}"
    ), err.value


def test_coco_person_box_partly_outside_is_read(tmp_path):
    """People cut at the border are kept, as in the PASCAL reader (clipped where used)."""
    root = _coco(tmp_path, _person([50, -4, 20, 30]))
    (s,) = load_dataset(f"coco:{root / 'ann.json'}:{root / 'img'}").samples
    assert s.boxes.tolist() == [[50, -4, 70, 26]]


def _split_export(tmp_path: Path, with_yaml: bool) -> Path:
    """A Roboflow / Ultralytics export: train/ and valid/ with images/ and labels/ each, and one
    data.yaml beside them (or, as capston2 here, a classes.txt in each split)."""
    root = tmp_path / "export"
    for split, person in (("train", "0 0.5 0.5 0.2 0.4\n"), ("valid", "0 0.3 0.3 0.1 0.2\n")):
        _png(root / split / "images" / f"{split}.png", 100, 50)
        (root / split / "labels").mkdir(parents=True)
        (root / split / "labels" / f"{split}.txt").write_text(person)
        if not with_yaml:
            (root / split / "classes.txt").write_text("person\n")
    if with_yaml:
        (root / "data.yaml").write_text(
            "train: ../train/images\nval: ../valid/images\nnames: [person]\n"
        )
    return root


@pytest.mark.parametrize("with_yaml", [True, False])
def test_yolo_export_root_with_splits_is_refused(tmp_path, with_yaml):
    """``yolo:EXPORT`` of an export with train/ and valid/ read both splits as one data set
    (validation images trained on, training images in a test score), silently; without a data.yaml
    it asked for a classes.txt at EXPORT, which would have done the same."""
    pytest.importorskip("yaml")
    root = _split_export(tmp_path, with_yaml)
    with pytest.raises(DatasetError) as err:
        load_dataset(f"yolo:{root}")
    assert str(err.value) == (
        f"yolo dataset {root} holds the splits train, valid (each with its own images/); "
        f"pass one of them, e.g. yolo:{root / 'train'}"
    )


def test_yolo_split_of_an_export_reads_the_data_yaml_beside_it(tmp_path):
    """``yolo:EXPORT/train`` said ``no class map; add classes.txt``: the export's data.yaml is one
    folder up, beside the splits."""
    pytest.importorskip("yaml")
    root = _split_export(tmp_path, with_yaml=True)
    (sample,) = load_dataset(f"yolo:{root / 'train'}").samples
    assert sample.name == "train.png"
    np.testing.assert_allclose(sample.boxes, [[40, 15, 60, 35]], atol=1e-4)


def test_yolo_empty_class_map_names_the_file_and_the_fix(tmp_path):
    """An empty classes.txt said ``no class named 'person' in the class map ()``: neither which
    file nor that it was empty."""
    root = _yolo(tmp_path, "0 0.5 0.5 0.2 0.4\n", classes="\n\n")
    with pytest.raises(DatasetError) as err:
        load_dataset(f"yolo:{root}")
    assert str(err.value) == (
        f"class map {root / 'classes.txt'} is empty; list one class name per line "
        "(line 1 = class 0), e.g. person"
    )


def test_yolo_class_map_without_person_says_how_to_name_it(tmp_path):
    root = _yolo(tmp_path, "0 0.5 0.5 0.2 0.4\n", classes="human\ncar\n")
    with pytest.raises(DatasetError) as err:
        load_dataset(f"yolo:{root}")
    assert str(err.value) == (
        f"yolo dataset {root}: no class named 'person' in the class map (human, car); name the "
        "person class 'person' (or 'pedestrian') there"
    )


def test_yolo_class_written_as_a_float_is_read(tmp_path):
    """``0.0 0.5 0.5 0.2 0.4`` (a class id written as a float, as some exporters do and
    Ultralytics reads) was refused as ``not numbers``, though every field is a number."""
    root = _yolo(tmp_path, "2.0 0.5 0.5 0.2 0.4\n")
    by = {s.name: s for s in load_dataset(f"yolo:{root}")}
    np.testing.assert_allclose(by["y.png"].boxes, [[40, 15, 60, 35]], atol=1e-4)


def test_yolo_class_that_is_no_whole_number_is_named(tmp_path):
    root = _yolo(tmp_path, "2.5 0.5 0.5 0.2 0.4\n")
    with pytest.raises(DatasetError) as err:
        load_dataset(f"yolo:{root}")
    label = root / "labels" / "train" / "y.txt"
    assert str(err.value) == (f"{label}:1: class 2.5 is not a whole number: '2.5 0.5 0.5 0.2 0.4'")
