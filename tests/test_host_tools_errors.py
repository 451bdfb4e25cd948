"""Host tools: a resumed run keeps its own config, a run directory holds one run, and every user
mistake found by testing (TensorFlow file errors, config values, non-positive options, odd boxes) is
one line and exit code 2 instead of a traceback or a silent wrong run.

The training runs are tiny on purpose (a 64 px MobileNetV1 at depth 0.25, 2 images, 2 steps)."""

from __future__ import annotations

import csv
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

tf = pytest.importorskip("tensorflow", reason="TensorFlow (host extra) is not installed")

from conftest import INRIA_TEST, PENNFUDAN, REPO, SHARED, need_shared  # noqa: E402

from edgedetect.errors import ConfigError, EdgeDetectError  # noqa: E402
from host_tools.datasets import DatasetError, load_dataset  # noqa: E402

TINY: dict[str, Any] = {
    "name": "tiny_v1_64",
    "model": {
        "arch": "ssd_mobilenet_v1",
        "input_size": 64,
        "depth_multiplier": 0.25,
        "extra_depths": [32, 32, 32, 32],
        "head_kernel_size": 1,
    },
    "train": {"batch_size": 2, "steps": 2, "warmup_steps": 1, "checkpoint_every": 1},
}
TINY_ARGS = ["--init", "none", "--limit", "2", "--no-progress"]


def untrained_tiny(base: Path) -> tuple[Path, Path]:
    """(config, weights) of an untrained TINY model written in ``base``: export and the other
    tools read them in a second, with no training run."""
    from host_tools.export import save_weights
    from host_tools.ssd.config import load_config
    from host_tools.ssd.model import build_ssd

    config = base / "tiny.json"
    config.write_text(json.dumps(TINY))
    weights = base / "tiny.weights.h5"
    save_weights(build_ssd(load_config(config)).keras_model, weights)
    return config, weights


def _one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> tuple[Path, Path]:
    """(config path, run dir) of a 2-step run on 2 Penn-Fudan train images, with --dataset."""
    from host_tools.train import main

    root = need_shared(PENNFUDAN)
    base = tmp_path_factory.mktemp("tiny")
    config = base / "tiny.json"
    config.write_text(json.dumps(TINY))
    run = base / "run"
    # The batch size comes from the command line and the data from --dataset: a resume without
    # them must take both from the run's config.json, not from the defaults.
    args = ["--config", str(config), "--run-dir", str(run), "--batch-size", "1"]
    assert main([*args, "--dataset", f"pennfudan:{root}", *TINY_ARGS]) == 0
    return config, run


def _copy(run: Path, tmp_path: Path) -> Path:
    dest = tmp_path / "run"
    shutil.copytree(run, dest)
    return dest


def _snapshot(run: Path) -> dict[str, bytes]:
    return {str(p.relative_to(run)): p.read_bytes() for p in sorted(run.rglob("*")) if p.is_file()}


# ----------------------------------------------------------------------------- 1. --resume
def test_resume_without_config_continues_with_the_runs_own_config(tiny_run, tmp_path, capsys):
    """It took the default ssdlite config, overwrote config.json and crashed (another arch) or
    went on with the default batch, steps and data (the same arch)."""
    from host_tools.train import main

    run = _copy(tiny_run[1], tmp_path)
    saved = json.loads((run / "config.json").read_text())
    capsys.readouterr()
    assert (
        main(["--run-dir", str(run), "--resume", "--steps", "3", "--limit", "2", "--no-progress"])
        == 0
    )
    out = capsys.readouterr().out
    assert "tiny_v1_64, 2 images, steps 2->3, batch 1, resumed from" in out
    assert "resume: changed from" in out and "train.steps 2 -> 3" in out
    assert "pennfudan_train.txt" not in out  # the run's --dataset, not the default split
    assert saved["train"]["batch_size"] == 1 and saved["data"]["sources"]  # recorded by the run
    after = json.loads((run / "config.json").read_text())
    assert after["model"] == saved["model"] and after["data"] == saved["data"]
    assert after["train"]["steps"] == 3 and after["train"]["batch_size"] == 1
    rows = list(csv.DictReader((run / "log.csv").open()))
    assert [int(r["step"]) for r in rows] == [1, 2, 3]


