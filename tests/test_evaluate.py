"""The evaluator end to end on real images through the runtime Detector, its CLI and compare."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from host_tools.compare import main as compare_main
from host_tools.datasets.types import DatasetError
from host_tools.evaluate import main as evaluate_main
from host_tools.evaluate import run_evaluation
from host_tools.validate import parse_val_sets

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
PENNFUDAN = SHARED / "pennfudan" / "PennFudanPed"
INRIA = SHARED / "inria"
MODEL = SHARED / "models" / "ssd_mobilenet_v1_coco_quant.tflite"
LABELS = SHARED / "models" / "coco_labels.txt"
IMAGES = [
    "FudanPed00004.png",
    "FudanPed00008.png",
    "PennPed00010.png",
    "PennPed00058.png",
    "PennPed00062.png",
]
VOLATILE = {"latency_ms_p50", "latency_ms_p95", "latency_ms_mean", "created_utc"}


def need(*paths: Path) -> None:
    for p in paths:
        if not p.exists():
            pytest.skip(f"shared data not found: {p} (it lives in ../shared/data beside the repo)")


@pytest.fixture(scope="module")
def split(tmp_path_factory) -> Path:
    p = tmp_path_factory.mktemp("split") / "few.txt"
    p.write_text("\n".join(IMAGES) + "\n")
    return p


def _run(out: Path, split: Path, *extra: str) -> int:
    return evaluate_main(
        [
            "--model",
            str(MODEL),
            "--labels",
            str(LABELS),
            "--dataset",
            f"pennfudan:{PENNFUDAN}",
            "--split-file",
            str(split),
            "--out",
            str(out),
            "--no-progress",
            *extra,
        ]
    )


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory, split) -> tuple[Path, Path]:
    need(PENNFUDAN, MODEL, LABELS)
    a, b = tmp_path_factory.mktemp("run_a"), tmp_path_factory.mktemp("run_b")
    assert _run(a, split) == 0
    assert _run(b, split) == 0
    return a, b


def test_report_has_the_required_fields_and_files(two_runs):
    out = two_runs[0]
    r = json.loads((out / "report.json").read_text())
    for key in (
        "ap",
        "ap50",
        "ap75",
        "lamr",
        "mean_iou",
        "precision",
        "recall",
        "threshold",
        "images",
        "gt_boxes",
        "latency_ms_p50",
        "latency_ms_p95",
    ):
        assert isinstance(r[key], (int, float)), key
    boxes = sum(
        (PENNFUDAN / "Annotation" / f"{Path(n).stem}.txt").read_text().count("Bounding box")
        for n in IMAGES
    )
    assert r["images"] == 5 and r["gt_boxes"] == boxes
    assert r["threshold"] == 0.5 and r["curve_threshold"] == 0.05
    assert (
        r["model"]["path"] == str(MODEL.resolve())
        and r["model"]["size_bytes"] == MODEL.stat().st_size
    )
    assert len(r["model"]["sha256"]) == 64
    # a real COCO detector on Penn-Fudan people: far from chance, not perfect
    assert 0.5 < r["ap50"] <= 1.0 and 0.2 < r["ap"] < r["ap50"]
    assert 0.5 < r["recall"] <= 1.0 and 0.4 < r["precision"] <= 1.0 and 0.6 < r["mean_iou"] < 1.0
    assert 0.0 <= r["lamr"] < 0.8
    assert r["latency_ms_p50"] > 0 and r["latency_ms_p95"] >= r["latency_ms_p50"]
    for png in ("pr_curve.png", "miss_rate_fppi.png", "gallery.png"):
        img = cv2.imread(str(out / png))
        assert img is not None and img.shape[0] > 100 and img.std() > 5, png
    md = (out / "report.md").read_text()
    assert "COCO AP@[.5:.95]" in md and f"{r['ap']:.3f}" in md and "gallery.png" in md


def test_precision_recall_agree_with_listed_detections(two_runs):
    out = two_runs[0]
    r = json.loads((out / "report.json").read_text())
    dets = json.loads((out / "detections.json").read_text())
    on = [d for img in dets for d in img["detections"] if d["score"] >= r["threshold"]]
    tp = sum(d["outcome"] == "tp" for d in on)
    fp = sum(d["outcome"] == "fp" for d in on)
    assert (tp, fp) == (r["tp"], r["fp"])
    assert r["precision"] == pytest.approx(tp / (tp + fp))
    assert r["recall"] == pytest.approx(tp / r["gt_boxes"])
    assert r["mean_iou"] == pytest.approx(
        np.mean([d["iou"] for d in on if d["outcome"] == "tp"]), abs=1e-4
    )


def test_evaluation_is_deterministic(two_runs):
    a, b = (json.loads((d / "report.json").read_text()) for d in two_runs)
    assert {k: v for k, v in a.items() if k not in VOLATILE} == {
        k: v for k, v in b.items() if k not in VOLATILE
    }
    assert (two_runs[0] / "detections.json").read_bytes() == (
        two_runs[1] / "detections.json"
    ).read_bytes()


def test_higher_threshold_trades_recall_for_precision(two_runs, split, tmp_path):
    base = json.loads((two_runs[0] / "report.json").read_text())
    assert _run(tmp_path, split, "--threshold", "0.8") == 0
    hi = json.loads((tmp_path / "report.json").read_text())
    assert hi["recall"] <= base["recall"] and hi["tp"] + hi["fp"] <= base["tp"] + base["fp"]
    # curve metrics do not depend on the operating threshold
    assert (hi["ap"], hi["ap50"], hi["lamr"]) == (base["ap"], base["ap50"], base["lamr"])
    # the table of other operating points holds the numbers a run at that --threshold reports
    points = {p["threshold"]: p for p in base["operating_points"]}
    assert points[0.5]["recall"] == base["recall"] and points[0.5]["precision"] == base["precision"]
    assert {p["threshold"]: p for p in hi["operating_points"]} == points
    recalls = [points[t]["recall"] for t in sorted(points)]
    assert recalls == sorted(recalls, reverse=True) and recalls[0] > recalls[-1]


def test_hog_baseline_through_the_same_evaluator(tmp_path):
    need(INRIA)
    rc = evaluate_main(
        ["--model", "hog", "--dataset", f"inria:{INRIA}", "--out", str(tmp_path), "--no-progress"]
    )
    assert rc == 0
    r = json.loads((tmp_path / "report.json").read_text())
    assert r["model"]["path"] == "hog" and r["curve_threshold"] == 0.0 and r["images"] == 4
    # a detector that is no file still identifies itself: OpenCV's SVM coefficients
    assert r["model"]["size_bytes"] > 10_000 and len(r["model"]["sha256"]) == 64
    assert r["ap50"] > 0.3 and r["tp"] >= 4


def test_compare_prints_one_markdown_table(two_runs, capsys):
    assert compare_main([str(two_runs[0]), str(two_runs[1])]) == 0
    out = capsys.readouterr().out.splitlines()
    table = [ln for ln in out if ln.startswith("|")]
    assert table[0].startswith("| model | size | latency")
    for col in ("mean IoU", "precision", "recall", "AP50", "AP", "LAMR"):
        assert f"| {col} |" in table[0]
    assert len(table) == 4 and all("ssd_mobilenet_v1_coco_quant.tflite" in row for row in table[2:])


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (
            ["--model", "/no/model.tflite", "--dataset", "inria:{inria}"],
            "model file /no/model.tflite not found",
        ),
        (["--model", "hog", "--dataset", "kitti:/x"], "unknown dataset spec"),
        (["--model", "hog", "--dataset", "pennfudan:/no/such/root"], "is not a directory"),
        (
            ["--model", "hog", "--dataset", "inria:{inria}", "--split-file", "/no/split.txt"],
            "split file /no/split.txt not found",
        ),
    ],
)
def test_cli_errors_exit_2_with_one_line(tmp_path, capsys, args, words):
    if any("{inria}" in a for a in args):
        need(INRIA)
    args = [a.replace("{inria}", str(INRIA)) for a in args]
    assert evaluate_main([*args, "--out", str(tmp_path / "o"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert words in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_run_evaluation_python_api_on_inria(tmp_path):
    need(INRIA, MODEL, LABELS)
    r = run_evaluation(MODEL, f"inria:{INRIA}", tmp_path, labels=LABELS, progress=False)
    assert r == json.loads((tmp_path / "report.json").read_text())
    assert r["images"] == 4 and r["gt_boxes"] == 10 and r["dataset"]["kind"] == "inria"
    assert r["tp"] + r["fn"] == 10 and r["recall"] >= 0.5


def test_threshold_outside_scores_is_rejected(tmp_path, capsys):
    need(MODEL)
    rc = evaluate_main(
        [
            "--model",
            str(MODEL),
            "--dataset",
            f"inria:{INRIA}",
            "--threshold",
            "1.5",
            "--out",
            str(tmp_path),
            "--no-progress",
        ]
    )
    assert rc == 2 and "--threshold 1.5 is not a score in [0, 1]" in capsys.readouterr().err


def test_compare_missing_report_exits_2(tmp_path, capsys):
    assert compare_main([str(tmp_path)]) == 2
    assert "has no report.json" in capsys.readouterr().err


def test_union_of_datasets_is_scored_as_one_set(tmp_path, split):
    """Two --dataset specs (each with its own #split=) give one report over both sets' images."""
    need(PENNFUDAN, INRIA, MODEL)
    union = run_evaluation(
        MODEL,
        [f"pennfudan:{PENNFUDAN}#split={split}", f"inria:{INRIA / 'Test'}"],
        tmp_path / "u",
        labels=LABELS,
        progress=False,
    )
    alone = run_evaluation(
        MODEL,
        f"pennfudan:{PENNFUDAN}",
        tmp_path / "p",
        labels=LABELS,
        split_file=split,
        progress=False,
    )
    assert union["images"] == len(IMAGES) + 4
    assert union["gt_boxes"] == alone["gt_boxes"] + 10  # INRIA's four test images hold 10 people
    assert union["tp"] >= alone["tp"] and " + " in union["dataset"]["spec"]


REPO = Path(__file__).resolve().parents[1]
DEFAULT_MODEL = REPO / "models" / "person_ssdlite_int8.tflite"


def _bundled_photos(tmp_path: Path) -> Path:
    """The bundled photos as a YOLO set: the astronaut labelled, the other three empty."""
    root = tmp_path / "photos"
    (root / "images").mkdir(parents=True)
    (root / "labels").mkdir()
    (root / "classes.txt").write_text("person\n")
    labels = {"astronaut": "0 0.37 0.51 0.62 0.97\n", "camera": "", "chelsea": "", "coffee": ""}
    for name, text in labels.items():
        (root / "images" / f"{name}.jpg").write_bytes(
            (REPO / "data" / "images" / f"{name}.jpg").read_bytes()
        )
        (root / "labels" / f"{name}.txt").write_text(text)
    return root


def test_person_free_images_with_a_box_are_counted(tmp_path):
    """The bundled photos as a YOLO set: the astronaut labelled, the cat and the coffee cup empty,
    and the camera man's photo *labelled empty too*: the default model's box on him is the one
    false alarm among the three person-free images (the cat and the cup get none)."""
    root = _bundled_photos(tmp_path)
    r = run_evaluation(DEFAULT_MODEL, f"yolo:{root}", tmp_path / "out", progress=False)
    assert (r["images"], r["gt_boxes"], r["tp"]) == (4, 1, 1)
    assert (r["person_free_images"], r["person_free_images_with_alarm"]) == (3, 1)
    assert (
        "images without people that get a box @ 0.5 | 1 of 3"
        in (tmp_path / "out" / "report.md").read_text()
    )


def test_a_test_split_given_as_split_option_is_evaluated(tmp_path, capsys):
    """The test split is what the final report is scored on, but evaluate refused it as
    ``SPEC#split=FILE`` (the only form in a union of sets) with "train on training images": the
    training mix's rule applied to evaluation."""
    root = _bundled_photos(tmp_path)
    split = tmp_path / "photos_test.txt"
    split.write_text("astronaut.jpg\ncamera.jpg\n")
    args = ["--model", str(DEFAULT_MODEL), "--no-progress"]
    one = ["--dataset", f"yolo:{root}#split={split}", "--out", str(tmp_path / "one")]
    assert evaluate_main([*args, *one]) == 0, capsys.readouterr().err
    r = json.loads((tmp_path / "one" / "report.json").read_text())
    assert (r["images"], r["gt_boxes"], r["tp"], r["person_free_images"]) == (2, 1, 1, 1)
    rest = tmp_path / "photos_test_rest.txt"
    rest.write_text("chelsea.jpg\ncoffee.jpg\n")
    union = ["--dataset", f"yolo:{root}#split={split}", "--dataset", f"yolo:{root}#split={rest}"]
    assert evaluate_main([*args, *union, "--out", str(tmp_path / "union")]) == 0
    r = json.loads((tmp_path / "union" / "report.json").read_text())
    assert (r["images"], r["gt_boxes"], r["tp"]) == (4, 1, 1)


@pytest.mark.parametrize("second", ["same", "overlapping split"])
def test_a_union_that_holds_an_image_twice_is_refused(tmp_path, capsys, second):
    """--dataset X --dataset X scored every image of X twice (twice its people, twice its false
    alarms) as if the set were twice as large."""
    root = _bundled_photos(tmp_path)
    split = tmp_path / "some.txt"
    split.write_text("astronaut.jpg\ncamera.jpg\n")
    other = f"yolo:{root}" if second == "same" else f"yolo:{root}#split={split}"
    args = ["--model", str(DEFAULT_MODEL), "--no-progress", "--out", str(tmp_path / "out")]
    assert evaluate_main([*args, "--dataset", f"yolo:{root}", "--dataset", other]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    named = other
    assert err.startswith(f"evaluate: error: --dataset union: {named} holds ")
    assert f"that yolo:{root} already holds" in err and "count twice" in err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("where", ["file", "under_file"])
def test_out_that_is_a_file_is_named_before_evaluating(tmp_path, capsys, where):
    """--out naming a file (or a folder under one) said "[Errno 17] File exists: ..." (or
    "[Errno 20] Not a directory") after the whole dataset had been evaluated; it is now refused
    with the file named, and the file is left as it was."""
    root = _bundled_photos(tmp_path)
    f = tmp_path / "report.json"
    f.write_text("an earlier report\n")
    out = f if where == "file" else f / "sub"
    args = ["--model", str(DEFAULT_MODEL), "--dataset", f"yolo:{root}", "--no-progress"]
    assert evaluate_main([*args, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err == f"evaluate: error: cannot create --out {out}: {f} is a file, not a folder\n"
    assert f.read_text() == "an earlier report\n"


@pytest.mark.parametrize("option", ["--threshold", "--curve-threshold"])
@pytest.mark.parametrize("value", ["nan", "inf"])
def test_hog_thresholds_must_be_finite(tmp_path, capsys, option, value):
    """HOG's margins may be any number, so its thresholds were not checked: --threshold nan
    reported precision and recall 0 "at operating threshold nan" and exited 0."""
    root = _bundled_photos(tmp_path)
    args = ["--model", "hog", "--dataset", f"yolo:{root}", "--no-progress", option, value]
    assert evaluate_main([*args, "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err == f"evaluate: error: {option} {float(value)} is not a finite number\n"
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("tiles", ["2x2", "9x9"])
def test_tiles_with_hog_are_refused(tmp_path, capsys, tiles):
    """--model hog --tiles 2x2 ran the plain HOG and reported it as if tiled (a 9x9 that the
    tiling refuses was accepted too): the tiled pass wraps the runtime Detector only."""
    root = _bundled_photos(tmp_path)
    args = ["--model", "hog", "--dataset", f"yolo:{root}", "--tiles", tiles, "--no-progress"]
    assert evaluate_main([*args, "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and f"tiles {tiles}" in err.replace("'", ""), err
    assert not (tmp_path / "out").exists()


def test_split_file_beside_another_split_of_the_spec_is_refused(tmp_path, capsys):
    """``--split-file B`` with ``--dataset SPEC#split=A`` evaluated A and said nothing of B (in
    evaluate, validate and convert); the two together are now one line, and the same file
    named twice is fine."""
    root = _bundled_photos(tmp_path)
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    a.write_text("astronaut.jpg\n")
    b.write_text("camera.jpg\n")
    args = ["--model", str(DEFAULT_MODEL), "--no-progress", "--dataset", f"yolo:{root}#split={a}"]
    assert evaluate_main([*args, "--split-file", str(b), "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert err == (
        f"evaluate: error: --split-file {b} and yolo:{root}#split={a} both choose the images; "
        "give one of them\n"
    )
    assert not (tmp_path / "x").exists()
    assert evaluate_main([*args, "--split-file", str(a), "--out", str(tmp_path / "y")]) == 0
    assert json.loads((tmp_path / "y" / "report.json").read_text())["images"] == 1
    with pytest.raises(DatasetError, match="both choose the images"):
        parse_val_sets(None, f"yolo:{root}#split={a}", b)


def test_a_set_without_people_reports_ap_and_lamr_as_not_measurable(tmp_path):
    """The three person-free bundled photos: the report said AP 0 and LAMR 1 (and recall 0) as if
    measured; with no annotated person they cannot be, and the false alarms still count."""
    root = _bundled_photos(tmp_path)
    split = tmp_path / "free.txt"
    split.write_text("camera.jpg\nchelsea.jpg\ncoffee.jpg\n")
    r = run_evaluation(
        DEFAULT_MODEL, f"yolo:{root}", tmp_path / "out", split_file=split, progress=False
    )
    assert (r["images"], r["gt_boxes"], r["fp"], r["person_free_images_with_alarm"]) == (3, 0, 1, 1)
    saved = json.loads((tmp_path / "out" / "report.json").read_text())
    for key in ("ap", "ap50", "ap75", "ap50_all_point", "lamr", "recall"):
        assert saved[key] is None and saved["not_measurable"][key] == "no annotated people"
    assert set(saved["miss_rate_at_fppi"].values()) == {None}
    assert saved["precision"] == 0.0
    md = (tmp_path / "out" / "report.md").read_text()
    assert "| COCO AP@[.5:.95] | n/a (no annotated people) |" in md
    assert "| log-average miss rate (FPPI 1e-2..1) | n/a (no annotated people) |" in md
    assert "images without people that get a box @ 0.5 | 1 of 3" in md
    assert compare_main([str(tmp_path / "out")]) == 0  # the table shows n/a, not a TypeError
