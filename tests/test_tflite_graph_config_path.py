"""A config's ``model.graph`` resolves against the checkout, as its data sources do.

The shipped config ``person_ssdlite_int8_mix_objects`` names ``models/person_ssdlite_int8.tflite``;
``host_tools.train --config person_ssdlite_int8_mix_objects`` (or export, validate) run from any
folder but the checkout's root stopped with ``TFLite graph models/person_ssdlite_int8.tflite not
found``, while the same config's data sources were found."""

from __future__ import annotations

import pytest

pytest.importorskip("tensorflow", reason="TensorFlow (host extra) is not installed")

from conftest import REPO  # noqa: E402


def test_shipped_tflite_graph_config_builds_from_another_folder(tmp_path, monkeypatch):
    from host_tools.ssd.config import load_config
    from host_tools.ssd.model import build_ssd

    monkeypatch.chdir(tmp_path)
    cfg = load_config("person_ssdlite_int8_mix_objects")
    assert cfg.model.graph == "models/person_ssdlite_int8.tflite"  # relative, as shipped
    assert (REPO / cfg.model.graph).is_file()
    ssd = build_ssd(cfg)
    assert ssd.anchors.shape[0] == int(ssd.keras_model.outputs[0].shape[1]) > 0