def test_resume_of_a_finished_run_says_there_is_nothing_to_train(tiny_run, tmp_path, capsys):
    """It printed 'steps 2->2', read the data, wrote final.weights.h5 again and exited 0
    without a word that nothing had been trained."""
    from host_tools.train import main

    run = _copy(tiny_run[1], tmp_path)
    before = _snapshot(run)
    mtime = (run / "final.weights.h5").stat().st_mtime_ns
    capsys.readouterr()
    assert main(["--run-dir", str(run), "--resume", "--limit", "2", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert (
        f"the run finished its 2 steps: nothing to train; its weights are {run}/final.weights.h5 "
        "(to train on, resume with a longer --steps)"
    ) in out
    assert _snapshot(run) == before and (run / "final.weights.h5").stat().st_mtime_ns == mtime


def test_resume_with_another_models_config_is_refused_and_leaves_config_json(
    tiny_run, tmp_path, capsys
):
    from host_tools.train import main

    run = _copy(tiny_run[1], tmp_path)
    before = _snapshot(run)
    args = ["--config", "ssdlite_mobilenet_v2", "--run-dir", str(run), "--resume", "--steps", "4"]
    assert main([*args, "--limit", "2", "--no-progress"]) == 2
    line = _one_line(capsys.readouterr().err)
    assert "model.arch" in line and "leave out --config" in line
    assert _snapshot(run) == before  # config.json, log.csv and checkpoints untouched


def test_resume_without_config_json_asks_for_the_config(tmp_path, capsys):
    from host_tools.train import main

    args = ["--run-dir", str(tmp_path / "new"), "--resume", "--steps", "1", "--batch-size", "1"]
    assert main([*args, *TINY_ARGS]) == 2
    assert "pass --config" in _one_line(capsys.readouterr().err)


@pytest.mark.parametrize("option", ["--stop-after", "--steps"])
def test_resume_to_a_step_behind_the_run_is_refused(tiny_run, tmp_path, capsys, option):
    """The run is at step 2: --resume --stop-after 1 (or --steps 1) trained nothing, saved the
    step-2 weights as ckpt-1 over the real step-1 checkpoint, made it the latest and exited 0;
    validate then scored step-2 weights as step 1."""
    from host_tools.train import main

    run = _copy(tiny_run[1], tmp_path)
    before = _snapshot(run)
    args = ["--run-dir", str(run), "--resume", option, "1", "--limit", "2", "--no-progress"]
    assert main(args) == 2
    line = _one_line(capsys.readouterr().err)
    assert line == (
        f"train: error: --resume: the run is at step 2 ({run / 'checkpoints' / 'ckpt-2'}); "
        "ending at step 1 would train nothing and overwrite checkpoint 1: pass --steps and "
        "--stop-after above 2"
    )
    assert _snapshot(run) == before


def test_resume_with_init_weights_is_refused(tiny_run, tmp_path, capsys):
    """--resume --init OTHER went on from the run's checkpoint and never read OTHER, silently:
    the user believed the run restarted from those weights."""
    from host_tools.train import main

    run = _copy(tiny_run[1], tmp_path)
    before = _snapshot(run)
    other = tmp_path / "other.weights.h5"
    shutil.copy(run / "final.weights.h5", other)
    args = ["--run-dir", str(run), "--resume", "--init", str(other), "--limit", "2"]
    assert main([*args, "--steps", "3", "--no-progress"]) == 2
    line = _one_line(capsys.readouterr().err)
    assert line == (
        f"train: error: --init {other}: the run resumes from its checkpoint "
        f"{run / 'checkpoints' / 'ckpt-2'}, not from other weights; drop --init, or start a new "
        "--run-dir from them"
    )
    assert _snapshot(run) == before


# ----------------------------------------------------------------------------- 2. one run per dir
def test_training_into_a_run_with_checkpoints_is_refused(tiny_run, tmp_path, capsys):
    """It truncated log.csv, replaced config.json and final weights and left the old checkpoints
    beside the new ones, which validate then scored as one run."""
    from host_tools.train import main

    config, orig = tiny_run
    run = _copy(orig, tmp_path)
    before = _snapshot(run)
    assert main(["--config", str(config), "--run-dir", str(run), "--steps", "2", *TINY_ARGS]) == 2
    line = _one_line(capsys.readouterr().err)
    assert line == (
        f"train: error: {run} already holds checkpoints of a run; "
        "pass --resume to continue it or pick a new --run-dir"
    )
    assert _snapshot(run) == before


# ----------------------------------------------------------------------------- 3. TF file errors
def test_tensorflow_file_errors_are_one_line_and_others_still_raise(capsys):
    from host_tools._cli import cli_errors

    @cli_errors("tool")
    def denied() -> int:
        raise tf.errors.PermissionDeniedError(
            None, None, "{{function_node __wrapped__SaveV2}} /r/ckpt-3_temp; Permission denied"
        )

    assert denied() == 2
    line = _one_line(capsys.readouterr().err)
    assert line == "tool: error: /r/ckpt-3_temp; Permission denied (PermissionDeniedError)"

    @cli_errors("tool")
    def bug() -> int:
        raise tf.errors.InvalidArgumentError(None, None, "Incompatible shapes: [2] vs. [3]")

    with pytest.raises(tf.errors.InvalidArgumentError):
        bug()


def test_cli_module_does_not_import_tensorflow():
    code = "import sys, host_tools._cli; print('tensorflow' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "False"


def test_convert_to_a_directory_is_one_line(tmp_path, capsys):
    from host_tools.convert import main

    out = tmp_path / "out.tfrecord"
    out.mkdir()
    args = ["--dataset", f"pennfudan:{need_shared(PENNFUDAN)}", "--to", "tfrecord"]
    assert main([*args, "--out", str(out)]) == 2
    line = _one_line(capsys.readouterr().err)
    assert line.startswith(f"convert: error: --out {out} is a folder; name the file"), line


def test_export_saved_model_onto_a_file_is_one_line(tiny_run, tmp_path, capsys):
    from host_tools.export import main

    config, run = tiny_run
    target = tmp_path / "a_file"
    target.write_text("not a folder")
    args = ["--config", str(config), "--weights", str(run / "final.weights.h5")]
    args += ["--mode", "float32", "--out", str(tmp_path / "m.tflite"), "--saved-model", str(target)]
    assert main(args) == 2
    line = _one_line(capsys.readouterr().err)
    assert f"{target} is not a directory" in line


@pytest.mark.parametrize(
    ("labels", "words"),
    [("", "an empty class name"), ("person,", "an empty class name"), ("person,car", "2 names")],
)
def test_export_labels_must_name_the_models_classes(tiny_run, tmp_path, capsys, labels, words):
    """export --labels "" (or a trailing comma) wrote a label file every tool then refused ("has
    no labels"), and --labels person,car for a one-class model one they warn about, both after a
    successful conversion and exit 0."""
    from host_tools.export import main

    config, run = tiny_run
    args = ["--config", str(config), "--weights", str(run / "final.weights.h5")]
    out = tmp_path / "m.tflite"
    assert main([*args, "--mode", "float32", "--labels", labels, "--out", str(out)]) == 2
    line = _one_line(capsys.readouterr().err)
    assert "--labels" in line and words in line and "1 class" in line, line
    assert list(tmp_path.iterdir()) == []


def test_a_config_source_that_cannot_be_read_names_the_config(tmp_path, capsys):
    """A bad path in a config's data.sources said only "inria dataset root /nope is not a
    directory", not which config named it (the run's config.json on a --resume, say)."""
    from host_tools.train import main

    config = tmp_path / "mix.json"
    missing = tmp_path / "nope"
    config.write_text(json.dumps({**TINY, "data": {"sources": [{"spec": f"inria:{missing}"}]}}))
    args = ["--config", str(config), "--run-dir", str(tmp_path / "run"), "--init", "none"]
    assert main([*args, "--no-progress"]) == 2
    line = _one_line(capsys.readouterr().err)
    assert line.startswith(f"train: error: config {config}, data.sources: "), line
    assert str(missing) in line and "is not a directory" in line


def test_int8_export_prints_no_converter_lines(tiny_run, tmp_path, capfd):
    """export --mode int8 printed TensorFlow's C++ "fully_quantize: 0, inference_type: 6, ..."
    line to stderr around its own output; the converter's errors still come in its exception."""
    from host_tools.export import main

    config, run = tiny_run
    args = ["--config", str(config), "--weights", str(run / "final.weights.h5")]
    out = tmp_path / "m.tflite"
    assert main([*args, "--mode", "int8", "--calibration", "2", "--out", str(out)]) == 0
    captured = capfd.readouterr()
    assert out.is_file() and f"wrote {out}" in captured.out
    assert "fully_quantize" not in captured.err and "inference_type" not in captured.err, (
        captured.err
    )


def test_quantize_names_the_classes_as_export_does(tiny_run, tmp_path, capsys):
    """quantize wrote "person" as the label file of every model it made, whatever its classes
    (export takes --labels); now it takes --labels too, checked before any conversion."""
    from host_tools.quantize import main

    config, run = tiny_run
    args = ["--config", str(config), "--weights", str(run / "final.weights.h5"), "--no-eval"]
    out = tmp_path / "q"
    assert main([*args, "--out-dir", str(out), "--modes", "float32", "--labels", "human"]) == 0
    (model,) = out.glob("*.tflite")
    assert model.with_name(model.stem + ".labels.txt").read_text() == "human\n"
    wrong = tmp_path / "q2"
    assert main([*args, "--out-dir", str(wrong), "--labels", "person,car"]) == 2
    line = _one_line(capsys.readouterr().err)
    assert "--labels" in line and "2 names" in line and "1 class" in line, line
    assert not wrong.exists()


def test_int8_calibration_from_a_missing_training_set_says_where_it_comes_from(
    tiny_run, tmp_path, capsys
):
    """A run's config.json made on another machine names training sets that are not here: int8
    export said only "yolo dataset root /home/.../train is not a directory", not that it wanted
    them as calibration images from the config's data.sources, nor how to do without."""
    from host_tools.export import main

    config, run = tiny_run
    cfg = json.loads(config.read_text())
    cfg["data"] = {"sources": [{"spec": f"yolo:{tmp_path / 'elsewhere'}"}]}
    moved = tmp_path / "moved.json"
    moved.write_text(json.dumps(cfg))
    args = ["--config", str(moved), "--weights", str(run / "final.weights.h5"), "--mode", "int8"]
    assert main([*args, "--out", str(tmp_path / "m.tflite")]) == 2
    line = _one_line(capsys.readouterr().err)
    assert line == (
        "export: error: int8 calibration reads the config's data.sources: "
        f"yolo dataset root {tmp_path / 'elsewhere'} is not a directory; point them at the "
        "training sets here, or remove data to calibrate on the Penn-Fudan train split"
    )


def _file_size_limit(limit: int):
    """A limit on the size of every file the child writes (SIGXFSZ ignored, as Python does: a
    write past it fails with EFBIG), to stand in for a disk that is full."""

    def apply() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


def test_export_without_room_for_the_converters_saved_model_is_refused(tiny_run, tmp_path):
    """The TFLite converter first writes the graph as a temporary SavedModel; when it cannot (a
    full temporary folder) it silently freezes the graph instead, which keeps the placeholder
    body of the postprocess function: export wrote a 636-byte model whose four outputs are
    constant zeros, over the old model, and exited 0."""
    config, run = tiny_run
    out = tmp_path / "m.tflite"
    out.write_bytes(b"the model that was here")
    args = ["--config", str(config), "--weights", str(run / "final.weights.h5")]
    proc = subprocess.run(
        [sys.executable, "-m", "host_tools.export", *args, "--mode", "float32", "--out", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        preexec_fn=_file_size_limit(100_000),
    )
    assert proc.returncode == 2, proc.stdout + proc.stderr
    line = _one_line(proc.stderr)
    assert "TFLite_Detection_PostProcess" in line and "free space" in line
    assert out.read_bytes() == b"the model that was here"


@pytest.mark.parametrize("tool", ["train", "export", "validate"])
def test_a_checkpoint_cut_short_is_one_line(tiny_run, tmp_path, capsys, tool):
    """A checkpoint whose data file was cut short (a save on a full disk, an interrupted copy)
    was an IndexError traceback ("Read less bytes than requested") and exit 1 in train --resume,
    export --weights CHECKPOINTS and validate."""
    import importlib

    config, orig = tiny_run
    run = _copy(orig, tmp_path)
    data = run / "checkpoints" / "ckpt-2.data-00000-of-00001"
    data.write_bytes(data.read_bytes()[:1000])
    args = {
        "train": ["--run-dir", str(run), "--resume", "--steps", "3", "--limit", "2"],
        "export": ["--config", str(config), "--weights", str(run / "checkpoints")],
        "validate": ["--run-dir", str(run), "--dataset", f"inria:{need_shared(INRIA_TEST)}"],
    }[tool]
    if tool == "export":
        args += ["--mode", "float32", "--out", str(tmp_path / "m.tflite")]
    if tool == "train":
        args += ["--no-progress"]
    assert importlib.import_module(f"host_tools.{tool}").main(args) == 2
    line = _one_line(capsys.readouterr().err)
    assert f"{run / 'checkpoints'}" in line and "cut short" in line, line
    assert not (tmp_path / "m.tflite").exists()


def test_validate_with_a_listed_checkpoint_whose_files_are_gone_is_one_line(
    tiny_run, tmp_path, capsys
):
    """A checkpoint deleted by hand but still listed in checkpoints/checkpoint: validate printed
    TensorFlow's two-line message ("... Failed to find any matching files for RUN/checkpoints/
    ckpt-1\nPlease double-check that the path is correct...") and asked whether the checkpoint
    was made with this config."""
    from host_tools.validate import main

    run = _copy(tiny_run[1], tmp_path)
    for f in (run / "checkpoints").glob("ckpt-1.*"):
        f.unlink()
    assert main(["--run-dir", str(run), "--dataset", f"inria:{need_shared(INRIA_TEST)}"]) == 2
    line = _one_line(capsys.readouterr().err)
    assert line == (
        f"validate: error: checkpoint {run / 'checkpoints' / 'ckpt-1'} is listed in "
        f"{run / 'checkpoints' / 'checkpoint'} but its files are gone; put them back or "
        "take its lines out of that file"
    )


@pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("chattr") is None,
    reason="needs root and chattr to make a folder read-only",
)
def test_checkpoint_save_into_a_read_only_folder_is_one_line(tiny_run, tmp_path, capsys):
    from host_tools.train import main

    run = _copy(tiny_run[1], tmp_path)
    ckpts = run / "checkpoints"
    if subprocess.run(["chattr", "+i", str(ckpts)], capture_output=True).returncode != 0:
        pytest.skip("this file system does not support chattr +i")
    try:
        args = ["--run-dir", str(run), "--resume", "--steps", "3", "--limit", "2"]
        assert main([*args, "--no-progress"]) == 2
    finally:
        subprocess.run(["chattr", "-i", str(ckpts)], check=True)
    line = _one_line(capsys.readouterr().err)
    assert str(ckpts) in line and "(PermissionDeniedError)" in line and "{{" not in line


@contextmanager
def _small_file_system(path: Path, size: str) -> Iterator[Path]:
    """A tmpfs of ``size`` at ``path`` (root only; skips where it cannot be mounted)."""
    path.mkdir()
    mount = ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)]
    if os.geteuid() != 0 or subprocess.run(mount, capture_output=True).returncode != 0:
        pytest.skip("needs root and a tmpfs mount to fill a disk")
    try:
        yield path
    finally:
        subprocess.run(["umount", str(path)], check=True)


