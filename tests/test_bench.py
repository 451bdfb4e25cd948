"""The benchmark's own machinery: clip rendering, the staleness check, the camera clock, JSON."""

from __future__ import annotations

import json
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from edgedetect.bench import ProvenanceDetector, SimulatedCamera
from edgedetect.cli import main
from edgedetect.clips import render_clip
from edgedetect.sources import open_source

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "data" / "sample.mp4"


def test_render_clip_segments_and_every_frame_differs(tmp_path: Path):
    path = tmp_path / "c.mp4"
    segments = render_clip(path, size=(160, 120), fps=10.0, seconds_per_photo=0.3)
    assert [s["photo"] for s in segments] == ["astronaut", "chelsea", "camera", "coffee"]
    assert [s["person"] for s in segments] == [True, False, True, False]
    assert segments[-1]["last"] == 11
    with open_source(str(path)) as src:
        frames = [f.image for f in iter(src.read, None)]
    assert len(frames) == 12 and frames[0].shape == (120, 160, 3)
    assert all(not np.array_equal(a, b) for a, b in zip(frames[:-1], frames[1:], strict=True))


@pytest.fixture(scope="module")
def detector(coco_model):
    from edgedetect.detector import Detector

    model, labels = coco_model
    return Detector(model, labels, num_threads=1)


def test_provenance_check_can_see_a_stale_pairing(detector, astronaut_bgr, chelsea_bgr):
    wrapped = ProvenanceDetector(detector)
    tensor = wrapped.preprocess(astronaut_bgr)
    dets = wrapped.postprocess(wrapped.infer(tensor), (512, 512))
    assert len(dets) == 1  # the real detections of the astronaut
    fp = wrapped.source_fingerprint(dets)
    assert fp == wrapped.fingerprint(astronaut_bgr)
    assert fp != wrapped.fingerprint(chelsea_bgr)  # drawn on the wrong frame: counted as stale
    assert wrapped.source_fingerprint(dets) is None  # popped once


def test_simulated_camera_blocks_for_the_next_frame_and_skips_to_the_newest():
    ring = [np.full((8, 8, 3), k, np.uint8) for k in range(10)]
    cam = SimulatedCamera(ring, fps=50.0)
    before_f0 = time.monotonic()  # the camera's clock starts at the first read, not before
    f0 = cam.read()
    f1 = cam.read()  # frame 1 arrives 20 ms after frame 0: the read waits for it
    # Measured from before the first read, so no scheduling delay can make it look shorter (it
    # was `>= 0.015` from after f0's read: 14.8 ms on a loaded machine).
    assert time.monotonic() - before_f0 >= 0.02
    assert f0 is not None and f1 is not None
    assert f1.image[0, 0, 0] == 1 and f1.timestamp - f0.timestamp == pytest.approx(0.02)
    time.sleep(0.1)  # five frames arrive meanwhile; a one-slot driver keeps only the newest
    f2 = cam.read()
    assert f2 is not None
    assert f2.image[0, 0, 0] >= 5 and f2.timestamp <= time.monotonic()
    assert [f0.id, f1.id, f2.id] == [0, 1, 2] and cam.live


def test_bench_json_end_to_end(capsys, coco_model):
    if not SAMPLE.is_file():
        pytest.skip(f"bundled sample missing: {SAMPLE}")
    model, labels = coco_model
    code = main(
        [
            "bench",
            "--json",
            "--model",
            str(model),
            "--labels",
            str(labels),
            "--source",
            str(SAMPLE),
            "--frames",
            "20",
            "--rounds",
            "2",
            "--threads",
            "1",
        ]
    )
    out, err = capsys.readouterr()
    assert code == 0, err
    r = json.loads(out)
    for key in (
        "bare_fps",
        "pipeline_fps",
        "naive_fps",
        "bare_ms_p50",
        "bare_ms_p95",
        "latency_ms_p50",
        "latency_ms_p95",
        "dropped_frames",
        "stale_frames",
        "pipeline_over_bare",
        "pipeline_over_naive",
        "latency_p95_over_bare_p95",
    ):
        assert isinstance(r[key], (int, float)), key
    assert r["frames"] == 20 and r["threads"] == 1 and r["frame_size"] == [640, 480]
    assert 0 < r["bare_ms_p50"] <= r["bare_ms_p95"]
    assert r["stale_frames"] == 0 and r["unchecked_frames"] == 0 and r["out_of_order_frames"] == 0
    assert r["dropped_frames"] == 0  # offline: every frame
    assert r["pipeline_over_bare"] == pytest.approx(r["pipeline_fps"] / r["bare_fps"], rel=0.01)
    assert r["pipeline_over_naive"] == pytest.approx(r["pipeline_fps"] / r["naive_fps"], rel=0.01)
    cam = r["camera"]
    assert cam["stale_frames"] == 0 and cam["unchecked_frames"] == 0
    assert cam["pipeline_fps"] > 0 and cam["latency_ms_p95"] >= cam["latency_ms_p50"] > 0
    assert set(r["targets"]) == {
        "pipeline_over_bare",
        "pipeline_over_naive",
        "latency_p95_over_bare_p95",
    }


