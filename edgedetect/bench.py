"""Pipeline benchmark: bare interpreter vs. the threaded pipeline vs. a naive serial loop.

One run, one model, one thread count, one clip:

* ``bare``: ``detector.infer()`` in a tight loop on one preprocessed frame: the ceiling.
* ``naive``: read -> preprocess -> infer -> postprocess -> draw, serially, as typical Pi scripts do.
* ``pipeline``: :class:`~edgedetect.pipeline.Pipeline` in ``every_frame`` mode (no frame dropped)
  with the overlay drawn in the output stage.
* ``camera``: naive and pipeline again, with the clip's frames arriving on a camera clock
  (:class:`SimulatedCamera`), the pipeline in drop-oldest mode, as on a Pi with a camera.

Staleness is checked end to end, not assumed: a fingerprint (CRC-32) of every tensor the
interpreter ran is recorded against the ``Detections`` it produced, and the output stage
recomputes the fingerprint of the frame it is drawing on; a mismatch is a stale frame.

When no clip is given, one is rendered from scikit-image's photos (a dev/bench dependency, not a
runtime one) with :func:`edgedetect.clips.render_clip`, the same code that made ``data/sample.mp4``.
"""

from __future__ import annotations

import logging
import os
import platform
import tempfile
import threading
import time
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgedetect.clips import render_clip, skimage_photos
from edgedetect.detections import Detections
from edgedetect.errors import SourceError
from edgedetect.frame import Frame, Result
from edgedetect.overlay import draw_detections
from edgedetect.pipeline import Pipeline
from edgedetect.sources import FrameSource, bundled_sample_path, open_source

log = logging.getLogger(__name__)

TARGETS = {"pipeline_over_bare": 0.95, "pipeline_over_naive": 1.5, "latency_p95_over_bare_p95": 1.3}


class ProvenanceDetector:
    """Wraps a detector to remember which input image each ``Detections`` came from.

    ``preprocess`` (capture thread) fingerprints the image it was given and files the
    fingerprint under the tensor it returns; ``infer`` carries it along; ``postprocess`` files
    it under the ``Detections`` it returns. The output stage then compares it with the
    fingerprint of the frame it is drawing on. Keys are object ids of live objects (overwritten
    on reuse). The fingerprint is a CRC-32 of every 4th pixel of every 4th row: cheap enough
    not to load the pipeline, and the benchmark clips change every frame.
    """

    def __init__(self, detector: Any) -> None:
        self.detector = detector
        self.names = detector.names
        self.input_size = detector.input_size
        self._tensor_fp: dict[int, int] = {}
        self._dets_fp: dict[int, int] = {}
        self._lock = threading.Lock()

    @staticmethod
    def fingerprint(image: np.ndarray) -> int:
        return zlib.crc32(np.ascontiguousarray(image[::4, ::4]).tobytes())

    def preprocess(self, image: np.ndarray) -> np.ndarray:
        tensor = self.detector.preprocess(image)
        fp = self.fingerprint(image)
        with self._lock:
            self._tensor_fp[id(tensor)] = fp
        return tensor

    def infer(self, tensor: np.ndarray) -> tuple[Any, int | None]:
        with self._lock:
            fp = self._tensor_fp.pop(id(tensor), None)
        return self.detector.infer(tensor), fp

    def postprocess(self, raw_fp: tuple[Any, int | None], size: tuple[int, int]) -> Detections:
        raw, fp = raw_fp
        detections = self.detector.postprocess(raw, size)
        if fp is not None:
            with self._lock:
                self._dets_fp[id(detections)] = fp
        return detections

    def source_fingerprint(self, detections: Detections) -> int | None:
        with self._lock:
            return self._dets_fp.pop(id(detections), None)


def headless_chromium(chromium: str, driver_path: str, window: str = "1280,1000") -> Any:
    """A selenium Chrome driver on Debian's chromium, headless and sandbox-free (as root in CI).

    Shared by ``benchmarks/bench_page.py`` and ``tests/test_web_page.py`` so both measure the same
    browser; selenium is a dev dependency, imported here and not by the runtime.
    """
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--no-first-run",
        f"--window-size={window}",
    ):
        opts.add_argument(flag)
    return webdriver.Chrome(options=opts, service=Service(executable_path=driver_path))


def _pct(values: Sequence[float], q: float) -> float:
    return round(float(np.percentile(np.asarray(values, np.float64), q)), 2) if values else 0.0