def test_export_onto_a_full_disk_keeps_the_old_model(tiny_run, tmp_path, capsys):
    """The model was written in place: on a disk without room for the new one, the model that
    was there was truncated and replaced by the first 500 KB of the new one (a file the runtime
    cannot load), and the error did not say which file."""
    from host_tools.export import main

    config, run = tiny_run
    with _small_file_system(tmp_path / "disk", "500k") as disk:
        old = os.urandom(300_000)  # the new float32 model is 0.95 MB: it cannot fit
        (disk / "m.tflite").write_bytes(old)
        args = ["--config", str(config), "--weights", str(run / "final.weights.h5")]
        assert main([*args, "--mode", "float32", "--out", str(disk / "m.tflite")]) == 2
        line = _one_line(capsys.readouterr().err)
        assert "No space left on device" in line and str(disk / "m.tflite") in line
        assert (disk / "m.tflite").read_bytes() == old
        assert sorted(p.name for p in disk.iterdir()) == ["m.tflite"]


# ----------------------------------------------------------------------------- 4. config values
@pytest.mark.parametrize(
    ("section", "values", "words"),
    [
        ("train", {"checkpoint_every": 0}, "train.checkpoint_every must be >= 1, not 0"),
        ("train", {"batch_size": "16"}, 'train.batch_size must be a whole number, not "16"'),
        ("train", {"steps": -5}, "train.steps must be >= 1, not -5"),
        ("train", {"steps": 10.5}, "train.steps must be a whole number"),
        ("train", {"learning_rate": 0}, "train.learning_rate must be > 0"),
        ("train", {"keep_checkpoints": 0}, "train.keep_checkpoints must be >= 1"),
        ("train", {"seed": -1}, "train.seed must be between 0 and"),
        ("train", {"optimizer": "sgd"}, "train.optimizer must be 'adam' or 'momentum'"),
        ("train", {"unmatched_iou": 0.6}, "train.unmatched_iou 0.6 is above"),
        ("model", {"num_classes": 0}, "model.num_classes must be >= 1"),
        ("model", {"input_size": 16}, "model.input_size must be >= 32, not 16"),
        ("model", {"box_scales": [10, 10]}, "model.box_scales must be a list of 4 numbers"),
        ("model", {"extra_depths": [512, 256]}, "anchors.num_layers 6 does not match"),
        ("anchors", {"aspect_ratios": []}, "anchors.aspect_ratios is empty"),
        ("anchors", {"aspect_ratios": [1.0, -0.5]}, "anchors.aspect_ratios must be > 0"),
        ("anchors", {"min_scale": "0.2"}, "anchors.min_scale must be a number"),
        ("anchors", {"scales": [0.1, 0.2]}, "anchors.scales has 2 entries"),
        ("augment", {"flip": 1}, "augment.flip must be true or false"),
        ("augment", {"crop_prob": 1.5}, "augment.crop_prob must be between 0 and 1"),
        ("postprocess", {"max_detections": 0}, "postprocess.max_detections must be >= 1"),
    ],
)
def test_config_values_are_checked_with_one_line_naming_the_key(section, values, words):
    from host_tools.ssd.config import config_from_dict

    with pytest.raises(ConfigError, match="^config: .*") as err:
        config_from_dict({section: values})
    assert words in str(err.value) and "\n" not in str(err.value)


