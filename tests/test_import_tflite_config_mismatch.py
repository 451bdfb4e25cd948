"""``host_tools.import_tflite`` with a config whose layers do not fit the file is one line naming
the file, the config and the one to pass. ``--config ssd_mobilenet_v1`` (the depth-1.0 config the
docs name beside the depth-0.75 COCO model) ended in a Keras ``ValueError`` traceback, and a file
of another architecture said ``TFLite model has no tensor ...`` without naming the file."""

from __future__ import annotations

import pytest

pytest.importorskip("tensorflow", reason="TensorFlow (host extra) is not installed")

from conftest import COCO_MODEL, FPNLITE_MODEL, need_shared  # noqa: E402


@pytest.mark.parametrize(
    ("model", "config", "why"),
    [
        (COCO_MODEL, "ssd_mobilenet_v1", "weight shape (3, 3, 3, 32) is not compatible"),
        (FPNLITE_MODEL, "ssd_mobilenet_v1_075_coco", "no tensor 'FeatureExtractor/MobilenetV1/"),
    ],
)
def test_a_config_that_does_not_fit_the_file_is_one_line(tmp_path, capsys, model, config, why):
    from host_tools.import_tflite import main

    path = need_shared(model)
    out = tmp_path / "w.weights.h5"
    assert main(["--tflite", str(path), "--config", config, "--out", str(out)]) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in captured.err, captured.err
    assert lines[0].startswith(f"import_tflite: error: {path} does not fit config "), lines[0]
    assert why in lines[0]
    assert lines[0].endswith(
        "pass the --config of its architecture (ssd_mobilenet_v1_075_coco for the COCO "
        "SSD-MobileNet-v1 quant model), or train from the file as it is with model.arch "
        "'tflite_graph'"
    )
    assert not out.exists()