@dataclass
class Tally:
    """Frames and seconds of one method, summed over the interleaved rounds."""

    frames: int = 0
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    dropped: int = 0
    stale: int = 0
    unchecked: int = 0
    out_of_order: int = 0
    inference_wait_ms: float = 0.0
    cpu_seconds: float = 0.0
    cpu_frames: int = 0
    timings: dict[str, list[float]] = field(default_factory=dict)

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    @property
    def cpu_ms_per_frame(self) -> float:
        """Process CPU time (all threads) per frame: the cost, whatever the machine's load."""
        return round(1000.0 * self.cpu_seconds / self.cpu_frames, 2) if self.cpu_frames else 0.0


def _timed(tally: Tally, fn: Any, *args: Any, **kwargs: Any) -> None:
    """Run one measurement and add its process CPU time and frame count to ``tally``."""
    cpu0, frames0 = time.process_time(), tally.frames
    fn(*args, **kwargs)
    tally.cpu_seconds += time.process_time() - cpu0
    tally.cpu_frames += max(1, tally.frames - frames0)


def _bare(detector: Any, tensor: np.ndarray, frames: int, tally: Tally) -> None:
    """``infer()`` in a tight loop on one preprocessed frame: the interpreter's ceiling."""
    for _ in range(frames):
        t0 = time.perf_counter()
        detector.infer(tensor)
        ms = (time.perf_counter() - t0) * 1000.0
        tally.latencies.append(ms)
        tally.seconds += ms / 1000.0
        tally.frames += 1


class SimulatedCamera(FrameSource):
    """Benchmark harness: real decoded frames delivered on a camera's clock.

    Frame k "arrives" at ``t0 + k / fps``; ``read()`` returns the newest frame that arrived since
    the previous read, or blocks until the next one arrives, as a camera driver with a one-frame
    queue does (picamera2's ``capture_array``, V4L2 with ``CAP_PROP_BUFFERSIZE=1``). The frame's
    timestamp is its arrival time, so latency includes the frame's age. Frames are decoded into
    memory beforehand so that neither loop pays for decoding frames it never reads (a sensor
    does not either); each read returns a copy, as ``capture_array`` does.
    """

    live = True

    def __init__(self, frames: Sequence[np.ndarray], fps: float) -> None:
        super().__init__(f"simulated-camera@{fps:g}")
        self.fps = fps
        self.rate = fps  # the same number, typed as a float for the arithmetic below
        self._frames = list(frames)
        self._t0: float | None = None
        self._last_k = -1

    def _grab(self) -> tuple[np.ndarray, np.ndarray | None, str] | None:
        raise NotImplementedError  # read() is overridden: the timestamp is the arrival time

    def read(self) -> Frame | None:
        if self._closed:
            return None
        now = time.monotonic()
        if self._t0 is None:
            self._t0 = now
        k = int((now - self._t0) * self.rate)
        if k <= self._last_k:
            k = self._last_k + 1
            time.sleep(max(0.0, self._t0 + k / self.rate - time.monotonic()))
        self._last_k = k
        arrival = self._t0 + k / self.rate
        image = self._frames[k % len(self._frames)].copy()
        frame = Frame(
            self.next_id,
            arrival,
            time.time() - (time.monotonic() - arrival),
            image,
            None,
            self.spec,
        )
        self.next_id += 1
        return frame


def _naive(detector: Any, source: FrameSource, frames: int, tally: Tally) -> None:
    """The serial loop most Pi examples use: read, detect, draw, repeat."""
    try:
        source.read()  # open/warm the decoder outside the timed loop, as for the pipeline
        t_start = time.perf_counter()
        n = 0
        for _ in range(frames):
            frame = source.read()
            if frame is None:
                break
            detections = detector.detect(frame.image)
            draw_detections(frame.image, detections)
            tally.latencies.append((time.monotonic() - frame.timestamp) * 1000.0)
            n += 1
        tally.seconds += time.perf_counter() - t_start
        tally.frames += n
    finally:
        source.close()


def _pipeline(
    detector: Any, source: FrameSource, frames: int, tally: Tally, *, every_frame: bool
) -> None:
    """Run the pipeline until ``frames`` + 1 results are out; measure at the last sink."""
    wrapped = ProvenanceDetector(detector)
    out_times: list[float] = []
    ids: list[int] = []
    enough = threading.Event()

    def measure(result: Result) -> None:
        now = time.monotonic()
        if ids:  # the first result includes thread start-up: count intervals after it
            tally.latencies.append((now - result.frame.timestamp) * 1000.0)
        out_times.append(now)
        ids.append(result.frame.id)
        fp = wrapped.source_fingerprint(result.detections)
        if fp is None:
            tally.unchecked += 1
        elif fp != wrapped.fingerprint(result.frame.detector_input):
            tally.stale += 1
        if len(ids) > frames:
            enough.set()

    pipeline = Pipeline(
        source,
        wrapped,
        [measure],
        every_frame=every_frame,
        annotate=True,
        max_frames=frames + 1 if every_frame else None,
    )
    pipeline.start()
    try:
        while not enough.wait(0.1) and not pipeline.wait(0):
            pass
    finally:
        pipeline.stop()
    if pipeline.error is not None:
        raise pipeline.error
    _add_pipeline_run(tally, pipeline.stats(), out_times, ids)


