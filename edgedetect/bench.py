"""Pipeline benchmark: bare interpreter vs. the threaded pipeline vs. a naive serial loop.

One run, one model, one thread count, one clip:

* ``bare``: ``detector.infer()`` in a tight loop on one preprocessed frame: the ceiling.
* ``naive``: read -> preprocess -> infer -> postprocess -> draw, serially, as typical Pi scripts do.
* ``pipeline``: :class:`~edgedetect.pipeline.Pipeline` in ``every_frame`` mode (no frame dropped)
  with the overlay drawn in the output stage.
* ``live``: the pipeline in drop-oldest mode with the clip paced at its own fps, like a camera.

Staleness is checked end to end, not assumed: a fingerprint (CRC-32) of every tensor the
interpreter ran is recorded against the ``Detections`` it produced, and the output stage
recomputes the fingerprint of the frame it is drawing on; a mismatch is a stale frame.

When no clip is given, one is rendered from scikit-image's photos (a dev/bench dependency, not a
runtime one) with :func:`render_clip`, the same code that made ``data/sample.mp4``.
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
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from edgedetect.detections import Detections
from edgedetect.errors import SourceError
from edgedetect.frame import Result
from edgedetect.overlay import draw_detections
from edgedetect.pipeline import Pipeline
from edgedetect.sources import open_source

log = logging.getLogger(__name__)

TARGETS = {"pipeline_over_bare": 0.95, "pipeline_over_naive": 1.5, "latency_p95_over_bare_p95": 1.3}

# (skimage.data name, contains a person) in clip order: people, none, people, none.
PHOTOS = (("astronaut", True), ("chelsea", False), ("camera", True), ("coffee", False))


def skimage_photos() -> list[tuple[str, np.ndarray, bool]]:
    """scikit-image's bundled real photos as BGR: (name, image, has_person)."""
    try:
        import skimage.data as skdata  # noqa: PLC0415 - dev/bench dependency only
    except ImportError:
        raise SourceError(
            "rendering a benchmark clip needs scikit-image (pip install scikit-image), "
            "or pass --source with a video file"
        ) from None
    out = []
    for name, person in PHOTOS:
        img = getattr(skdata, name)()
        bgr = cv2.cvtColor(img, cv2.COLOR_GRAY2BGR if img.ndim == 2 else cv2.COLOR_RGB2BGR)
        out.append((name, bgr, person))
    return out


def _ken_burns(photo: np.ndarray, size: tuple[int, int], t: float, zoom: float) -> np.ndarray:
    """Crop of ``photo`` covering ``size`` at progress ``t`` in [0, 1]: slow zoom-in and pan."""
    w, h = size
    ph, pw = photo.shape[:2]
    cover = max(w / pw, h / ph)  # scale at which the photo covers the frame
    scale = cover * (1.0 + (zoom - 1.0) * t)
    cw, ch = w / scale, h / scale  # crop size in photo pixels
    cx = pw / 2 + (pw - cw) / 2 * (t - 0.5) * 0.8
    cy = ph / 2 + (ph - ch) / 2 * (0.5 - t) * 0.8
    m = np.array([[scale, 0, w / 2 - cx * scale], [0, scale, h / 2 - cy * scale]], np.float64)
    return cv2.warpAffine(photo, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)


def render_clip(path: str | Path, size: tuple[int, int] = (640, 480), fps: float = 15.0,
                seconds_per_photo: float = 2.0, zoom: float = 1.25,
                photos: Sequence[tuple[str, np.ndarray, bool]] | None = None,
                fourcc: str = "mp4v") -> list[dict[str, Any]]:
    """Write a clip that pans over each photo in turn; returns its segments.

    Every frame carries its index in the corner, so no two frames are identical (the
    benchmark's staleness check relies on that). Segments: ``{"photo", "person", "first",
    "last"}`` frame indices, inclusive.
    """
    photos = list(photos) if photos is not None else skimage_photos()
    path = Path(path)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, size)
    if not writer.isOpened():
        raise SourceError(f"cannot write {path} with codec {fourcc!r}")
    per = max(1, round(seconds_per_photo * fps))
    segments, index = [], 0
    try:
        for name, photo, person in photos:
            segments.append({"photo": name, "person": person, "first": index,
                             "last": index + per - 1})
            for k in range(per):
                frame = _ken_burns(photo, size, k / max(1, per - 1), zoom)
                text = f"{index:04d}"
                fs = size[1] / 720
                (tw, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, fs, 2)
                org = (size[0] - tw - 8, size[1] - 8)
                cv2.rectangle(frame, (org[0] - 4, org[1] - th - 4), (size[0], size[1]),
                              (0, 0, 0), cv2.FILLED)
                cv2.putText(frame, text, org, cv2.FONT_HERSHEY_SIMPLEX, fs, (255, 255, 255), 2,
                            cv2.LINE_AA)
                writer.write(frame)
                index += 1
    finally:
        writer.release()
    return segments


