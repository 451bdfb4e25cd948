"""Training smoke test, end to end on real data: a few steps on a handful of Penn-Fudan TRAIN images
from the imported OD-API weights, resume, export to TFLite (int8 with the postprocess op, float raw
outputs), and detection through the runtime ``Detector``. Small on purpose (CI budget)."""

from __future__ import annotations

import csv
import math

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow", reason="TensorFlow (host extra) is not installed")

from conftest import PENNFUDAN, SHARED_MODELS, SPLITS, need_shared, skimage_bgr  # noqa: E402

PB = SHARED_MODELS / "ssdlite_mobilenet_v2_pedestrian_frozen_inference_graph.pb"


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from host_tools.ssd.config import load_config
    from host_tools.ssd.data import load_train_images
    from host_tools.train import train

    pb = need_shared(PB)
    root = need_shared(PENNFUDAN)
    split = need_shared(SPLITS / "pennfudan_train.txt")
    data = load_train_images(f"pennfudan:{root}", split, limit=4)
    assert len(data) == 4
    test_names = set((SPLITS / "pennfudan_test.txt").read_text().split())
    assert not test_names & set(data.names)
    cfg = load_config("ssdlite_mobilenet_v2")
    cfg.train.batch_size = 2
    cfg.train.checkpoint_every = 1
    cfg.train.warmup_steps = 2
    run = tmp_path_factory.mktemp("run")
    train(cfg, run, str(pb), data, steps=3, progress=False, stop_after=2)  # interrupted at step 2
    final = train(cfg, run, None, data, steps=3, resume=True, progress=False)
    return cfg, run, final


def _export(trained, path, mode, **kwargs):
    """Convert the smoke run's final weights in ``mode`` to ``path``; returns the SSD.

    The label file is written next to it.
    """
    from host_tools.export import convert, load_ssd, write_labels

    cfg, _, final = trained
    ssd = load_ssd(cfg, final)
    path.write_bytes(convert(ssd, mode, **kwargs))
    write_labels(path, ["person"])
    return ssd


def test_training_logs_finite_losses_and_resumes(trained):
    cfg, run, final = trained
    rows = list(csv.DictReader((run / "log.csv").open()))
    assert [int(r["step"]) for r in rows] == [1, 2, 3]  # the resumed run continued at step 3
    assert all(math.isfinite(float(r["loss"])) and float(r["num_pos"]) > 0 for r in rows)
    assert final.is_file() and (run / "config.json").is_file()
    assert tf.train.latest_checkpoint(str(run / "checkpoints")).endswith("-3")


def test_int8_export_runs_in_the_runtime_detector(trained, tmp_path):
    from edgedetect.detector import Detector
    from host_tools.export import representative_images

    path = tmp_path / "smoke_int8.tflite"
    _export(
        trained, path, "int8", representative=representative_images(trained[0].model.input_size, 4)
    )
    det = Detector(path, threshold=0.5)
    assert (
        det.kind == "postprocess" and det.input_dtype == np.uint8 and det.input_size == (300, 300)
    )
    people = det.detect(skimage_bgr("astronaut"))
    assert len(people) >= 1 and people.names[int(people.class_id[0])] == "person"
    x1, y1, x2, y2 = people.xyxy[int(np.argmax(people.score))]
    assert x2 - x1 > 50 and y2 - y1 > 100  # a person-sized box, in image pixels
    assert len(det.detect(skimage_bgr("chelsea"))) == 0