def _add_pipeline_run(
    tally: Tally, stats: dict[str, Any], out_times: list[float], ids: list[int]
) -> None:
    """Add one pipeline run to ``tally``: its steady-state rate (the first output, which
    includes thread start-up, only starts the clock), drops, reordering and stage timings."""
    if len(out_times) > 1:  # steady state: outputs between the first and the last one
        tally.frames += len(out_times) - 1
        tally.seconds += out_times[-1] - out_times[0]
    tally.dropped += sum(stats["dropped"].values())
    tally.out_of_order += sum(1 for a, b in zip(ids[:-1], ids[1:], strict=True) if b <= a)
    tally.inference_wait_ms += stats["inference_wait_ms"]
    for k, v in stats["timings_ms"].items():
        tally.timings.setdefault(k, []).append(v["p50"])


def _summary(pipe: Tally, naive: Tally, bare: Tally) -> dict[str, Any]:
    bare_p95 = _pct(bare.latencies, 95) or float("nan")
    ratios = {
        "pipeline_over_bare": round(pipe.fps / bare.fps, 3),
        "pipeline_over_naive": round(pipe.fps / naive.fps, 3),
        "latency_p95_over_bare_p95": round(_pct(pipe.latencies, 95) / bare_p95, 3),
    }
    return {
        "naive_fps": round(naive.fps, 2),
        "naive_latency_ms_p50": _pct(naive.latencies, 50),
        "naive_latency_ms_p95": _pct(naive.latencies, 95),
        "pipeline_fps": round(pipe.fps, 2),
        "latency_ms_p50": _pct(pipe.latencies, 50),
        "latency_ms_p95": _pct(pipe.latencies, 95),
        "dropped_frames": pipe.dropped,
        "stale_frames": pipe.stale,
        "unchecked_frames": pipe.unchecked,
        "out_of_order_frames": pipe.out_of_order,
        "inference_wait_ms": round(pipe.inference_wait_ms, 1),
        "cpu_ms_per_frame": {
            "bare": bare.cpu_ms_per_frame,
            "naive": naive.cpu_ms_per_frame,
            "pipeline": pipe.cpu_ms_per_frame,
        },
        "stage_ms_p50": {k: round(float(np.median(v)), 2) for k, v in pipe.timings.items()},
        **ratios,
        "targets": {
            k: {
                "target": v,
                "value": ratios[k],
                "met": ratios[k] <= v if k.startswith("latency") else ratios[k] >= v,
            }
            for k, v in TARGETS.items()
        },
    }


def _decode(clip: str, limit: int) -> list[np.ndarray]:
    source = open_source(clip)
    try:
        frames: list[np.ndarray] = []
        while len(frames) < limit and (f := source.read()) is not None:
            frames.append(f.image)
        return frames
    finally:
        source.close()


def run_benchmark(
    model: str | Path | None = None,
    labels: str | Path | None = None,
    source: str | None = None,
    frames: int = 200,
    threads: int | None = None,
    camera: bool = True,
    camera_fps: float = 30.0,
    rounds: int = 3,
    size: tuple[int, int] = (1280, 720),
    threshold: float = 0.5,
    classes: Sequence[str] | None = ("person",),
) -> dict[str, Any]:
    """Run bare, naive and pipeline on the same model/threads/clip; return the JSON dict.

    Two scenarios: ``offline`` (top-level keys: the clip decoded as fast as possible, the
    pipeline in every-frame mode) and ``camera`` (the clip's frames arriving at ``camera_fps``
    from :class:`SimulatedCamera`, the pipeline in drop-oldest mode). The methods run
    interleaved in ``rounds`` rounds of ``frames / rounds`` frames each, so that a change in
    machine load during the run affects all of them alike. ``threads`` defaults to one less than
    the CPU count (at least 1), so capture and drawing keep a core. ``frames`` is split over
    the rounds exactly (200 in 3 rounds: 67 + 67 + 66). ``threshold`` and ``classes`` are the
    detector's (defaults: 0.5 and person, the numbers in the docs); both are in the report.
    """
    from edgedetect.detector import Detector  # noqa: PLC0415 - keep `import edgedetect.bench` light

    round_sizes = _round_sizes(frames, rounds)
    threads = threads or max(1, (os.cpu_count() or 2) - 1)
    detector = Detector(model, labels, threshold=threshold, classes=classes, num_threads=threads)
    with tempfile.TemporaryDirectory(prefix="edgedetect-bench-") as tmp:
        clip, clip_desc = _bench_clip(source, size, Path(tmp))
        first = _first_frame(clip)
        ring = _decode(clip, 60) if camera else []
        tallies, load = _measure(
            detector, clip, first, ring, round_sizes, camera_fps if camera else None
        )
    result = {
        **_run_header(detector, threads, load, clip_desc, first, round_sizes),
        **_bare_summary(tallies["bare"]),
        **_summary(tallies["pipe"], tallies["naive"], tallies["bare"]),
    }
    if camera:
        result["camera"] = {
            "camera_fps": camera_fps,
            **_summary(tallies["c_pipe"], tallies["c_naive"], tallies["bare"]),
        }
    return result


