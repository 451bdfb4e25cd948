"""Ignore regions from reference detections: the ``#ignore=`` file, anchor targets and the CLI."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from conftest import REPO, SHARED, need_shared  # noqa: E402

from edgedetect.errors import ConfigError  # noqa: E402
from host_tools.datasets import DatasetError, load_dataset  # noqa: E402
from host_tools.datasets.sources import DataSource, load_sources  # noqa: E402

CAPSTON_TRAIN = SHARED / "capston2" / "train"
OWN_MODEL = REPO / "models" / "person_ssdlite_int8.tflite"


def _yolo(tmp_path: Path) -> Path:
    """Three 64x48 images, each labelled with one person at the left."""
    root = tmp_path / "yolo"
    (root / "images").mkdir(parents=True)
    (root / "labels").mkdir()
    (root / "classes.txt").write_text("person\n")
    for i in range(3):
        cv2.imwrite(str(root / "images" / f"im{i}.jpg"), np.full((48, 64, 3), 40 * i, np.uint8))
        (root / "labels" / f"im{i}.txt").write_text("0 0.25 0.5 0.25 0.5\n")
    return root


def _ignore_file(tmp_path: Path, images: dict) -> Path:
    path = tmp_path / "ignore.json"
    path.write_text(json.dumps({"spec": "x", "models": [], "images": images}))
    return path


def test_spec_option_adds_ignore_boxes(tmp_path):
    root = _yolo(tmp_path)
    ign = _ignore_file(tmp_path, {"images/im1.jpg": [[40, 10, 60, 40]]})
    src = DataSource.parse(f"yolo:{root}#ignore={ign}#weight=2")
    assert (src.ignore_file, src.weight) == (str(ign), 2.0)
    samples = {s.name: s for s in load_sources([src], "mix").samples}
    s = samples["im1.jpg"]
    assert s.ignore.tolist() == [False, True]
    np.testing.assert_allclose(s.boxes[1], [40, 10, 60, 40])
    assert s.num_people == 1
    assert samples["im0.jpg"].ignore.tolist() == [False]


def test_config_source_takes_ignore_inline_or_as_key(tmp_path):
    a = DataSource.from_dict({"spec": "yolo:/d#ignore=i.json", "weight": 3}, "cfg")
    b = DataSource.from_dict({"spec": "yolo:/d", "ignore_file": "i.json", "weight": 3}, "cfg")
    assert a == b == DataSource("yolo:/d", None, 3.0, "i.json")
    assert b.resolved().ignore_file == str(REPO / "i.json")
    with pytest.raises(ConfigError, match="ignore_file"):
        DataSource.from_dict({"spec": "yolo:/d", "ignores": "i.json"}, "cfg")


def _yolo_heights(tmp_path: Path, labels: dict[str, str]) -> Path:
    """200 px tall images named by ``labels`` (image name -> YOLO label lines)."""
    root = tmp_path / "tall"
    (root / "images").mkdir(parents=True)
    (root / "labels").mkdir()
    (root / "classes.txt").write_text("person\n")
    for name, lines in labels.items():
        cv2.imwrite(str(root / "images" / f"{name}.jpg"), np.full((200, 160, 3), 90, np.uint8))
        (root / "labels" / f"{name}.txt").write_text(lines)
    return root


def test_ignore_below_ignores_short_people_only_beside_a_taller_one(tmp_path):
    """0.05 of the height is under 0.08: ignored beside a 0.5 person, kept where it is alone or
    where the only taller box is itself an ignore region."""
    tall, short = "0 0.3 0.5 0.2 0.5\n", "0 0.7 0.2 0.1 0.05\n"
    root = _yolo_heights(
        tmp_path,
        {"mixed": tall + short, "crowd": short + "0 0.2 0.2 0.1 0.04\n", "held": tall + short},
    )
    ign = _ignore_file(tmp_path, {"images/held.jpg": [[0, 0, 100, 150]]})
    samples = {
        s.name: s
        for s in load_sources(
            [DataSource.parse(f"yolo:{root}#ignore={ign}#ignore_below=0.08")], "mix"
        ).samples
    }
    assert samples["mixed.jpg"].ignore.tolist() == [False, True]
    assert samples["mixed.jpg"].num_people == 1
    assert samples["crowd.jpg"].ignore.tolist() == [False, False]
    assert samples["held.jpg"].ignore.tolist() == [False, True, True]
    plain = {s.name: s for s in DataSource(f"yolo:{root}").load().samples}
    assert plain["mixed.jpg"].ignore.tolist() == [False, False]


def test_ignore_below_reaches_the_training_targets(tmp_path):
    from host_tools.ssd.data import load_train_mix

    root = _yolo_heights(tmp_path, {"mixed": "0 0.3 0.5 0.2 0.5\n0 0.7 0.2 0.1 0.05\n"})
    data = load_train_mix([DataSource.parse(f"yolo:{root}#ignore_below=0.08")])
    (boxes,), (ignore,) = data.boxes, data.ignore_boxes
    assert len(boxes) == len(ignore) == 1
    np.testing.assert_allclose(ignore[0], [0.175, 0.65, 0.225, 0.75], atol=1e-6)


@pytest.mark.parametrize(
    ("text", "words"),
    [("yolo:x#ignore_below=tall", "not a number"), ("yolo:x#ignore_below=8", "between 0 and 1")],
)
def test_ignore_below_errors_name_the_fix(text, words):
    with pytest.raises(ConfigError, match=words):
        DataSource.parse(text)
    a = DataSource.from_dict({"spec": "yolo:/d#ignore_below=0.1"}, "cfg")
    assert a == DataSource.from_dict({"spec": "yolo:/d", "ignore_below": 0.1}, "cfg")
    assert a.resolved().ignore_below == 0.1
    with pytest.raises(ConfigError, match="cfg: ignore_below"):
        DataSource.from_dict({"spec": "yolo:/d", "ignore_below": [1]}, "cfg")


@pytest.mark.parametrize("weight", ["heavy", True, None, [2]])
def test_a_config_weight_that_is_not_a_number_is_named(weight):
    """A typo in a config's weight was a bare ValueError traceback from float()."""
    with pytest.raises(ConfigError, match=r"cfg: weight=.* is not a number"):
        DataSource.from_dict({"spec": "yolo:/d", "weight": weight}, "cfg")
    assert DataSource.from_dict({"spec": "yolo:/d", "weight": "2.5"}, "cfg").weight == 2.5


