"""Converters: COCO json and OD-API TFRecord round trips, and the convert CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from host_tools.convert import main as convert_main
from host_tools.datasets import Sample, load_dataset
from host_tools.datasets.coco import write_coco_json

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
PENNFUDAN = SHARED / "pennfudan" / "PennFudanPed"


def _samples(tmp_path: Path) -> list[Sample]:
    rng = np.random.default_rng(0)
    out = []
    for i, (w, h) in enumerate([(80, 60), (50, 90)]):
        p = tmp_path / "imgs" / ("sub" if i else "") / f"s{i}.png"
        p.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(p), rng.integers(0, 255, (h, w, 3), dtype=np.uint8))
        boxes = [[5.5, 4, 30, 50], [40, 10, 49.5, 55]] if i == 0 else []
        ignore = [False, True] if i == 0 else []
        out.append(Sample(p, w, h, np.array(boxes), np.array(ignore, bool)))
    return out


def test_coco_json_round_trip(tmp_path):
    samples = _samples(tmp_path)
    images_dir = write_coco_json(samples, tmp_path / "out" / "a.json")
    data = json.loads((tmp_path / "out" / "a.json").read_text())
    assert [c["name"] for c in data["categories"]] == ["person"]
    assert data["annotations"][0]["bbox"] == [5.5, 4.0, 24.5, 46.0]
    assert [a["iscrowd"] for a in data["annotations"]] == [0, 1]
    back = load_dataset(f"coco:{tmp_path / 'out' / 'a.json'}:{images_dir}").samples
    assert [s.image_path.resolve() for s in back] == [s.image_path.resolve() for s in samples]
    for a, b in zip(samples, back, strict=True):
        np.testing.assert_allclose(a.boxes, b.boxes)
        assert a.ignore.tolist() == b.ignore.tolist()
        assert (a.width, a.height) == (b.width, b.height)


def test_tfrecord_round_trip_od_api_schema(tmp_path):
    pytest.importorskip("tensorflow", reason="TFRecord conversion needs TensorFlow (host extra)")
    from host_tools.datasets.tfrecord import read_tfrecord, write_tfrecord

    samples = _samples(tmp_path)
    out, label_map = write_tfrecord(samples, tmp_path / "t" / "d.tfrecord")
    assert label_map.read_text().count("item {") == 1 and 'name: "person"' in label_map.read_text()
    assert "id: 1" in label_map.read_text()
    records = list(read_tfrecord(out))
    assert len(records) == 2
    for s, r in zip(samples, records, strict=True):
        assert r.encoded == s.image_path.read_bytes()  # stored as on disk, not re-encoded
        assert r.format == "png" and r.filename == s.name
        assert (r.width, r.height) == (s.width, s.height)
        np.testing.assert_allclose(r.boxes, s.boxes, atol=1e-4)
        assert r.class_text == ["person"] * len(s.boxes)
        assert r.class_label.tolist() == [1] * len(s.boxes)
        assert r.is_crowd.tolist() == s.ignore.tolist()
    assert [r.source_id for r in records] == ["1", "2"]


def test_tfrecord_keys_are_the_od_api_ones(tmp_path):
    tf = pytest.importorskip(
        "tensorflow", reason="TFRecord conversion needs TensorFlow (host extra)"
    )
    from host_tools.datasets.tfrecord import write_tfrecord

    out, _ = write_tfrecord(_samples(tmp_path)[:1], tmp_path / "k.tfrecord")
    raw = next(iter(tf.data.TFRecordDataset(str(out)).as_numpy_iterator()))
    keys = set(tf.train.Example.FromString(raw).features.feature)
    need = {
        "image/encoded",
        "image/format",
        "image/height",
        "image/width",
        "image/filename",
        "image/source_id",
        "image/object/bbox/xmin",
        "image/object/bbox/xmax",
        "image/object/bbox/ymin",
        "image/object/bbox/ymax",
        "image/object/class/text",
        "image/object/class/label",
    }
    assert need <= keys
    f = tf.train.Example.FromString(raw).features.feature
    assert list(f["image/object/bbox/xmin"].float_list.value) == pytest.approx([5.5 / 80, 40 / 80])


def test_convert_cli_pennfudan_to_coco(tmp_path, capsys):
    if not PENNFUDAN.exists():
        pytest.skip(f"shared data not found: {PENNFUDAN}")
    split = tmp_path / "split.txt"
    split.write_text("FudanPed00001.png\nPennPed00010.png\n")
    rc = convert_main(
        [
            "--dataset",
            f"pennfudan:{PENNFUDAN}",
            "--split-file",
            str(split),
            "--to",
            "coco",
            "--out",
            str(tmp_path / "pf.json"),
        ]
    )
    assert rc == 0
    out = capsys.readouterr().out
    spec = out.strip().splitlines()[-1].split("--dataset ", 1)[1]
    back = load_dataset(spec)
    orig = load_dataset(f"pennfudan:{PENNFUDAN}", split)
    assert [s.name for s in back] == [s.name for s in orig]
    for a, b in zip(orig, back, strict=True):
        np.testing.assert_allclose(a.boxes, b.boxes)


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--dataset", "kitti:/x"], "unknown dataset spec"),
        (["--dataset", "pennfudan:/no/such/dir"], "is not a directory"),
    ],
)
def test_convert_cli_errors_exit_2_one_line(tmp_path, capsys, args, words):
    rc = convert_main([*args, "--to", "coco", "--out", str(tmp_path / "x.json")])
    assert rc == 2
    err = capsys.readouterr().err
    assert words in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_convert_takes_split_and_ignore_options_as_the_other_tools_do(tmp_path, capsys):
    """`--dataset SPEC#split=F#ignore=I` (the form of evaluate, train and validate) was read as a
    folder named 'ROOT#split=F#ignore=I' ("is not a directory"), so an ignore file, which the
    converter writes as iscrowd, could not be given at all."""
    root = tmp_path / "set"
    (root / "images").mkdir(parents=True)
    (root / "labels").mkdir()
    (root / "classes.txt").write_text("person\n")
    for name in ("a", "b"):
        cv2.imwrite(str(root / "images" / f"{name}.png"), np.zeros((40, 60, 3), np.uint8))
        (root / "labels" / f"{name}.txt").write_text("0 0.5 0.5 0.2 0.4\n")
    split = tmp_path / "split.txt"
    split.write_text("b.png\n")
    ignore = tmp_path / "ignore.json"
    ignore.write_text(json.dumps({"images": {"images/b.png": [[1, 2, 11, 22]]}}))
    out = tmp_path / "b.json"
    spec = f"yolo:{root}#split={split}#ignore={ignore}"
    assert convert_main(["--dataset", spec, "--to", "coco", "--out", str(out)]) == 0
    back = load_dataset(capsys.readouterr().out.strip().splitlines()[-1].split("--dataset ")[1])
    assert [s.name for s in back] == ["b.png"]
    np.testing.assert_allclose(back.samples[0].boxes, [[24, 12, 36, 28], [1, 2, 11, 22]])
    assert back.samples[0].ignore.tolist() == [False, True]


def test_convert_to_tfrecord_keeps_tensorflow_start_up_lines_off_the_screen(tmp_path):
    """`convert --to tfrecord` imported TensorFlow bare: its C++ start-up lines (CPU features,
    CUDA stubs) filled the screen before the one line the tool prints, as train's once did."""
    images = tmp_path / "imgs"
    images.mkdir()
    cv2.imwrite(str(images / "a.png"), np.zeros((40, 30, 3), np.uint8))
    (images / "a.txt").write_text("0 0.5 0.5 0.4 0.6\n")
    (images / "classes.txt").write_text("person\n")
    out = tmp_path / "a.tfrecord"
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("EDGEDETECT_VERBOSE", "TF_CPP_MIN_LOG_LEVEL")
    }
    res = subprocess.run(
        [sys.executable, "-m", "host_tools.convert", "--dataset", f"yolo:{images}"]
        + ["--to", "tfrecord", "--out", str(out)],
        capture_output=True,
        text=True,
        env=env,
        cwd=Path(__file__).resolve().parents[1],
        timeout=300,
    )
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith(f"wrote {out}: 1 images, 1 person boxes"), res.stdout
    assert res.stderr == "", res.stderr