def test_bench_rejects_too_few_frames(capsys, coco_model):
    model, labels = coco_model
    with pytest.raises(SystemExit) as info:  # refused by the parser, before the model loads
        main(["bench", "--model", str(model), "--labels", str(labels), "--frames", "3"])
    _, err = capsys.readouterr()
    assert info.value.code == 2 and "--frames: 3 is too few: must be at least 10" in err


def test_sample_clip_matches_its_metadata():
    if not SAMPLE.is_file():
        pytest.skip(f"bundled sample missing: {SAMPLE}")
    meta = json.loads(SAMPLE.with_suffix(".json").read_text())
    cap = cv2.VideoCapture(str(SAMPLE))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == meta["frames"] == 120
    cap.release()
    total = sum(p.stat().st_size for p in (REPO / "data").rglob("*") if p.is_file())
    assert total < 1.5e6


def test_bench_runs_exactly_the_frames_asked_for_with_the_detector_settings_asked_for(coco_model):
    from edgedetect.bench import run_benchmark

    if not SAMPLE.is_file():
        pytest.skip(f"bundled sample missing: {SAMPLE}")
    model, labels = coco_model
    r = run_benchmark(
        model,
        labels,
        str(SAMPLE),
        frames=29,
        threads=1,
        camera=False,
        rounds=2,
        threshold=0.3,
        classes=("person", "dog"),
    )
    assert r["frames"] == 29 and r["rounds"] == 2  # 15 + 14, not 2 x 14 = 28
    assert r["threshold"] == 0.3 and r["classes"] == ["dog", "person"]
    assert (
        run_benchmark(
            model, labels, str(SAMPLE), frames=10, threads=1, camera=False, rounds=1, classes=None
        )["classes"]
        == "all"
    )


def test_bench_cli_passes_threshold_and_classes_on(capsys, coco_model):
    """`edgedetect bench --threshold/--classes` reach the benchmark and its report.

    They used to be ignored.
    """
    if not SAMPLE.is_file():
        pytest.skip(f"bundled sample missing: {SAMPLE}")
    model, labels = coco_model
    code = main(
        [
            "bench",
            "--json",
            "--model",
            str(model),
            "--labels",
            str(labels),
            "--source",
            str(SAMPLE),
            "--frames",
            "10",
            "--rounds",
            "1",
            "--threads",
            "1",
            "--no-camera",
            "--threshold",
            "0.3",
            "--classes",
            "person,car",
        ]
    )
    out, err = capsys.readouterr()
    assert code == 0, err
    r = json.loads(out)
    assert r["threshold"] == 0.3 and sorted(r["classes"]) == ["car", "person"]


def test_bench_models_prints_every_model_interleaved_with_ratios(capsys, coco_model):
    """benchmarks/bench_models.py: one JSON entry per model and thread count; the COCO reference
    is the ratio's base (1.0), and every latency is a real, positive time."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "bench_models", REPO / "benchmarks/bench_models.py"
    )
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    default = REPO / "models" / "person_ssdlite_int8.tflite"
    reference, _ = coco_model
    assert bench.main([str(default), str(reference), "--threads", "1", "--rounds", "3"]) == 0
    out = json.loads(capsys.readouterr().out)
    row = out["threads_1"]
    key = f"ratio_to_{reference.name}"
    assert set(row) == {default.name, reference.name}
    assert row[reference.name][key] == 1.0
    assert all(r["ms_p50"] > 0 and r[key] > 0 for r in row.values())