def test_train_cli_refuses_a_bad_config_before_training(tmp_path, capsys):
    """checkpoint_every 0 was a ZeroDivisionError traceback after the first step."""
    from host_tools.train import main

    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({**TINY, "train": {**TINY["train"], "checkpoint_every": 0}}))
    assert main(["--config", str(bad), "--run-dir", str(tmp_path / "run"), *TINY_ARGS]) == 2
    line = _one_line(capsys.readouterr().err)
    assert "bad.json: train.checkpoint_every must be >= 1, not 0" in line
    assert not (tmp_path / "run").exists()


def test_the_smallest_input_size_builds_and_anchors_match_predictions():
    from host_tools.ssd.config import config_from_dict
    from host_tools.ssd.model import build_ssd

    ssd = build_ssd(config_from_dict({**TINY, "model": {**TINY["model"], "input_size": 32}}))
    assert ssd.num_anchors == int(ssd.keras_model.outputs[0].shape[1]) > 0


# ----------------------------------------------------------------------------- 5. CLI options
@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--steps", "0"], "--steps: 0 must be at least 1"),
        (["--batch-size", "0"], "--batch-size: 0 must be at least 1"),
        (["--lr", "0"], "--lr: 0 must be a number > 0"),
        (["--lr", "nan"], "--lr: nan must be a number > 0"),
        (["--limit", "0"], "--limit: 0 must be at least 1"),
        (["--stop-after", "0"], "--stop-after: 0 must be at least 1"),
        (["--seed", "-1"], "--seed: -1 is outside"),
    ],
)
def test_train_options_must_be_positive(tmp_path, capsys, args, words):
    """--steps 0 wrote final weights without training and exited 0; --batch-size 0 and --lr 0
    were silently ignored."""
    from host_tools.train import main

    config = tmp_path / "tiny.json"
    config.write_text(json.dumps(TINY))
    tiny = ["--config", str(config), "--run-dir", str(tmp_path / "run"), "--steps", "1"]
    with pytest.raises(SystemExit) as exit_:
        main([*tiny, *TINY_ARGS, *args])  # the option under test comes last, so it wins
    assert exit_.value.code == 2
    assert words in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_train_api_refuses_steps_below_one(tmp_path):
    from host_tools.ssd.config import config_from_dict
    from host_tools.ssd.data import TrainImages
    from host_tools.train import train

    with pytest.raises(ConfigError, match="train.steps must be >= 1, not 0"):
        train(config_from_dict(TINY), tmp_path / "run", None, TrainImages([]), steps=0)
    assert not (tmp_path / "run").exists()


