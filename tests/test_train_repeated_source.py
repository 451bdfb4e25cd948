"""The same dataset twice in one training mix (``--dataset X --dataset X``, or twice in a
config's ``data.sources``) was read twice and silently counted double; it is refused in one line
that names it and says how to weight a source instead."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edgedetect.errors import ConfigError
from host_tools.ssd.config import load_config


def test_train_refuses_the_same_dataset_twice(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("tensorflow", reason="TensorFlow (host extra) is not installed")
    from host_tools.train import main

    monkeypatch.chdir(tmp_path)  # ./people and people are one folder of the current one
    run = tmp_path / "run"
    args = ["--dataset", "yolo:people", "--dataset", "yolo:./people", "--run-dir", str(run)]
    assert main([*args, "--steps", "1", "--no-progress"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines == [
        "train: error: --dataset yolo:./people is given twice: its images would count twice; "
        "give it once (with #weight=W to sample it more)"
    ]
    assert not run.exists() or not any(run.iterdir())  # refused before anything was written


def _config(tmp_path: Path, *sources: dict[str, object]) -> Path:
    path = tmp_path / "mix.json"
    path.write_text(json.dumps({"name": "mix", "data": {"sources": list(sources)}}))
    return path


def test_a_config_refuses_the_same_source_twice(tmp_path: Path) -> None:
    path = _config(tmp_path, {"spec": "yolo:data/x"}, {"spec": "yolo:data/x", "weight": 2})
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert str(err.value) == (
        f"{path} [data]: source yolo:data/x is given twice: its images would count twice; "
        'give it once (with "weight": W to sample it more)'
    )


def test_one_dataset_with_two_splits_is_two_sources(tmp_path: Path) -> None:
    path = _config(
        tmp_path,
        {"spec": "yolo:data/x", "split_file": "a.txt"},
        {"spec": "yolo:data/x", "split_file": "b.txt"},
    )
    assert [s.split_file for s in load_config(path).data.sources] == ["a.txt", "b.txt"]
