"""``host_tools.train`` refuses training data without a single person box. A YOLO set whose
``labels/`` folder was missing (every image then reads as person-free) trained without a word:
it logged a loss, wrote ``final.weights.h5`` and exited 0, a detector taught that there are no
people. A person-free source beside one with people still trains (its images are negatives)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

pytest.importorskip("tensorflow", reason="TensorFlow (host extra) is not installed")

from conftest import SHARED, need_shared  # noqa: E402
from test_host_tools_errors import TINY, TINY_ARGS  # noqa: E402

COCO128 = SHARED / "coco_train" / "coco128"
WITH_PEOPLE = ("000000000036", "000000000049")  # coco128 photos whose labels hold people


def _yolo(tmp_path: Path, labels: bool) -> Path:
    """Two real coco128 photos with people and the class map, with or without labels/."""
    src = need_shared(COCO128)
    root = tmp_path / ("labelled" if labels else "unlabelled")
    (root / "images").mkdir(parents=True)
    (root / "labels").mkdir()
    shutil.copy(src / "classes.txt", root / "classes.txt")
    for name in WITH_PEOPLE:
        shutil.copy(src / "images" / "train2017" / f"{name}.jpg", root / "images")
        if labels:
            shutil.copy(src / "labels" / "train2017" / f"{name}.txt", root / "labels")
    return root


def _train(tmp_path: Path, *datasets: Path) -> tuple[int, Path]:
    from host_tools.train import main

    config = tmp_path / "tiny.json"
    config.write_text(json.dumps(TINY))
    run = tmp_path / "run"
    args = ["--config", str(config), "--run-dir", str(run), *TINY_ARGS]
    for root in datasets:
        args += ["--dataset", f"yolo:{root}"]
    return main(args), run


def test_training_data_without_people_is_refused(tmp_path, capsys):
    root = _yolo(tmp_path, labels=False)
    code, run = _train(tmp_path, root)
    captured = capsys.readouterr()
    assert code == 2, captured.out
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in captured.err, captured.err
    assert lines[0] == (
        f"train: error: the training data (yolo:{root}) holds no person box in its 2 images; "
        "put the labels where the reader looks (yolo: ROOT/labels/NAME.txt for "
        "ROOT/images/NAME.jpg) or add a source with people"
    )
    assert not (run / "final.weights.h5").exists()


def test_a_person_free_source_beside_people_trains(tmp_path, capsys):
    code, run = _train(tmp_path, _yolo(tmp_path, labels=True), _yolo(tmp_path, labels=False))
    assert code == 0, capsys.readouterr().err
    assert (run / "final.weights.h5").is_file()
