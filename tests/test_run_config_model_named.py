"""``edgedetect run --config X.toml`` with a corrupt model names the config and its ``[model]``
section beside the model, as ``check-config X.toml`` does (one helper builds the detector for
both): it named only the model file, not where its path came from."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import run_edgedetect
from test_service_support import write_config

from edgedetect.service.cli import check_config


def test_run_names_the_config_of_a_corrupt_model_as_check_config_does(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = tmp_path / "corrupt.tflite"
    model.write_bytes(b"this is not a flatbuffer" * 100)
    cfg = write_config(tmp_path, model={"path": str(model), "labels": ""})
    assert check_config(str(cfg)) == 2
    checked = capsys.readouterr().err.strip()
    run = run_edgedetect("run", "--config", str(cfg))
    assert run.returncode == 2, run.stderr[-2000:]
    assert "Traceback" not in run.stderr
    errors = [line for line in run.stderr.splitlines() if line.startswith("edgedetect: error:")]
    assert errors == [checked]
    assert checked.startswith(f"edgedetect: error: {cfg}: [model]: ") and str(model) in checked
