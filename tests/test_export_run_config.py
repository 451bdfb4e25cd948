"""``host_tools.export`` and ``host_tools.quantize`` without ``--config`` take the config of the
training run that holds ``--weights`` (``RUN/config.json``), and say so. They took the default
config: the docs' own ``export --weights runs/ft/final.weights.h5 --mode int8`` calibrated on
Penn-Fudan instead of the run's ``data.sources`` with the default's postprocess, without a word,
and a run of another model failed with ``cannot load weights ... was it made with this
config?``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("tensorflow", reason="TensorFlow (host extra) is not installed")

from test_host_tools_errors import TINY  # noqa: E402


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run directory as host_tools.train leaves it: config.json, a checkpoint and final
    weights (an untrained tiny model: only its shapes matter here)."""
    import tensorflow as tf

    from host_tools.export import save_weights
    from host_tools.ssd.config import config_from_dict, save_config
    from host_tools.ssd.model import build_ssd

    run = tmp_path_factory.mktemp("run")
    cfg = config_from_dict(json.loads(json.dumps(TINY)))
    save_config(cfg, run / "config.json")
    ssd = build_ssd(cfg)
    tf.train.CheckpointManager(
        tf.train.Checkpoint(model=ssd.keras_model), str(run / "checkpoints"), max_to_keep=1
    ).save(checkpoint_number=1)
    save_weights(ssd.keras_model, run / "final.weights.h5")
    return run


@pytest.mark.parametrize("weights", ["final.weights.h5", "checkpoints"])
def test_export_takes_the_config_of_the_run_holding_the_weights(run, tmp_path, capsys, weights):
    from host_tools.export import main

    out = tmp_path / "m.tflite"
    code = main(["--weights", str(run / weights), "--mode", "float32", "--out", str(out)])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    lines = captured.out.strip().splitlines()
    assert lines[0] == f"config: {run / 'config.json'} (the run's own; --config to use another)"
    assert out.is_file()


def test_quantize_takes_the_config_of_the_run_holding_the_weights(run, tmp_path, capsys):
    from host_tools.quantize import main

    args = ["--weights", str(run / "final.weights.h5"), "--modes", "float32", "--no-eval"]
    code = main([*args, "--out-dir", str(tmp_path / "q")])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert f"config: {run / 'config.json'} (the run's own" in captured.out
    assert (tmp_path / "q" / f"{TINY['name']}_float32.tflite").is_file()


def test_weights_outside_a_run_keep_the_default_config(tmp_path):
    from host_tools.export import weights_config

    loose = tmp_path / "w.weights.h5"
    loose.write_bytes(b"")
    assert weights_config(None, loose) == "ssdlite_mobilenet_v2"
    assert weights_config("ssd_mobilenet_v2", loose) == "ssd_mobilenet_v2"
