"""A TensorFlow graph or Keras weights given as ``--model`` is named as such, with the conversion.

The README lists the pedestrian ``frozen_inference_graph.pb`` beside the TFLite models, and
training writes ``.weights.h5``; given to ``detect``, either said "Is it a complete .tflite file?
Re-download or re-export it.", sending the user to download the file again."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import REPO

from edgedetect.cli import main
from edgedetect.errors import ModelError
from edgedetect.runtime import load_interpreter

IMAGE = REPO / "data" / "images" / "astronaut.jpg"


def _frozen_graph(tmp_path: Path) -> Path:
    """Bytes shaped like a GraphDef (a protobuf: field 1, a node), which no TFLite loader takes."""
    path = tmp_path / "frozen_inference_graph.pb"
    path.write_bytes(b"\n\x1a\n\x0cimage_tensor\x12\x0bPlaceholder" + bytes(64))
    return path


def _keras_weights(tmp_path: Path) -> Path:
    """A file that starts as every HDF5 file does (what Keras' .weights.h5 is)."""
    path = tmp_path / "final.weights.h5"
    path.write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(512))
    return path


def test_frozen_graph_is_named_with_its_conversion(tmp_path):
    pb = _frozen_graph(tmp_path)
    with pytest.raises(ModelError) as err:
        load_interpreter(pb)
    msg = str(err.value)
    assert str(pb) in msg and "TensorFlow graph" in msg
    assert "host_tools.import_weights" in msg and "host_tools.export" in msg
    assert "Re-download" not in msg


def test_keras_weights_are_named_with_the_export_command(tmp_path, capsys):
    h5 = _keras_weights(tmp_path)
    assert main(["detect", str(IMAGE), "--model", str(h5)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "Keras weights (HDF5)" in err and f"host_tools.export --weights {h5}" in err
    assert "Re-download" not in err


def test_a_cut_tflite_file_still_gets_the_re_export_hint(tmp_path):
    cut = tmp_path / "cut.tflite"
    cut.write_bytes((REPO / "models" / "person_ssdlite_int8.tflite").read_bytes()[:100_000])
    with pytest.raises(ModelError, match="Is it a complete .tflite file"):
        load_interpreter(cut)


def test_a_saved_model_folder_is_named_with_the_export_command(tmp_path):
    """``host_tools.export --saved-model sm/`` writes a folder; ``--model sm`` said only that it
    was a directory, "pass the model file itself", though the folder holds no model file."""
    folder = tmp_path / "sm"
    (folder / "variables").mkdir(parents=True)
    (folder / "saved_model.pb").write_bytes(b"\n\x02\x08\x01")
    with pytest.raises(ModelError) as err:
        load_interpreter(folder)
    msg = str(err.value)
    assert str(folder) in msg and "SavedModel" in msg and "host_tools.export" in msg


def test_evaluate_names_a_saved_model_folder_too(tmp_path, capsys):
    """evaluate checked ``--model`` itself first and called any folder "a directory, not a model
    file", so the SavedModel hint never reached a host-tools user."""
    from host_tools.evaluate import main as evaluate_main

    folder = tmp_path / "sm"
    (folder / "variables").mkdir(parents=True)
    (folder / "saved_model.pb").write_bytes(b"\n\x02\x08\x01")
    photos = tmp_path / "photos"
    (photos / "images").mkdir(parents=True)
    (photos / "labels").mkdir()
    (photos / "classes.txt").write_text("person\n")
    (photos / "images" / "astronaut.jpg").write_bytes(IMAGE.read_bytes())
    (photos / "labels" / "astronaut.txt").write_text("0 0.37 0.51 0.62 0.97\n")
    args = ["--model", str(folder), "--dataset", f"yolo:{photos}", "--out", str(tmp_path / "o")]
    assert evaluate_main([*args, "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "SavedModel" in err and "host_tools.export" in err