def test_validate_threshold_is_a_score(tmp_path, capsys):
    from host_tools.validate import main

    with pytest.raises(SystemExit) as exit_:
        main(["--run-dir", str(tmp_path), "--threshold", "1.5", "--no-export"])
    assert exit_.value.code == 2
    assert "--threshold: 1.5 is outside 0..1" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("tool", "args", "words"),
    [
        ("export", ["--calibration", "-120"], "--calibration: -120 must be at least 1"),
        ("quantize", ["--calibration", "-120"], "--calibration: -120 must be at least 1"),
        ("quantize", ["--threads", "0"], "--threads: 0 must be at least 1"),
        ("quantize", ["--qat-delay", "-5"], "--qat-delay: -5 must be at least 0"),
    ],
)
def test_export_and_quantize_counts_are_checked(tmp_path, capsys, tool, args, words):
    """--calibration -120 was a slice bound: int8 calibrated on all but the last 120 of the
    Penn-Fudan train images and exited 0; --qat-delay -5 fine-tuned 5 steps more than
    --qat-steps; quantize --threads 0 failed only after converting the first mode."""
    import importlib

    main = importlib.import_module(f"host_tools.{tool}").main
    out = (
        ["--out", str(tmp_path / "m.tflite")] if tool == "export" else ["--out-dir", str(tmp_path)]
    )
    with pytest.raises(SystemExit) as exit_:
        main(["--weights", str(tmp_path / "w.weights.h5"), *out, *args])
    assert exit_.value.code == 2
    assert words in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("run", ["empty", "missing"])
def test_validate_on_a_folder_that_is_not_a_run_says_so(tmp_path, capsys, run):
    """It said "config PosixPath('RUN/config.json') not found (a path, or one of [every config
    name])", as if a config name could be passed, for an empty or mistyped --run-dir."""
    from host_tools.validate import main

    run_dir = tmp_path / run
    if run == "empty":
        run_dir.mkdir()
    args = ["--run-dir", str(run_dir), "--dataset", f"inria:{need_shared(INRIA_TEST)}"]
    assert main(args) == 2
    line = _one_line(capsys.readouterr().err)
    assert line == (
        f"validate: error: {run_dir / 'config.json'} not found: {run_dir} is not a run "
        "directory of host_tools.train; pass the --run-dir a training wrote"
    )