def test_stride8_head_trains_alone_and_exports_to_the_runtime(trained, tmp_path):
    """A stride-8 layer added to the trained model: only its head moves, and the int8 export with
    its extra anchors runs in the runtime Detector."""
    import copy

    from edgedetect.detector import Detector
    from edgedetect.errors import ConfigError
    from host_tools.export import convert, load_ssd, representative_images, write_labels
    from host_tools.ssd.anchors import AnchorConfig
    from host_tools.ssd.data import load_train_images
    from host_tools.train import train, train_only

    cfg, _, final = trained
    s8 = copy.deepcopy(cfg)
    s8.anchors = AnchorConfig(stride8_anchors=((0.04, 0.5), (0.07, 0.5)))
    s8.train.train_only = ("Stride8", "BoxPredictor_stride8")
    data = load_train_images(f"pennfudan:{PENNFUDAN}", SPLITS / "pennfudan_train.txt", limit=4)
    out = train(
        s8,
        tmp_path / "s8",
        str(final),
        data,
        steps=2,
        progress=False,
        init_partial=True,
        init_config="ssdlite_mobilenet_v2",
    )
    before = {v.name: v.numpy() for v in load_ssd(cfg, final).keras_model.weights}
    after = load_ssd(s8, out)
    moved = [v.name for v in after.keras_model.weights if v.name not in before]
    for v in after.keras_model.weights:
        if v.name in before:
            np.testing.assert_array_equal(v.numpy(), before[v.name], err_msg=v.name)
    assert moved and all(n.startswith(("Stride8", "BoxPredictor_stride8")) for n in moved)
    # the new class head left its initial 1 % prior: it did train
    bias = next(v for v in after.keras_model.weights if "stride8__ClassPredictor/bias" in v.name)
    assert not np.allclose(bias.numpy()[1::2], -4.6)
    with pytest.raises(ConfigError, match="matches no layer"):
        train_only(after.keras_model, ("BoxPredictor_9",))

    path = tmp_path / "s8_int8.tflite"
    rep = representative_images(300, 4)
    path.write_bytes(convert(after, "int8", representative=rep))
    write_labels(path, ["person"])
    det = Detector(path, threshold=0.5)
    assert det.kind == "postprocess" and after.num_anchors == 1917 + 38 * 38 * 2
    people = det.detect(skimage_bgr("astronaut"))
    assert len(people) >= 1 and people.names[int(people.class_id[0])] == "person"


def test_qat_trains_on_the_configs_mix_and_exports_int8(trained, tmp_path, capsys):
    """QAT of a mix model fine-tunes on its own mix (it used the Penn-Fudan split whatever the
    config said), and the fake-quant model converts to an int8 model the runtime runs."""
    import copy

    from edgedetect.detector import Detector
    from host_tools.datasets.sources import DataSource
    from host_tools.export import convert, load_ssd, representative_images, write_labels
    from host_tools.ssd.qat import qat_finetune

    minicoco = need_shared(SHARED_MODELS.parent / "coco_train" / "minicoco")
    cfg, _, final = trained
    mix = copy.deepcopy(cfg)
    spec = f"coco:{minicoco / 'annotations' / 'train.json'}:{minicoco / 'images'}"
    mix.data.sources = (DataSource(spec),)
    ssd = load_ssd(mix, final)
    qmodel = qat_finetune(
        ssd, steps=2, delay=0, out_dir=tmp_path / "qat", batch_size=2, progress=False
    )
    log = capsys.readouterr().out
    assert "images, weight 1: coco:" in log and "pennfudan" not in log

    path = tmp_path / "qat_int8.tflite"
    rep = representative_images(300, 4)
    path.write_bytes(convert(ssd, "int8", representative=rep, keras_model=qmodel))
    write_labels(path, ["person"])
    det = Detector(path, threshold=0.5)
    assert det.kind == "postprocess" and det.input_dtype == np.uint8
    assert len(det.detect(skimage_bgr("astronaut"))) >= 1


def test_raw_float_export_is_decoded_by_the_runtime(trained, tmp_path):
    from edgedetect.detector import Detector
    from edgedetect.runtime import load_interpreter

    path = tmp_path / "smoke_raw.tflite"
    _export(trained, path, "float32", raw=True)
    interp, _ = load_interpreter(str(path), 1)
    outs = {d["name"]: tuple(int(v) for v in d["shape"]) for d in interp.get_output_details()}
    assert outs == {
        "box_encodings": (1, 1917, 4),
        "class_predictions": (1, 1917, 2),
        "anchors": (1917, 4),
    }
    det = Detector(path, threshold=0.5)
    assert det.kind == "raw" and det.input_dtype == np.float32
    assert len(det.detect(skimage_bgr("astronaut"))) >= 1
    assert len(det.detect(skimage_bgr("chelsea"))) == 0


def test_dynamic_range_export_keeps_the_float_detections(trained, tmp_path):
    """The reference paper's mode (int8 weights, float activations) through the runtime."""
    from edgedetect.detector import Detector

    path = tmp_path / "smoke_dynamic.tflite"
    _export(trained, path, "dynamic")
    assert path.stat().st_size < 5e6  # int8 weights: well under the 12 MB float file
    det = Detector(path, threshold=0.5)
    assert det.kind == "postprocess" and det.input_dtype == np.float32
    people = det.detect(skimage_bgr("astronaut"))
    assert len(people) >= 1 and float(people.score.max()) > 0.8


def test_train_cli_refuses_the_test_split(capsys):
    from host_tools.train import main

    assert main(["--run-dir", "/tmp/unused_run", "--split-file", "/x/pennfudan_test.txt"]) == 2
    assert "test split" in capsys.readouterr().err


