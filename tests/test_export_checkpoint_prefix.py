"""``export --weights RUN/checkpoints/ckpt-N`` exports that checkpoint with the run's config.

validate lists each checkpoint by step; exporting one of them by its name said "weights
RUN/checkpoints/ckpt-N not found; run host_tools.import_weights or host_tools.train first",
though the checkpoint was there (its files are ckpt-N.index and ckpt-N.data-*)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow", reason="TensorFlow (host extra) is not installed")

from test_host_tools_errors import TINY  # noqa: E402


def _run_with_two_checkpoints(tmp_path: Path) -> tuple[Path, list[np.ndarray]]:
    """A run folder holding ckpt-1 and ckpt-2 of the tiny model (different weights), and
    ckpt-1's weights."""
    from host_tools.ssd.config import load_config
    from host_tools.ssd.model import build_ssd

    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "config.json").write_text(json.dumps(TINY))
    model = build_ssd(load_config(run / "config.json")).keras_model
    first = [w.copy() for w in model.get_weights()]
    ckpt = tf.train.Checkpoint(model=model)
    ckpt.write(str(run / "checkpoints" / "ckpt-1"))
    model.set_weights([w + 0.5 for w in first])
    ckpt.write(str(run / "checkpoints" / "ckpt-2"))
    return run, first


def test_one_checkpoint_loads_with_its_run_config(tmp_path, capsys):
    from host_tools.export import load_ssd, weights_config

    run, first = _run_with_two_checkpoints(tmp_path)
    prefix = run / "checkpoints" / "ckpt-1"
    config = weights_config(None, prefix)
    assert config == run / "config.json"
    loaded = load_ssd(config, prefix).keras_model.get_weights()
    assert len(loaded) == len(first) > 0
    assert all(np.array_equal(a, b) for a, b in zip(loaded, first, strict=True))


def test_export_cli_takes_a_checkpoint_prefix(tmp_path, capsys):
    from host_tools.export import main

    run, _ = _run_with_two_checkpoints(tmp_path)
    out = tmp_path / "m.tflite"
    args = ["--weights", str(run / "checkpoints" / "ckpt-1"), "--mode", "float32"]
    assert main([*args, "--out", str(out)]) == 0, capsys.readouterr().err
    assert f"config: {run / 'config.json'}" in capsys.readouterr().out
    assert out.stat().st_size > 1000


def test_export_of_the_run_folder_names_the_weights_it_holds(tmp_path, capsys):
    """``--weights RUN`` (the folder train was given) said "no checkpoint in RUN; pass a training
    run's checkpoints/ dir", not which files of that run to pass."""
    from host_tools.export import main

    run, _ = _run_with_two_checkpoints(tmp_path)
    args = ["--weights", str(run), "--mode", "float32", "--out", str(tmp_path / "m.tflite")]
    assert main(args) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines == [
        f"export: error: no checkpoint in {run}; it is a training run: pass one of "
        f"{run / 'checkpoints'}"
    ]


def test_export_of_a_missing_step_lists_the_steps_the_run_has(tmp_path, capsys):
    """``--weights RUN/checkpoints/ckpt-99`` (a step the run does not have) said "not found; run
    host_tools.train first" of a run that has checkpoints, not which ones to pass."""
    from host_tools.export import main

    run, _ = _run_with_two_checkpoints(tmp_path)
    missing = run / "checkpoints" / "ckpt-99"
    args = ["--weights", str(missing), "--mode", "float32", "--out", str(tmp_path / "m.tflite")]
    assert main(args) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines == [
        f"export: error: checkpoint {missing} not found: {run / 'checkpoints'} has ckpt-1, "
        "ckpt-2; pass one of them"
    ]
    assert not (tmp_path / "m.tflite").exists()


def test_a_run_of_consecutive_steps_is_named_as_a_range(tmp_path):
    """Three or more steps in a row read as ``ckpt-1..ckpt-3``, not as a list to count."""
    from host_tools.export import weights_not_found

    folder = tmp_path / "checkpoints"
    folder.mkdir()
    for step in (3, 1, 2):
        (folder / f"ckpt-{step}.index").write_bytes(b"x")
    line = weights_not_found(folder / "ckpt-99")
    missing = folder / "ckpt-99"
    assert line == f"checkpoint {missing} not found: {folder} has ckpt-1..ckpt-3; pass one of them"
