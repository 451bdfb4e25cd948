"""A weights file that is no whole Keras ``.weights.h5`` (empty, cut short, a ``.tflite`` given
by mistake) is named as what it is. ``export --weights`` and ``train --init`` said ``cannot load
weights W into C (Unable to synchronously open file (file signature not found)); was it made with
this config?``, sending the user after the config instead of the file."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("tensorflow", reason="TensorFlow (host extra) is not installed")

from conftest import PENNFUDAN, REPO, need_shared  # noqa: E402
from test_host_tools_errors import untrained_tiny  # noqa: E402

FIX = "no Keras .weights.h5 file; pass the one host_tools.train or an importer wrote"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, bytes]:
    """(config, bytes of its untrained weights file)."""
    config, weights = untrained_tiny(tmp_path_factory.mktemp("tiny"))
    return config, weights.read_bytes()


def _bad_weights(tmp_path: Path, kind: str, whole: bytes) -> tuple[Path, str]:
    """A broken weights file of ``kind`` and the start of what the error must say about it."""
    path = tmp_path / "w.weights.h5"
    if kind == "empty":
        path.write_bytes(b"")
        return path, f"is empty (0 bytes): {FIX}"
    if kind == "tflite":
        data = (REPO / "models" / "person_ssdlite_int8.tflite").read_bytes()
        path.write_bytes(data)
        return path, f"is not an HDF5 file ({len(data)} bytes): {FIX}"
    path.write_bytes(whole[:5000])
    return path, "is cut short (Unable to synchronously open file (truncated file"


@pytest.mark.parametrize("kind", ["empty", "tflite", "cut"])
def test_export_names_a_broken_weights_file(tiny, tmp_path, capsys, kind):
    from host_tools.export import main

    config, whole = tiny
    weights, says = _bad_weights(tmp_path, kind, whole)
    args = ["--config", str(config), "--weights", str(weights), "--mode", "float32"]
    assert main([*args, "--out", str(tmp_path / "m.tflite")]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"export: error: weights {weights} {says}"), lines[0]
    assert "was it made with this config" not in lines[0]


def test_train_names_a_broken_init_file(tiny, tmp_path, capsys):
    from host_tools.train import main

    config, whole = tiny
    weights, says = _bad_weights(tmp_path, "empty", whole)
    args = ["--config", str(config), "--run-dir", str(tmp_path / "run"), "--init", str(weights)]
    args += ["--dataset", f"pennfudan:{need_shared(PENNFUDAN)}", "--limit", "1", "--no-progress"]
    assert main(args) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines == [f"train: error: --init {weights} {says} (or a run's checkpoints/ folder)"]