class ProvenanceDetector:
    """Wraps a detector to remember which input tensor each ``Detections`` came from.

    The fingerprint is computed in ``preprocess`` (capture thread) so the inference thread only
    does a dict lookup; keys are object ids of live objects, overwritten on reuse.
    """

    def __init__(self, detector: Any) -> None:
        self.detector = detector
        self.names = detector.names
        self.input_size = detector.input_size
        self._tensor_fp: dict[int, int] = {}
        self._dets_fp: dict[int, int] = {}
        self._lock = threading.Lock()

    def preprocess(self, image: np.ndarray) -> np.ndarray:
        tensor = self.detector.preprocess(image)
        with self._lock:
            self._tensor_fp[id(tensor)] = zlib.crc32(tensor)
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

    def fingerprint(self, image: np.ndarray) -> int:
        return zlib.crc32(self.detector.preprocess(image))


def _pct(values: Sequence[float], q: float) -> float:
    return round(float(np.percentile(np.asarray(values, np.float64), q)), 2) if values else 0.0


def _bare(detector: Any, image: np.ndarray, frames: int) -> list[float]:
    tensor = detector.preprocess(image)
    for _ in range(5):
        detector.infer(tensor)
    ms = []
    for _ in range(frames):
        t0 = time.perf_counter()
        detector.infer(tensor)
        ms.append((time.perf_counter() - t0) * 1000.0)
    return ms


def _naive(detector: Any, clip: str, frames: int) -> tuple[float, list[float]]:
    """The serial loop most Pi examples use: read, detect, draw, repeat."""
    source = open_source(clip, loop=True)
    latencies = []
    try:
        frame = source.read()  # warm the decoder outside the timed loop, as for the others
        t_start = time.perf_counter()
        for _ in range(frames):
            frame = source.read()
            if frame is None:
                break
            detections = detector.detect(frame.image)
            draw_detections(frame.image, detections)
            latencies.append((time.monotonic() - frame.timestamp) * 1000.0)
        elapsed = time.perf_counter() - t_start
    finally:
        source.close()
    return len(latencies) / elapsed, latencies


def _pipeline(detector: Any, clip: str, frames: int, *, live: bool,
              pace: float | None = None) -> dict[str, Any]:
    wrapped = ProvenanceDetector(detector)
    latencies: list[float] = []
    out_times: list[float] = []
    ids: list[int] = []
    stale = 0
    unchecked = 0

    def measure(result: Result) -> None:
        nonlocal stale, unchecked
        now = time.monotonic()
        latencies.append((now - result.frame.timestamp) * 1000.0)
        out_times.append(now)
        ids.append(result.frame.id)
        fp = wrapped.source_fingerprint(result.detections)
        if fp is None:
            unchecked += 1
        elif fp != wrapped.fingerprint(result.frame.detector_input):
            stale += 1

    source = open_source(clip, loop=True)
    pipeline = Pipeline(source, wrapped, [measure], every_frame=not live, pace=pace,
                        max_frames=frames + 1, annotate=True)
    stats = pipeline.run()
    if pipeline.error is not None:
        raise pipeline.error
    # steady-state throughput: outputs per second between the first and the last output
    fps = (len(out_times) - 1) / (out_times[-1] - out_times[0]) if len(out_times) > 1 else 0.0
    return {
        "fps": round(fps, 2),
        "latency_ms_p50": _pct(latencies, 50),
        "latency_ms_p95": _pct(latencies, 95),
        "output_frames": len(ids),
        "captured": stats["captured"],
        "dropped_frames": sum(stats["dropped"].values()),
        "stale_frames": stale,
        "unchecked_frames": unchecked,
        "out_of_order": int(sum(1 for a, b in zip(ids[:-1], ids[1:], strict=True) if b <= a)),
        "inference_wait_ms": stats["inference_wait_ms"],
        "timings_ms": {k: v["p50"] for k, v in stats["timings_ms"].items()},
    }