@pytest.mark.parametrize("content", [b"", b"not a flatbuffer" * 100], ids=["empty", "garbage"])
def test_import_tflite_of_a_broken_model_is_one_line(tmp_path, capsys, content):
    """A cut or empty .tflite was a ValueError traceback ("The model is not a valid Flatbuffer
    buffer"), exit 1; the runtime's loader names the file and the fix."""
    from host_tools.import_tflite import main

    model = tmp_path / "m.tflite"
    model.write_bytes(content)
    assert main(["--tflite", str(model), "--out", str(tmp_path / "w.weights.h5")]) == 2
    line = _one_line(capsys.readouterr().err)
    assert line.startswith("import_tflite: error: ") and str(model) in line, line
    assert "re-download or re-export it" in line.lower()
    assert not (tmp_path / "w.weights.h5").exists()


@pytest.mark.parametrize("content", [b"", b"x\n"], ids=["empty", "text"])
def test_a_pb_that_holds_no_graph_is_named_as_such(tmp_path, capsys, content):
    """An empty .pb (a failed download) or a short text file parses as an empty GraphDef: it was
    reported as "graph has no constant 'FeatureExtractor/...'; is the config the graph's
    architecture?", sending the user to the config instead of the file."""
    from host_tools.import_weights import main

    pb = tmp_path / "frozen_inference_graph.pb"
    pb.write_bytes(content)
    assert main(["--pb", str(pb), "--out", str(tmp_path / "w.weights.h5")]) == 2
    line = _one_line(capsys.readouterr().err)
    assert line == (
        f"import_weights: error: {pb} holds no graph (an empty or wrong file); "
        "pass an OD-API frozen_inference_graph.pb"
    )


# ----------------------------------------------------------------------------- 6. messages
def test_quantize_unknown_mode_lists_qat_too(tiny_run, tmp_path, capsys):
    from host_tools.quantize import main

    config, run = tiny_run
    args = ["--config", str(config), "--weights", str(run / "final.weights.h5")]
    assert main([*args, "--out-dir", str(tmp_path / "q"), "--modes", "bogus", "--no-eval"]) == 2
    line = _one_line(capsys.readouterr().err)
    assert "'bogus'" in line and "float32,dynamic,float16,int8,qat" in line


def test_quantize_modes_named_twice_run_once():
    """--modes qat,int8,qat fine-tuned QAT twice (minutes each), both runs writing the same
    file, and the comparison table listed the same report twice."""
    from host_tools.quantize import parse_modes

    assert parse_modes("qat, int8,qat,int8") == ["qat", "int8"]


def test_evaluate_model_that_is_a_directory_says_so(tmp_path, capsys):
    from host_tools.evaluate import main

    args = ["--model", str(tmp_path), "--dataset", f"pennfudan:{need_shared(PENNFUDAN)}"]
    assert main([*args, "--out", str(tmp_path / "o"), "--no-progress"]) == 2
    line = _one_line(capsys.readouterr().err)
    assert f"model {tmp_path} is a directory" in line and "not found" not in line


def _png(path: Path, w: int = 64, h: int = 48) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), np.full((h, w, 3), 127, np.uint8))
    return path


def _yolo(root: Path, label: str) -> Path:
    _png(root / "images" / "a.png")
    (root / "labels").mkdir(parents=True)
    (root / "labels" / "a.txt").write_text(label)
    (root / "classes.txt").write_text("person\n")
    return root


def test_yolo_zero_area_box_is_an_error_at_its_line(tmp_path):
    root = _yolo(tmp_path, "0 0.5 0.5 0.2 0.4\n0 0.5 0.5 0 0\n")
    with pytest.raises(DatasetError, match=r"a\.txt:2: box has zero width or height"):
        load_dataset(f"yolo:{root}")


def test_inverted_ignore_region_is_an_error_naming_file_and_box(tmp_path):
    root = _yolo(tmp_path / "set", "0 0.5 0.5 0.2 0.4\n")
    ignore = tmp_path / "ignore.json"
    ignore.write_text(json.dumps({"images": {"images/a.png": [[1, 1, 9, 9], [50, 50, 10, 10]]}}))
    with pytest.raises(DatasetError) as err:
        load_dataset(f"yolo:{root}", ignore_file=ignore)
    assert str(err.value) == (
        f"ignore file {ignore}: 'images/a.png' box 2 [50, 50, 10, 10] is empty or inverted "
        "(need x1 < x2 and y1 < y2, pixels)"
    )


@pytest.mark.parametrize(
    "boxes",
    [[[1, 1, "x", 9]], {"x1": 1}, [[1, 1, 9, 9], [1, 2]], [[1, 1, [9], 9]]],
    ids=["word", "mapping", "ragged", "nested"],
)
def test_ignore_region_that_is_not_numbers_is_an_error_naming_the_file(tmp_path, boxes):
    """A word among the coordinates, a mapping or a short box was a ValueError or TypeError
    traceback from NumPy in evaluate, train and validate."""
    root = _yolo(tmp_path / "set", "0 0.5 0.5 0.2 0.4\n")
    ignore = tmp_path / "ignore.json"
    ignore.write_text(json.dumps({"images": {"images/a.png": boxes}}))
    with pytest.raises(DatasetError) as err:
        load_dataset(f"yolo:{root}", ignore_file=ignore)
    assert (
        str(err.value) == f"ignore file {ignore}: 'images/a.png' is not a list of [x1, y1, x2, y2]"
    )


