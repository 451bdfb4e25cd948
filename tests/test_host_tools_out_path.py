"""An ``--out`` that cannot be written as named is refused before the work, in one line that names
it and the fix. ``export``, ``import_tflite``, ``import_weights``, ``ignore_regions`` and
``convert`` met it only when writing, after the conversion, the import check or the detection run
(minutes on a real model or dataset), and said ``[Errno 21] Is a directory: 'OUT'`` (a folder),
``[Errno 17] File exists: 'FILE'`` (a file where a parent folder should be) or, for a weights
file, ``[Errno 2] No such file or directory: '.OUT.tmp' -> 'OUT'`` (a name without ``.h5``:
Keras had written TensorFlow checkpoint files instead, which were left behind)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

pytest.importorskip("tensorflow", reason="TensorFlow (host extra) is not installed")

from conftest import COCO_MODEL, INRIA_TEST, REPO, need_shared  # noqa: E402
from test_host_tools_errors import untrained_tiny  # noqa: E402

from host_tools.shared_data import PEDESTRIAN_PB  # noqa: E402

ONE_IMAGE = INRIA_TEST / "pos" / "person_138.png"


@pytest.fixture(scope="module")
def tiny_weights(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(config, weights) of an untrained tiny model: export reads them in a second."""
    return untrained_tiny(tmp_path_factory.mktemp("tiny"))


def _export(tiny: tuple[Path, Path], out: Path) -> tuple[Callable[..., int], list[str]]:
    from host_tools.export import main

    config, weights = tiny
    return main, ["--config", str(config), "--weights", str(weights), "--mode", "float32"]


def _import_tflite(tiny: tuple[Path, Path], out: Path) -> tuple[Callable[..., int], list[str]]:
    from host_tools.import_tflite import main

    need_shared(COCO_MODEL)
    args = ["--tflite", str(COCO_MODEL), "--config", "ssd_mobilenet_v1_075_coco"]
    return main, [*args, "--images", str(need_shared(ONE_IMAGE))]


def _import_weights(tiny: tuple[Path, Path], out: Path) -> tuple[Callable[..., int], list[str]]:
    from host_tools.import_weights import main

    return main, ["--pb", str(need_shared(PEDESTRIAN_PB)), "--images", str(need_shared(ONE_IMAGE))]


def _ignore_regions(tiny: tuple[Path, Path], out: Path) -> tuple[Callable[..., int], list[str]]:
    from host_tools.ignore_regions import main

    dataset = f"inria:{need_shared(INRIA_TEST).parent}"
    model = REPO / "models" / "person_ssdlite_int8.tflite"
    return main, ["--dataset", dataset, "--model", str(model), "--no-progress"]


def _convert(tiny: tuple[Path, Path], out: Path) -> tuple[Callable[..., int], list[str]]:
    from host_tools.convert import main

    return main, ["--dataset", f"inria:{need_shared(INRIA_TEST).parent}", "--to", "coco"]


TOOLS = {
    "export": (_export, "person.tflite"),
    "import_tflite": (_import_tflite, "model.weights.h5"),
    "import_weights": (_import_weights, "model.weights.h5"),
    "ignore_regions": (_ignore_regions, "ignore.json"),
    "convert": (_convert, "train.json"),
}


def _run(tool: str, tiny: tuple[Path, Path], out: Path, capsys) -> str:
    """The tool's one error line for ``--out out``; it must have done and printed nothing."""
    main, args = TOOLS[tool][0](tiny, out)
    capsys.readouterr()
    assert main([*args, "--out", str(out)]) == 2
    captured = capsys.readouterr()
    assert captured.out == "", captured.out  # refused before the work, which prints its result
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in captured.err, captured.err
    return lines[0]


@pytest.mark.parametrize("tool", list(TOOLS))
def test_an_out_that_is_a_folder_is_refused_first(tool, tiny_weights, tmp_path, capsys):
    folder = tmp_path / "models"
    folder.mkdir()
    line = _run(tool, tiny_weights, folder, capsys)
    example = folder / TOOLS[tool][1]
    assert (
        line == f"{tool}: error: --out {folder} is a folder; name the file to write, e.g. {example}"
    )


@pytest.mark.parametrize("tool", list(TOOLS))
def test_an_out_under_a_file_is_refused_first(tool, tiny_weights, tmp_path, capsys):
    file = tmp_path / "notes"
    file.write_text("a file, not a folder\n")
    out = file / "sub" / TOOLS[tool][1]
    line = _run(tool, tiny_weights, out, capsys)
    assert line == (
        f"{tool}: error: cannot write --out {out}: {file} is a file, not a folder; "
        "pick another path"
    )


@pytest.mark.parametrize("tool", ["import_tflite", "import_weights"])
def test_a_weights_out_without_h5_is_refused_and_leaves_nothing(
    tool, tiny_weights, tmp_path, capsys
):
    out = tmp_path / "pedestrian"
    line = _run(tool, tiny_weights, out, capsys)
    assert line == f"{tool}: error: --out {out} must end with .h5, e.g. {out}.h5"
    assert list(tmp_path.iterdir()) == []  # no TensorFlow checkpoint files left behind


def test_quantize_out_dir_under_a_file_is_refused_first(tiny_weights, tmp_path, capsys):
    from host_tools.quantize import main

    config, weights = tiny_weights
    file = tmp_path / "notes"
    file.write_text("a file, not a folder\n")
    args = ["--config", str(config), "--weights", str(weights), "--modes", "float32", "--no-eval"]
    capsys.readouterr()
    assert main([*args, "--out-dir", str(file / "q")]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.strip() == (
        f"quantize: error: cannot create --out-dir {file / 'q'}: {file} is a file, not a folder"
    )


def test_a_label_map_that_is_a_folder_is_refused_first(tmp_path, capsys):
    """--label-map naming a folder failed with ``[Errno 21] Is a directory`` after the records
    were written, which were left without their label map."""
    from host_tools.convert import main

    folder = tmp_path / "maps"
    folder.mkdir()
    out = tmp_path / "train.tfrecord"
    args = ["--dataset", f"inria:{need_shared(INRIA_TEST).parent}", "--to", "tfrecord"]
    capsys.readouterr()
    assert main([*args, "--out", str(out), "--label-map", str(folder)]) == 2
    captured = capsys.readouterr()
    assert captured.err.strip() == (
        f"convert: error: --label-map {folder} is a folder; name the file to write, "
        f"e.g. {folder / 'label_map.pbtxt'}"
    )
    assert captured.out == "" and not out.exists()


@pytest.mark.parametrize("below", ["", "run"])
def test_a_train_run_dir_that_is_a_file_is_refused_first(tmp_path, capsys, below):
    """--run-dir naming a file (or a folder under one) read the training data first, minutes
    on a real mix, then said ``[Errno 17] File exists`` (``[Errno 20] Not a directory``)."""
    from test_host_tools_errors import TINY_ARGS

    from host_tools.train import main

    file = tmp_path / "notes"
    file.write_text("a file, not a folder\n")
    run = file / below if below else file
    args = ["--dataset", f"inria:{need_shared(INRIA_TEST).parent}", *TINY_ARGS]
    capsys.readouterr()
    assert main(["--run-dir", str(run), *args]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""  # not a line about the data read
    assert captured.err.strip() == (
        f"train: error: cannot use --run-dir {run}: {file} is a file, not a folder; "
        "pick another path"
    )