def test_unknown_image_key_names_the_file(tmp_path):
    root = _yolo(tmp_path)
    ign = _ignore_file(tmp_path, {"images/other.jpg": [[1, 1, 5, 5]]})
    with pytest.raises(DatasetError, match=r"ignore\.json.*'images/other\.jpg'"):
        load_dataset(f"yolo:{root}", None, ign)


def test_targets_ignore_anchors_on_ignore_boxes(tmp_path):
    from host_tools.ssd.data import TrainImages
    from host_tools.ssd.targets import build_targets

    root = _yolo(tmp_path)
    ign = _ignore_file(tmp_path, {"images/im0.jpg": [[40, 10, 60, 40]]})
    (s,) = [s for s in load_dataset(f"yolo:{root}", None, ign).samples if s.name == "im0.jpg"]
    data = TrainImages([s])
    (boxes,), (ignore,) = data.boxes, data.ignore_boxes
    assert len(boxes) == len(ignore) == 1
    # Anchors: one on the person, two inside the ignore region, one on plain background.
    anchors = np.array(
        [boxes[0], ignore[0], [0.4, 0.7, 0.6, 0.85], [0.0, 0.0, 0.1, 0.1]], np.float32
    )
    cs = np.stack(
        [
            (anchors[:, 0] + anchors[:, 2]) / 2,
            (anchors[:, 1] + anchors[:, 3]) / 2,
            anchors[:, 2] - anchors[:, 0],
            anchors[:, 3] - anchors[:, 1],
        ],
        axis=1,
    )
    _, cls = build_targets(anchors, cs, boxes, np.zeros(1, np.int32), ignore_boxes=ignore)
    assert cls.tolist() == [1, -1, -1, 0]
    _, plain = build_targets(anchors, cs, boxes, np.zeros(1, np.int32))
    assert plain.tolist() == [1, 0, 0, 0]  # without the regions they would be background


def test_cli_on_capston2_images_with_own_model(tmp_path):
    from edgedetect.boxes import box_iou
    from host_tools.ignore_regions import main

    root = need_shared(CAPSTON_TRAIN)
    need_shared(OWN_MODEL)
    names = sorted(p.name for p in (root / "images").iterdir())[:3]
    split = tmp_path / "three.txt"
    split.write_text("\n".join(names) + "\n")
    out, loose = tmp_path / "ignore.json", tmp_path / "loose.json"
    base = [f"--dataset=yolo:{root}#split={split}", "--model", str(OWN_MODEL), "--no-progress"]
    # With no overlap limits the labelled people themselves come back: the model does find people.
    assert main([*base, "--max-iou", "1", "--max-inside", "1", "--out", str(loose)]) == 0
    assert sum(len(b) for b in json.loads(loose.read_text())["images"].values()) > 0
    assert main([*base, "--min-score", "0.6", "--max-iou", "0.3", "--out", str(out)]) == 0
    data = json.loads(out.read_text())
    assert data["max_iou"] == 0.3 and data["models"] == [str(OWN_MODEL.resolve())]
    ds = load_dataset(f"yolo:{root}", split, out)  # every key names an image of the dataset
    assert len(ds) == 3
    for s in ds.samples:
        labels, regions = s.boxes[~s.ignore], s.boxes[s.ignore]
        if len(labels) and len(regions):
            assert box_iou(regions, labels).max() < 0.3
    assert main(["--dataset", f"yolo:{root}", "--model", "nope.tflite", "--out", str(out)]) == 2
    bad = ["--dataset", f"yolo:{tmp_path}/none", "--model", str(OWN_MODEL), "--out", str(out)]
    assert main(bad) == 2


def test_unlabelled_people_skips_matches_parts_and_groups():
    from host_tools.ignore_regions import unlabelled_people

    labelled = np.array([[100, 100, 140, 200]], np.float64)
    dets = np.array(
        [
            [102, 98, 142, 205],  # the labelled person again
            [105, 105, 135, 140],  # a part of them (head and shoulders)
            [0, 0, 300, 300],  # a whole-scene box around them
            [200, 100, 240, 200],  # someone beside them, unlabelled
        ]
    )
    assert unlabelled_people(dets, labelled, 0.3, 0.7).tolist() == [False, False, False, True]
    assert unlabelled_people(dets, labelled[:0], 0.3, 0.7).all()