PASCAL = """# PASCAL Annotation Version 1.00

Image filename : "Test/pos/a.png"
Image size (X x Y x C) : 64 x 48 x 3
Objects with ground truth : 1 { "PASperson" }

# Top left pixel co-ordinates : (0, 0)

Bounding box for object 1 "PASperson" (Xmin, Ymin) - (Xmax, Ymax) : BOX
"""


@pytest.mark.parametrize(
    ("box", "ok"),
    [
        ("(-50, -40) - (-10, -5)", False),  # wholly above-left of the image
        ("(64, 5) - (90, 40)", False),  # starts at the right edge
        ("(10, 48) - (30, 60)", False),  # starts at the bottom edge
        ("(50, 5) - (90, 40)", True),  # partly outside: kept (clipped where it is used)
    ],
)
def test_pascal_box_outside_the_image_is_an_error_at_its_line(tmp_path, box, ok):
    root = tmp_path / "INRIAPerson"
    _png(root / "Test" / "pos" / "a.png")
    ann = root / "Test" / "annotations" / "a.txt"
    ann.parent.mkdir(parents=True)
    ann.write_text(PASCAL.replace("BOX", box))
    if ok:
        assert len(load_dataset(f"inria:{root}").samples[0].boxes) == 1
        return
    with pytest.raises(DatasetError, match=r"a\.txt:9: box .* lies outside the 64x48 image"):
        load_dataset(f"inria:{root}")


def test_command_line_sources_are_recorded_with_absolute_paths(tmp_path):
    from host_tools.datasets.sources import DataSource

    src = DataSource.parse("yolo:data/set#split=lists/a.txt#ignore=ign.json").resolved(tmp_path)
    assert src.spec == f"yolo:{tmp_path / 'data' / 'set'}"
    assert src.split_file == str(tmp_path / "lists" / "a.txt")
    assert src.ignore_file == str(tmp_path / "ign.json")


def test_edgedetect_error_is_still_one_line(capsys):
    from host_tools._cli import cli_errors

    @cli_errors("tool")
    def fails() -> int:
        raise EdgeDetectError("bad thing")

    assert fails() == 2
    assert _one_line(capsys.readouterr().err) == "tool: error: bad thing"


def _ctrl_c_as_at_a_terminal() -> None:
    """SIGINT back to its default in the child (a backgrounded test run inherits it ignored)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_ctrl_c_in_a_host_tool_is_one_line_and_130(tmp_path):
    """Ctrl-C in a host tool printed a KeyboardInterrupt traceback (edgedetect itself says
    'interrupted', exit 130); no report is written."""
    root = need_shared(SHARED / "capston2" / "train")  # 3,837 images: minutes of evaluation
    out = tmp_path / "report"
    proc = subprocess.Popen(
        [sys.executable, "-m", "host_tools.evaluate", "--model", "hog", "--dataset", f"yolo:{root}"]
        + ["--out", str(out)],
        cwd=REPO,
        stderr=subprocess.PIPE,
        preexec_fn=_ctrl_c_as_at_a_terminal,
    )
    assert proc.stderr is not None
    started = b""
    while b"img" not in started and proc.poll() is None:  # the progress bar: images are read
        started += os.read(proc.stderr.fileno(), 4096)
    proc.send_signal(signal.SIGINT)
    rest = proc.communicate(timeout=60)[1]
    err = (started + rest).decode()
    assert proc.returncode == 130, err
    assert "Traceback" not in err and err.rstrip().endswith("evaluate: interrupted"), err
    assert not (out / "report.json").exists()


def test_quantize_without_the_test_split_says_so_before_converting(tiny_run, tmp_path):
    """In a checkout without ../shared/data, quantize converted every mode (QAT fine-tunes for
    minutes) and then died with a CalledProcessError traceback, exit 1, when host_tools.evaluate
    found no Penn-Fudan test split."""
    checkout = tmp_path / "checkout"  # a checkout with no shared/data beside it
    for package in ("edgedetect", "host_tools"):
        shutil.copytree(REPO / package, checkout / package)
    config, run = tiny_run
    args = ["--config", str(config), "--weights", str(run / "final.weights.h5")]
    proc = subprocess.run(
        [sys.executable, "-m", "host_tools.quantize", *args, "--out-dir", str(tmp_path / "q")]
        + ["--modes", "float32"],
        cwd=checkout,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2, proc.stderr
    line = _one_line(proc.stderr)
    assert str(tmp_path / "shared" / "data") in line and "pass --no-eval" in line
    assert not (tmp_path / "q").exists()


def test_validate_dataset_takes_the_split_option(tiny_run, tmp_path, capsys):
    """validate --dataset 'SPEC#split=FILE' (the form --val, evaluate and train take) was read as
    a folder named 'ROOT#split=FILE': "yolo dataset root ... is not a directory"."""
    from host_tools.validate import main

    root = _yolo(tmp_path / "set", "0 0.5 0.5 0.2 0.4\n")
    _png(root / "images" / "b.png")
    (root / "labels" / "b.txt").write_text("")
    split = tmp_path / "val.txt"
    split.write_text("a.png\n")
    run = _copy(tiny_run[1], tmp_path)
    args = ["--run-dir", str(run), "--dataset", f"yolo:{root}#split={split}", "--no-export"]
    assert main(args) == 0, capsys.readouterr().err
    report = json.loads((run / "validation.json").read_text())
    assert report["sets"]["val"] == {"spec": f"yolo:{root}", "images": 1}


@pytest.mark.parametrize(
    ("tool", "args"),
    [
        ("train", ["--run-dir", "", "--config", "{tiny}", *TINY_ARGS]),
        ("train", ["--run-dir", "run", "--split-file", "", "--config", "{tiny}", *TINY_ARGS]),
        ("train", ["--run-dir", "run", "--init", ""]),
        ("evaluate", ["--model", "hog", "--dataset", "inria:x", "--out", ""]),
        ("evaluate", ["--model", "m.tflite", "--labels", "", "--dataset", "inria:x", "--out", "o"]),
        ("export", ["--weights", "w.weights.h5", "--out", ""]),
        ("quantize", ["--weights", "w.weights.h5", "--out-dir", ""]),
        ("validate", ["--run-dir", ""]),
        ("convert", ["--dataset", "inria:x", "--to", "coco", "--out", ""]),
        ("ignore_regions", ["--dataset", "inria:x", "--model", "m.tflite", "--out", ""]),
        ("import_weights", ["--out", ""]),
        ("import_tflite", ["--tflite", "m.tflite", "--out", ""]),
    ],
)
def test_an_empty_path_is_refused_before_anything_is_written(
    tmp_path, monkeypatch, capsys, tool, args
):
    """An empty path (`--run-dir "$RUN"` with RUN unset) was the current folder: train wrote its
    checkpoints/, config.json, log.csv and final weights into it (the checkout, when run there),
    evaluate its report; an empty --split-file or --labels was silently no split or labels."""
    import importlib

    config = tmp_path / "tiny.json"
    config.write_text(json.dumps(TINY))
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    with pytest.raises(SystemExit) as exit_:
        importlib.import_module(f"host_tools.{tool}").main(
            [a.replace("{tiny}", str(config)) for a in args]
        )
    assert exit_.value.code == 2
    assert "empty path: name a file or folder" in capsys.readouterr().err
    assert list(cwd.iterdir()) == []


# ----------------------------------------------------------------------------- errors in tf.data
# The sixth example fails; the others are slowed down so that the map workers are still calling
# into Python (the next examples) when the error reaches the training loop.
_FAILING_PIPELINE = """
import itertools, sys, time
import host_tools.ssd.data as data
from edgedetect.errors import ImageError
targets, calls = data.build_targets, itertools.count()
def failing(*args):
    if next(calls) == 5:
        raise ImageError("frame_5.png cannot be decoded; re-export the image")
    time.sleep(0.2)
    return targets(*args)
