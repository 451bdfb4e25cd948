"""``host_tools.compare`` tells apart reports of one model under a camera condition or tiles.

The README's table compares a model clean and "the same at night (``--condition night_ir``)";
compare printed such reports (and a ``--tiles 2x2`` one) as rows of the same model name."""

from __future__ import annotations

from conftest import REPO, astronaut_yolo_set

from host_tools.compare import main as compare_main
from host_tools.evaluate import run_evaluation

MODEL = REPO / "models" / "person_ssdlite_int8.tflite"


def test_rows_name_the_condition_and_the_tiles(tmp_path, capsys):
    spec = f"yolo:{astronaut_yolo_set(tmp_path)}"
    runs = [("clean", None, "off"), ("night", "night_ir", "off"), ("tiled", None, "2x2")]
    for name, condition, tiles in runs:
        out = tmp_path / name
        run_evaluation(MODEL, spec, out, progress=False, condition=condition, tiles=tiles)
    assert compare_main([str(tmp_path / run[0]) for run in runs]) == 0
    rows = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("| person")]
    names = [row.split(" | ")[0].removeprefix("| ") for row in rows]
    assert names == [
        "person_ssdlite_int8.tflite",
        "person_ssdlite_int8.tflite (night_ir)",
        "person_ssdlite_int8.tflite (tiles 2x2)",
    ]
