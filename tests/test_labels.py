"""Label files of every format map to 0-based model output indices."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import SHARED_MODELS, need_shared

from edgedetect.errors import LabelsError
from edgedetect.labels import (
    find_labels_for,
    format_label_map_pbtxt,
    load_labels,
    parse_labels,
    write_label_map_pbtxt,
)


def test_plain_with_background_line_is_shifted() -> None:
    assert parse_labels("???\nperson\nbicycle\n???\ncar\n") == {0: "person", 1: "bicycle", 3: "car"}


def test_plain_without_background_line() -> None:
    assert parse_labels("person\nbicycle\n\n") == {0: "person", 1: "bicycle"}


def test_id_prefixed_zero_and_one_based() -> None:
    assert parse_labels("0  person\n1  bicycle\n3 motorcycle") == {
        0: "person",
        1: "bicycle",
        3: "motorcycle",
    }
    assert parse_labels("1 person\n2 bicycle\n90 toothbrush") == {
        0: "person",
        1: "bicycle",
        89: "toothbrush",
    }


def test_pbtxt_roundtrip_and_comments(tmp_path: Path) -> None:
    names = {0: "person", 2: 'odd "name"'}
    path = write_label_map_pbtxt(tmp_path / "label_map.pbtxt", names)
    text = path.read_text()
    assert "id: 1" in text and "id: 3" in text
    assert load_labels(path) == names
    odapi = (
        '# comment\nitem {\n  name: "/m/01g317"\n  id: 1\n  display_name: "person"\n}\n'
        "item { id: 2 name: 'car' }\n"
    )
    assert parse_labels(odapi) == {0: "person", 1: "car"}
    assert format_label_map_pbtxt({0: "person"}).count("item") == 1


def test_pbtxt_errors_name_the_item() -> None:
    with pytest.raises(LabelsError, match="item 1 has no 'id'"):
        parse_labels('item { name: "person" }', "x.pbtxt")


def test_missing_file_names_path(tmp_path: Path) -> None:
    with pytest.raises(LabelsError, match="nope.txt"):
        load_labels(tmp_path / "nope.txt")
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n")
    with pytest.raises(LabelsError, match="no labels"):
        load_labels(empty)


def test_a_binary_file_given_as_labels_says_what_a_label_file_is(tmp_path: Path) -> None:
    # --labels pointing at the model (or a video) answered with Python's "'utf-8' codec can't
    # decode byte 0x93 in position 39: invalid start byte" and no hint of what was expected.
    model = tmp_path / "model.tflite"
    model.write_bytes(b"\x1c\x00\x00\x00TFL3\x93\xff" * 8)
    with pytest.raises(LabelsError) as err:
        load_labels(model)
    assert str(err.value) == (
        f"label file {model} is not UTF-8 text: pass a label file (one class name a line, "
        "or a label map .pbtxt) saved as UTF-8, not the model or an image"
    )


def test_shared_label_files_agree_on_person() -> None:
    for name in (
        "coco_labels.txt",
        "ssd_mobilenet_v2_fpnlite_320_coco_tf2.labels.txt",
        "ssd_mobilenet_v2_320_coco_tf2_no_postprocess.labels.txt",
    ):
        names = load_labels(need_shared(SHARED_MODELS / name))
        assert names[0] == "person", name
        assert names[2] == "car", name


def test_find_labels_for(tmp_path: Path) -> None:
    model = tmp_path / "m.tflite"
    model.write_bytes(b"")
    assert find_labels_for(model) is None
    (tmp_path / "labelmap.txt").write_text("person\n")
    assert find_labels_for(model) == tmp_path / "labelmap.txt"
    (tmp_path / "m.labels.txt").write_text("person\n")
    assert find_labels_for(model) == tmp_path / "m.labels.txt"