data.build_targets = failing
from host_tools.train import main
sys.exit(main(sys.argv[1:]))
"""


def test_an_error_inside_the_training_pipeline_ends_the_process(tmp_path):
    """An error raised while making a training example printed TensorFlow's traceback and then
    the process hung for ever: the tf.data iterator, kept alive by the traceback's frames, was
    destroyed only at interpreter shutdown, with its map workers still calling into Python."""
    config = tmp_path / "tiny.json"
    config.write_text(json.dumps(TINY))
    args = ["--config", str(config), "--run-dir", str(tmp_path / "run"), "--steps", "50"]
    args += ["--dataset", f"pennfudan:{need_shared(PENNFUDAN)}", "--init", "none"]
    args += ["--limit", "20", "--no-progress"]
    try:
        proc = subprocess.run(
            [sys.executable, "-c", _FAILING_PIPELINE, *args],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=120,
        )
    except subprocess.TimeoutExpired:
        pytest.fail("train hung after an error inside the tf.data pipeline")
    assert proc.returncode == 2, proc.stderr
    assert _one_line(proc.stderr) == (
        "train: error: frame_5.png cannot be decoded; re-export the image"
    )


def test_sampling_weights_near_the_float_maximum_train(tiny_run, tmp_path):
    """Two sources of weight 1e308 (each finite, so accepted) summed to inf: every sampling
    probability was 0 and the first batch failed inside the tf.data pipeline."""
    from host_tools.train import main

    config, _ = tiny_run
    root = need_shared(PENNFUDAN)
    args = ["--config", str(config), "--run-dir", str(tmp_path / "run"), *TINY_ARGS]
    splits = Path(__file__).resolve().parents[1] / "data" / "splits"
    for split in ("pennfudan_fit.txt", "pennfudan_val.txt"):  # two sources: one twice is refused
        args += ["--dataset", f"pennfudan:{root}#split={splits / split}#weight=1e308"]
    assert main(args) == 0
    assert (tmp_path / "run" / "final.weights.h5").is_file()


# ----------------------------------------------------------------------------- whole weights
def test_final_weights_are_written_whole(tiny_run, tmp_path, capsys, monkeypatch):
    """save_weights wrote final.weights.h5 under its name as it went: a full disk (or a kill)
    mid-write left a truncated file there, which export and validate then loaded."""
    import errno

    from host_tools.ssd.keras_compat import keras
    from host_tools.train import main

    def disk_full(self, filepath, *args, **kwargs):
        Path(filepath).write_bytes(b"\x89HDF\r\n half a file")
        raise OSError(errno.ENOSPC, "No space left on device", str(filepath))

    run = _copy(tiny_run[1], tmp_path)
    final = run / "final.weights.h5"
    before = final.read_bytes()
    monkeypatch.setattr(keras.Model, "save_weights", disk_full)
    args = ["--run-dir", str(run), "--resume", "--steps", "3", "--limit", "2", "--no-progress"]
    assert main(args) == 2
    assert "No space left on device" in _one_line(capsys.readouterr().err)
    # the step-2 weights, whole, moved aside as the earlier schedule's; no torn file in their place
    assert (run / "final-step2.weights.h5").read_bytes() == before and not final.exists()
    assert sorted(p.name for p in run.iterdir() if p.name.startswith(".")) == []