def test_validation_scores_every_checkpoint_and_writes_the_best(trained, tmp_path):
    """Validating the smoke run: one row per kept checkpoint, real metrics, best weights."""
    import json

    from host_tools.validate import VAL_SPLIT, main

    _, run, _ = trained
    split = tmp_path / "val4.txt"
    split.write_text("\n".join(VAL_SPLIT.read_text().split()[:4]) + "\n")
    rc = main(
        [
            "--run-dir",
            str(run),
            "--dataset",
            f"pennfudan:{need_shared(PENNFUDAN)}",
            "--split-file",
            str(split),
        ]
    )
    assert rc == 0
    report = json.loads((run / "validation.json").read_text())
    rows = report["checkpoints"]
    assert [r["step"] for r in rows] == [1, 2, 3]
    # Imported pedestrian weights after 3 tiny steps still find most Penn-Fudan people.
    assert all(0.5 < r["ap50"] <= 1.0 and 0.5 < r["mean_iou"] <= 1.0 for r in rows)
    assert (
        report["best_step"] == max(rows, key=lambda r: (r["ap50"], r["step"]))["step"]
    )  # mean AP50 picks
    assert all(r["sets"]["val"]["ap50"] == r["ap50"] for r in rows)  # one set: its mean is itself
    assert (run / "best.weights.h5").stat().st_size > 1e6


def test_validation_under_camera_conditions_is_reported_not_selected(trained, tmp_path):
    """``--condition``: each set is scored again through the camera condition, beside the clean
    figures; the best checkpoint is still the clean mean's."""
    import json

    from host_tools.validate import VAL_SPLIT, main

    _, run, _ = trained
    split = tmp_path / "val4.txt"
    split.write_text("\n".join(VAL_SPLIT.read_text().split()[:4]) + "\n")
    args = ["--run-dir", str(run), "--dataset", f"pennfudan:{need_shared(PENNFUDAN)}"]
    args += ["--split-file", str(split), "--no-export"]
    assert main(args + ["--condition", "night_ir", "--condition", "blur"]) == 0
    report = json.loads((run / "validation.json").read_text())
    rows = report["checkpoints"]
    for r in rows:
        seen = r["conditions"]
        assert sorted(seen) == ["val+blur", "val+night_ir"]
        assert seen["val+night_ir"]["ap50"] < r["ap50"]  # the condition reached the detector
        mean = (seen["val+blur"]["ap50"] + seen["val+night_ir"]["ap50"]) / 2
        assert r["conditions_ap50"] == pytest.approx(mean)
    assert report["best_step"] == max(rows, key=lambda r: (r["ap50"], r["step"]))["step"]


def test_validation_detector_matches_the_float_export(trained, tmp_path):
    """The validator's float Keras path sees what the exported model sees (resize, decode, NMS)."""
    from edgedetect.detector import Detector
    from edgedetect.nms import box_iou
    from host_tools.validate import KerasDetector

    path = tmp_path / "smoke_float.tflite"
    ssd = _export(trained, path, "float32")
    image = skimage_bgr("astronaut")
    ours = KerasDetector(ssd).detect(image)
    ref = Detector(path, threshold=0.3).detect(image)
    ours = ours[ours.score >= 0.3]
    assert len(ref) >= 1 and len(ours) == len(ref)
    np.testing.assert_allclose(np.sort(ours.score), np.sort(ref.score), atol=1e-3)
    iou = box_iou(ours.xyxy, ref.xyxy)
    assert (iou.max(axis=1) > 0.99).all()


def test_validate_cli_errors_are_one_line(tmp_path, capsys):
    from host_tools.validate import main

    assert main(["--run-dir", str(tmp_path), "--split-file", "/x/pennfudan_test.txt"]) == 2
    assert "test split" in capsys.readouterr().err
    (tmp_path / "config.json").write_text("{}")
    assert main(["--run-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "no checkpoints" in err and "Traceback" not in err


def test_best_row_prefers_lower_lamr_and_later_ties():
    from host_tools.validate import best_row

    rows = [
        {"step": 1, "ap": 0.5, "lamr": 0.3},
        {"step": 2, "ap": 0.6, "lamr": 0.4},
        {"step": 3, "ap": 0.6, "lamr": 0.2},
    ]
    assert best_row(rows, "ap")["step"] == 3
    assert best_row(rows, "lamr")["step"] == 3
    assert best_row(rows[:2], "lamr")["step"] == 1