def run_benchmark(model: str | Path | None = None, labels: str | Path | None = None,
                  source: str | None = None, frames: int = 200, threads: int | None = None,
                  live: bool = True, size: tuple[int, int] = (1280, 720)) -> dict[str, Any]:
    """Run bare, naive, pipeline (and live) on the same model/threads/clip; return the JSON dict.

    ``threads`` defaults to one less than the CPU count (at least 1), so capture and drawing
    keep a core while the interpreter uses the rest.
    """
    from edgedetect.detector import Detector  # noqa: PLC0415 - keep `import edgedetect.bench` light

    if frames < 10:
        raise SourceError(f"--frames must be at least 10 for percentiles to mean anything, got {frames}")
    threads = threads or max(1, (os.cpu_count() or 2) - 1)
    detector = Detector(model, labels, threshold=0.5, classes=("person",), num_threads=threads)
    tmp = None
    try:
        if source is None:
            tmp = tempfile.TemporaryDirectory(prefix="edgedetect-bench-")
            clip = str(Path(tmp.name) / "bench.mp4")
            render_clip(clip, size=size, fps=30.0, seconds_per_photo=2.5)
            clip_desc = f"rendered from scikit-image photos, {size[0]}x{size[1]} @ 30 fps"
        else:
            clip = source
            clip_desc = source
        probe = open_source(clip)
        try:
            first = probe.read()
            clip_fps = probe.fps
        finally:
            probe.close()
        if first is None:
            raise SourceError(f"benchmark source {clip!r} has no frames")
        if probe.live:
            raise SourceError(f"benchmark source {clip!r} is live: use a video file or a folder")

        bare_ms = _bare(detector, first.image, frames)
        bare_fps = len(bare_ms) / (sum(bare_ms) / 1000.0)
        naive_fps, naive_lat = _naive(detector, clip, frames)
        pipe = _pipeline(detector, clip, frames, live=False)
        result: dict[str, Any] = {
            "model": str(detector.model_path),
            "threads": threads,
            "cpu_count": os.cpu_count(),
            "machine": platform.machine(),
            "source": clip_desc,
            "frame_size": [int(first.image.shape[1]), int(first.image.shape[0])],
            "frames": frames,
            "bare_fps": round(bare_fps, 2),
            "bare_ms_p50": _pct(bare_ms, 50),
            "bare_ms_p95": _pct(bare_ms, 95),
            "naive_fps": round(naive_fps, 2),
            "naive_latency_ms_p50": _pct(naive_lat, 50),
            "naive_latency_ms_p95": _pct(naive_lat, 95),
            "pipeline_fps": pipe["fps"],
            "latency_ms_p50": pipe["latency_ms_p50"],
            "latency_ms_p95": pipe["latency_ms_p95"],
            "dropped_frames": pipe["dropped_frames"],
            "stale_frames": pipe["stale_frames"],
            "pipeline": pipe,
        }
        bare_p95 = result["bare_ms_p95"] or float("nan")
        ratios = {
            "pipeline_over_bare": round(pipe["fps"] / bare_fps, 3),
            "pipeline_over_naive": round(pipe["fps"] / naive_fps, 3),
            "latency_p95_over_bare_p95": round(pipe["latency_ms_p95"] / bare_p95, 3),
        }
        result.update(ratios)
        result["targets"] = {
            k: {"target": v, "value": ratios[k],
                "met": ratios[k] <= v if k.startswith("latency") else ratios[k] >= v}
            for k, v in TARGETS.items()
        }
        if live:
            pace = clip_fps or 30.0
            result["live"] = {"pace_fps": pace, **_pipeline(detector, clip, frames, live=True,
                                                            pace=pace)}
        return result
    finally:
        if tmp is not None:
            tmp.cleanup()


def format_report(r: dict[str, Any]) -> str:
    """Human-readable summary of :func:`run_benchmark`'s dict."""
    lines = [
        f"model {r['model']}  threads {r['threads']}/{r['cpu_count']} cpus  frames {r['frames']}",
        f"source {r['source']}  {r['frame_size'][0]}x{r['frame_size'][1]}",
        f"bare      {r['bare_fps']:7.2f} fps  p50 {r['bare_ms_p50']:.1f} ms  p95 {r['bare_ms_p95']:.1f} ms",
        f"naive     {r['naive_fps']:7.2f} fps  latency p50 {r['naive_latency_ms_p50']:.1f} ms",
        f"pipeline  {r['pipeline_fps']:7.2f} fps  latency p50 {r['latency_ms_p50']:.1f} ms  "
        f"p95 {r['latency_ms_p95']:.1f} ms  dropped {r['dropped_frames']}  stale {r['stale_frames']}",
    ]
    if "live" in r:
        lv = r["live"]
        lines.append(
            f"live@{lv['pace_fps']:.0f}  {lv['fps']:7.2f} fps  latency p50 {lv['latency_ms_p50']:.1f} ms "
            f"p95 {lv['latency_ms_p95']:.1f} ms  dropped {lv['dropped_frames']}  stale {lv['stale_frames']}"
        )
    for k, t in r["targets"].items():
        lines.append(f"{k:28s} {t['value']:.3f}  target {'<=' if k.startswith('latency') else '>='} "
                     f"{t['target']}  {'ok' if t['met'] else 'MISSED'}")
    return "\n".join(lines)
