"""``--images FOLDER`` of ``host_tools.import_tflite`` and ``host_tools.import_weights`` names
this tool's fix; the shared image reader's hint named ``--source dir:``, an option of
``edgedetect``."""

from __future__ import annotations

import pytest

pytest.importorskip("tensorflow", reason="TensorFlow (host extra) is not installed")

from conftest import COCO_MODEL, need_shared  # noqa: E402


@pytest.mark.parametrize("tool", ["import_tflite", "import_weights"])
def test_images_naming_a_folder_names_this_tools_fix(tmp_path, capsys, tool):
    """``--images FOLDER`` said ``... or run on the folder with --source dir:FOLDER``, an option
    of ``edgedetect`` that the importers do not have."""
    from importlib import import_module

    from host_tools.shared_data import PEDESTRIAN_PB

    main = import_module(f"host_tools.{tool}").main
    model = ["--tflite", str(need_shared(COCO_MODEL))] if tool == "import_tflite" else []
    if tool == "import_weights":
        model = ["--pb", str(need_shared(PEDESTRIAN_PB))]
    out = tmp_path / "w.weights.h5"
    assert main([*model, "--images", str(tmp_path), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        f"{tool}: error: --images {tmp_path} is a folder; pass its image files, "
        f"e.g. --images {tmp_path}/*.jpg"
    )
