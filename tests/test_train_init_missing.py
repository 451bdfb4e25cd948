"""``host_tools.train --init`` naming a frozen graph that is not there says ``--init``, the option
the user typed. It said ``pass --pb with an OD-API frozen_inference_graph.pb``, the message of
``host_tools.import_weights``, whose ``--pb`` option train does not have (the README's training
command run from another folder than the checkout's root hits it: ``--init ../shared/...``)."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("tensorflow", reason="TensorFlow (host extra) is not installed")

from conftest import PENNFUDAN, need_shared  # noqa: E402
from test_host_tools_errors import TINY  # noqa: E402


@pytest.mark.parametrize("name", ["missing_frozen_inference_graph.pb", "missing.weights.h5"])
def test_missing_init_names_the_init_option(tmp_path, capsys, name):
    from host_tools.train import main

    root = need_shared(PENNFUDAN)
    config = tmp_path / "tiny.json"
    config.write_text(json.dumps(TINY))
    missing = tmp_path / name
    args = ["--config", str(config), "--run-dir", str(tmp_path / "run"), "--init", str(missing)]
    code = main([*args, "--dataset", f"pennfudan:{root}", "--limit", "1", "--no-progress"])
    assert code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"train: error: --init {missing} not found"), lines[0]
    assert "--pb" not in lines[0]


def test_init_weights_of_another_model_name_the_fix(tmp_path, capsys):
    """--init weights of another model said ``cannot load --init W into C (Keras' shape
    error)`` and no more; it now says which options fix it."""
    from host_tools.export import save_weights
    from host_tools.ssd.config import load_config
    from host_tools.ssd.model import build_ssd
    from host_tools.train import main

    root = need_shared(PENNFUDAN)
    config = tmp_path / "tiny.json"
    config.write_text(json.dumps(TINY))
    other = tmp_path / "tiny.weights.h5"
    save_weights(build_ssd(load_config(config)).keras_model, other)
    args = ["--config", "ssd_mobilenet_v1", "--run-dir", str(tmp_path / "run")]
    args += ["--init", str(other), "--dataset", f"pennfudan:{root}", "--limit", "1"]
    assert main([*args, "--no-progress"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"train: error: cannot load --init {other} into "), lines[0]
    assert lines[0].endswith(
        "; pass the --config it was made with, or --init-partial to copy only the layers that match"
    ), lines[0]
