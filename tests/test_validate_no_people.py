"""``host_tools.validate`` refuses a validation set without any annotated person. Every
checkpoint scored AP 0 (and LAMR 1) on it, so it could rank none: given alone (a YOLO set whose
``labels/`` folder was missing), validate printed ``mean AP50 0.000`` for each checkpoint, called
the last one best, wrote it as ``best.weights.h5`` and exited 0."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

pytest.importorskip("tensorflow", reason="TensorFlow (host extra) is not installed")

from conftest import SHARED, need_shared  # noqa: E402

COCO128 = SHARED / "coco_train" / "coco128"


def _yolo_without_labels(tmp_path: Path) -> Path:
    """Two real coco128 photos with people and the class map, but no labels/ folder."""
    src = need_shared(COCO128)
    root = tmp_path / "val"
    (root / "images").mkdir(parents=True)
    shutil.copy(src / "classes.txt", root / "classes.txt")
    for name in ("000000000036", "000000000049"):  # both hold people in coco128's labels
        labels = (src / "labels" / "train2017" / f"{name}.txt").read_text().splitlines()
        assert any(line.startswith("0 ") for line in labels)
        shutil.copy(src / "images" / "train2017" / f"{name}.jpg", root / "images")
    return root


def _tiny_run(tmp_path: Path) -> Path:
    """A run directory as host_tools.train leaves it: config.json and two checkpoints (an
    untrained tiny model; validate only reads them)."""
    import json

    import tensorflow as tf
    from test_host_tools_errors import TINY

    from host_tools.ssd.config import config_from_dict, save_config
    from host_tools.ssd.model import build_ssd

    run = tmp_path / "run"
    run.mkdir()
    cfg = config_from_dict(json.loads(json.dumps(TINY)))
    save_config(cfg, run / "config.json")
    ckpt = tf.train.Checkpoint(model=build_ssd(cfg).keras_model)
    manager = tf.train.CheckpointManager(ckpt, str(run / "checkpoints"), max_to_keep=3)
    for step in (1, 2):
        manager.save(checkpoint_number=step)
    return run


def test_a_set_without_people_is_refused_in_one_line(tmp_path, capsys):
    from host_tools.validate import main

    root = _yolo_without_labels(tmp_path)
    run = _tiny_run(tmp_path)
    assert main(["--run-dir", str(run), "--dataset", f"yolo:{root}"]) == 2
    assert not (run / "best.weights.h5").exists() and not (run / "validation.json").exists()
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in captured.err, captured.err
    assert lines[0] == (
        f"validate: error: validation set val (yolo:{root}): no annotated person in its 2 "
        "images, so it cannot rank checkpoints; put its labels where the reader looks (yolo: "
        "ROOT/labels/NAME.txt for ROOT/images/NAME.jpg) or leave the set out"
    )


def test_a_set_with_people_is_read(tmp_path):
    from host_tools.validate import parse_val_sets

    root = _yolo_without_labels(tmp_path)
    shutil.copytree(COCO128 / "labels" / "train2017", root / "labels")
    sets = parse_val_sets(None, f"yolo:{root}", None)
    assert len(sets["val"]) == 2 and sets["val"].num_boxes > 0