def _round_sizes(frames: int, rounds: int) -> list[int]:
    """Frames per round, summing to ``frames`` exactly; at least 10 frames per round, so that
    the percentiles of every round mean something (fewer rounds if need be)."""
    if frames < 10:
        raise SourceError(
            f"--frames must be at least 10 for percentiles to mean anything, got {frames}"
        )
    rounds = max(1, min(rounds, frames // 10))
    return [frames // rounds + (1 if i < frames % rounds else 0) for i in range(rounds)]


def _run_header(
    detector: Any,
    threads: int,
    load: list[float],
    clip_desc: str,
    first: Frame,
    round_sizes: list[int],
) -> dict[str, Any]:
    """The report's first keys: what was measured, on what, under which load, so that two
    reports can be told apart before their numbers are compared."""
    return {
        "model": str(detector.model_path),
        "threads": threads,
        "cpu_count": os.cpu_count(),
        "load_avg_1m": round(float(np.mean(load)), 2),
        "machine": platform.machine(),
        "source": clip_desc,
        "frame_size": [int(first.image.shape[1]), int(first.image.shape[0])],
        "frames": sum(round_sizes),
        "rounds": len(round_sizes),
        "threshold": detector.threshold,
        "classes": _kept_class_names(detector),
    }


def _bare_summary(bare: Tally) -> dict[str, Any]:
    """The interpreter's ceiling, which the pipeline's numbers are judged against."""
    return {
        "bare_fps": round(bare.fps, 2),
        "bare_ms_p50": _pct(bare.latencies, 50),
        "bare_ms_p95": _pct(bare.latencies, 95),
    }


def _kept_class_names(detector: Any) -> str | list[str]:
    """The labels the detector keeps, sorted, or ``"all"``: the report names what was counted."""
    if detector.class_filter is None:
        return "all"
    return sorted({detector.names[i] for i in detector.class_filter})


def _bench_clip(source: str | None, size: tuple[int, int], tmp: Path) -> tuple[str, str]:
    """The clip to measure on and how to describe it: ``source``, else one rendered from
    scikit-image's photos into ``tmp``, else (no scikit-image, a Pi install) the bundled sample."""
    if source is not None:
        return source, source
    try:
        photos = skimage_photos()
    except SourceError:
        sample = bundled_sample_path()
        if sample is None:
            raise
        log.info("scikit-image not installed: benchmarking on %s", sample)
        return str(sample), str(sample)
    clip = str(tmp / "bench.mp4")
    render_clip(clip, size=size, fps=30.0, seconds_per_photo=2.5, photos=photos)
    return clip, f"rendered from scikit-image photos, {size[0]}x{size[1]} @ 30 fps"


def _first_frame(clip: str) -> Frame:
    """The clip's first frame; a clip with none, or a live source, is a SourceError."""
    probe = open_source(clip)
    try:
        first = probe.read()
    finally:
        probe.close()
    if first is None:
        raise SourceError(f"benchmark source {clip!r} has no frames")
    if probe.live:
        raise SourceError(f"benchmark source {clip!r} is live: use a video file or a folder")
    return first


def _measure(
    detector: Any,
    clip: str,
    first: Frame,
    ring: list[np.ndarray],
    sizes: list[int],
    camera_fps: float | None,
) -> tuple[dict[str, Tally], list[float]]:
    """Every method, interleaved round by round (``sizes`` frames each); tallies and the load."""
    tensor = _warmed_up_tensor(detector, first)
    tallies = {name: Tally() for name in ("bare", "naive", "pipe", "c_naive", "c_pipe")}
    load = []
    for per_round in sizes:
        load.append(_load_avg_1m())
        _measure_offline_round(detector, clip, tensor, per_round, tallies)
        if camera_fps is not None:
            _measure_camera_round(detector, ring, camera_fps, per_round, tallies)
    return tallies, load


def _warmed_up_tensor(detector: Any, first: Frame) -> np.ndarray:
    """The first frame preprocessed, after a few inferences on it: XNNPACK sets itself up on the
    first invocations, which would otherwise count against the first method measured."""
    tensor = detector.preprocess(first.image)
    for _ in range(5):
        detector.infer(tensor)
    return tensor


def _load_avg_1m() -> float:
    """The 1-minute load average (NaN where the OS has none): the report says how busy it was."""
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")


def _measure_offline_round(
    detector: Any, clip: str, tensor: np.ndarray, per_round: int, tallies: dict[str, Tally]
) -> None:
    """One round of bare, naive and pipeline on the clip read as fast as possible."""
    _timed(tallies["bare"], _bare, detector, tensor, per_round, tallies["bare"])
    # the naive loop reads as typical scripts do: cv2.VideoCapture's default decoder
    # threads (one per core), the right choice for a serial loop
    _timed(
        tallies["naive"],
        _naive,
        detector,
        open_source(clip, loop=True, decode_threads=None),
        per_round,
        tallies["naive"],
    )
    _timed(
        tallies["pipe"],
        _pipeline,
        detector,
        open_source(clip, loop=True),
        per_round,
        tallies["pipe"],
        every_frame=True,
    )


def _measure_camera_round(
    detector: Any,
    ring: list[np.ndarray],
    camera_fps: float,
    per_round: int,
    tallies: dict[str, Tally],
) -> None:
    """One round of naive and pipeline on frames arriving on a camera clock (drop-oldest)."""
    _timed(
        tallies["c_naive"],
        _naive,
        detector,
        SimulatedCamera(ring, camera_fps),
        per_round,
        tallies["c_naive"],
    )
    _timed(
        tallies["c_pipe"],
        _pipeline,
        detector,
        SimulatedCamera(ring, camera_fps),
        per_round,
        tallies["c_pipe"],
        every_frame=False,
    )


def format_report(r: dict[str, Any]) -> str:
    """Human-readable summary of :func:`run_benchmark`'s dict."""

    def targets(d: dict[str, Any]) -> list[str]:
        return [
            f"  {k:28s} {t['value']:.3f}  target {'<=' if k.startswith('latency') else '>='} "
            f"{t['target']}  {'ok' if t['met'] else 'MISSED'}"
            for k, t in d["targets"].items()
        ]

    lines = [
        f"model {r['model']}  threads {r['threads']}/{r['cpu_count']} cpus  frames {r['frames']}"
        f"  load {r['load_avg_1m']}",
        f"source {r['source']}  {r['frame_size'][0]}x{r['frame_size'][1]}",
        f"bare      {r['bare_fps']:7.2f} fps  p50 {r['bare_ms_p50']:.1f} ms  "
        f"p95 {r['bare_ms_p95']:.1f} ms",
        "offline (file as fast as possible, every frame):",
        f"  naive     {r['naive_fps']:7.2f} fps  latency p50 {r['naive_latency_ms_p50']:.1f} ms",
        f"  pipeline  {r['pipeline_fps']:7.2f} fps  latency p50 {r['latency_ms_p50']:.1f} ms  "
        f"p95 {r['latency_ms_p95']:.1f} ms  dropped {r['dropped_frames']}  "
        f"stale {r['stale_frames']}",
        "  cpu ms/frame  " + "  ".join(f"{k} {v:.1f}" for k, v in r["cpu_ms_per_frame"].items()),
        *targets(r),
    ]
    if "camera" in r:
        c = r["camera"]
        lines += [
            f"camera (frames arriving at {c['camera_fps']:g} fps, newest wins):",
            f"  naive     {c['naive_fps']:7.2f} fps  "
            f"latency p50 {c['naive_latency_ms_p50']:.1f} ms",
            f"  pipeline  {c['pipeline_fps']:7.2f} fps  latency p50 {c['latency_ms_p50']:.1f} ms  "
            f"p95 {c['latency_ms_p95']:.1f} ms  dropped {c['dropped_frames']}  "
            f"stale {c['stale_frames']}",
            "  cpu ms/frame  "
            + "  ".join(f"{k} {v:.1f}" for k, v in c["cpu_ms_per_frame"].items()),
            *targets(c),
        ]
    return "\n".join(lines)
