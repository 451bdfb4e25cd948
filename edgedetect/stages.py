"""The pipeline's three stage loops and the counters they share, each given its collaborators.

One thread runs each stage's ``run()``; :class:`~edgedetect.pipeline.Pipeline` starts them,
reports their failures and stops them. Every counter in :class:`PipelineStats` is written by one
stage thread only and read by ``Pipeline.stats()`` from any thread (ints and floats: no lock).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from edgedetect.detections import Detections
from edgedetect.errors import SourceLost
from edgedetect.frame import Frame, Result
from edgedetect.overlay import draw_detections
from edgedetect.slot import LatestSlot
from edgedetect.sources import FrameSource

log = logging.getLogger("edgedetect.pipeline")

Sink = Callable[[Result], None]
Gate = Callable[[Frame], bool]


class DetectorLike(Protocol):
    """What the pipeline needs from :class:`edgedetect.detector.Detector` (or a
    :class:`edgedetect.tiling.TiledDetector`). The pipeline hands the model input from
    `preprocess` to `infer`, and its output to `postprocess`, without looking inside."""

    names: Any

    def preprocess(self, bgr: np.ndarray) -> Any: ...

    def infer(self, tensor: Any) -> Any: ...

    def postprocess(self, raw: Any, size: tuple[int, int]) -> Detections: ...


class StageTimer:
    """Recent durations and completion times of one stage: fps and percentiles for ``stats()``.

    A bounded deque, so memory stays fixed however long the pipeline runs.
    """

    def __init__(self, window: int = 256) -> None:
        self._items: deque[tuple[float, float]] = deque(maxlen=window)
        self.count = 0
        self.total_ms = 0.0
        self.ema_ms: float | None = None

    def add(self, ms: float, end: float | None = None) -> None:
        self._items.append((time.monotonic() if end is None else end, ms))
        self.count += 1
        self.total_ms += ms
        self.ema_ms = ms if self.ema_ms is None else self.ema_ms + 0.1 * (ms - self.ema_ms)

    def fps(self, now: float, horizon: float = 5.0) -> float:
        """Completions per second over the last ``horizon`` seconds (0 when stalled)."""
        items = tuple(self._items)  # one C-level copy: safe while another thread appends
        times = [t for t, _ in items if t >= now - horizon]
        if len(times) < 2:
            return 0.0
        span = max(now - times[0], times[-1] - times[0])
        return (len(times) - 1) / span if span > 0 else 0.0

    def summary(self) -> dict[str, float]:
        items = tuple(self._items)  # one C-level copy: safe while another thread appends
        if not items:
            return {"count": self.count, "last": 0.0, "mean": 0.0, "p50": 0.0, "p95": 0.0}
        ms = np.fromiter((m for _, m in items), np.float64, len(items))
        return {
            "count": self.count,
            "last": round(float(ms[-1]), 3),
            "mean": round(float(ms.mean()), 3),
            "p50": round(float(np.percentile(ms, 50)), 3),
            "p95": round(float(np.percentile(ms, 95)), 3),
        }


class PipelineStats:
    """Frame counters and stage timers of one pipeline run."""

    def __init__(self) -> None:
        self.captured = 0
        self.inferred = 0
        self.skipped = 0
        self.output = 0
        self.gate_errors = 0
        self.sink_errors: dict[str, int] = {}
        self.discarded_at_stop = 0
        self.inference_wait_ms = 0.0
        self.jit_margin_ms = 2.0
        self.last_frame_id: int | None = None
        self.last_frame_wall: float | None = None
        self.read = StageTimer()
        self.preprocess = StageTimer()
        self.inference = StageTimer()
        self.postprocess = StageTimer()
        self.output_time = StageTimer()
        self.latency = StageTimer()

    def fps(self, now: float) -> dict[str, float]:
        return {
            "capture": round(self.read.fps(now), 2),
            "inference": round(self.inference.fps(now), 2),
            "output": round(self.output_time.fps(now), 2),
        }

    def timings(self) -> dict[str, dict[str, float]]:
        return {
            "read": self.read.summary(),
            "preprocess": self.preprocess.summary(),
            "inference": self.inference.summary(),
            "postprocess": self.postprocess.summary(),
            "output": self.output_time.summary(),
            "latency": self.latency.summary(),
        }


@dataclass
class Packet:
    """A captured frame on its way to the interpreter (``tensor`` None when gated out)."""

    frame: Frame
    tensor: np.ndarray | None
    skipped: bool
    preprocess_ms: float


PACE_CATCH_UP_S = 1.0  # a paced file that falls further behind than this starts its pace anew


def sink_name(sink: Any) -> str:
    return getattr(sink, "name", None) or getattr(sink, "__name__", None) or type(sink).__name__


class CaptureStage:
    """``source.read()`` -> gate -> ``detector.preprocess()`` -> the capture slot.

    ``gate`` is read for every frame, so the owner can swap it while running.
    """

    def __init__(
        self,
        source: FrameSource,
        detector: DetectorLike,
        slot: LatestSlot[Packet],
        stop: threading.Event,
        stats: PipelineStats,
        *,
        gate: Gate | None,
        every_frame: bool,
        pace: float | None,
        max_frames: int | None,
    ) -> None:
        self.source, self.detector, self.slot, self.stop, self.stats = (
            source,
            detector,
            slot,
            stop,
            stats,
        )
        self.gate = gate
        self.every_frame, self.pace, self.max_frames = every_frame, pace, max_frames
        self.source_state = "ok"

    def run(self) -> None:
        s, last_skipped, t_first = self.stats, False, None
        while not self.stop.is_set():
            if self.max_frames is not None and s.captured >= self.max_frames:
                break
            if self.every_frame:
                self._just_in_time_wait(last_skipped)
            if self.pace and t_first is not None:
                due = t_first + s.captured / self.pace
                late = time.monotonic() - due
                if late > PACE_CATCH_UP_S:  # a gap (a file retried): resume at its pace, no burst
                    t_first += late
                elif self.stop.wait(max(0.0, -late)):
                    break
            if self.stop.is_set():
                break
            t0 = time.perf_counter()
            frame = self._read()
            if frame is None:
                if not self.stop.is_set():
                    self.source_state = "ended"
                break
            s.read.add((time.perf_counter() - t0) * 1000.0)
            t_first = time.monotonic() if t_first is None else t_first
            s.captured += 1
            packet = self._prepare(frame)
            last_skipped = packet.skipped
            if not self.slot.put(packet):
                s.discarded_at_stop += 1
                break

    def _read(self) -> Frame | None:
        """``source.read()``; a ``SourceLost`` marks the source lost and ends the capture."""
        try:
            return self.source.read()
        except SourceLost:
            self.source_state = "lost"
            raise

    def _prepare(self, frame: Frame) -> Packet:
        """Run the gate (a gate that raises lets the frame through), then preprocess."""
        passed = True
        gate = self.gate
        if gate is not None:
            try:
                passed = bool(gate(frame))
            except Exception:
                self.stats.gate_errors += 1
                log.exception("gate raised on frame %d; running inference anyway", frame.id)
        if not passed:
            return Packet(frame, None, True, 0.0)
        t1 = time.perf_counter()
        tensor = self.detector.preprocess(frame.detector_input)
        pre_ms = (time.perf_counter() - t1) * 1000.0
        self.stats.preprocess.add(pre_ms)
        return Packet(frame, tensor, False, pre_ms)

    def _just_in_time_wait(self, last_skipped: bool) -> None:
        """every_frame mode: wait until the interpreter is about to be free, then read.

        Reading right away would let the frame age in the slot for a whole inference; reading
        after the slot empties would make the interpreter wait for the decode. So read at
        ``take time + expected inference - expected read/preprocess - margin``, where the margin
        adapts: it grows by however long the interpreter had to wait for the last frame, and
        shrinks by 5 % per frame when it did not wait (a feedback loop, because inference and
        decode times on a shared CPU vary more than any fixed margin can cover).
        """
        while not self.slot.wait_empty(0.1):
            if self.stop.is_set():
                return
        s = self.stats
        taken = self.slot.last_take_time
        busy = s.inference.ema_ms if not last_skipped else 0.0
        if taken is None or not busy:
            return
        waited_ms = self.slot.last_get_wait * 1000.0
        if waited_ms > 0.3:
            s.jit_margin_ms = min(s.jit_margin_ms + waited_ms, 0.5 * busy)
        else:
            s.jit_margin_ms = max(0.5, s.jit_margin_ms * 0.95)
        prep = (s.read.ema_ms or 0.0) + (s.preprocess.ema_ms or 0.0)
        wake = taken + (busy + (s.postprocess.ema_ms or 0.0) - prep - s.jit_margin_ms) / 1000.0
        delay = wake - time.monotonic()
        if delay > 0:
            self.stop.wait(delay)


class InferenceStage:
    """Capture slot -> ``detector.infer()`` + ``postprocess()`` -> ``Result`` -> output slot.

    The only stage that touches the interpreter.
    """

    def __init__(
        self,
        detector: DetectorLike,
        inbox: LatestSlot[Packet],
        outbox: LatestSlot[Result],
        stop: threading.Event,
        stats: PipelineStats,
    ) -> None:
        self.detector, self.inbox, self.outbox, self.stop, self.stats = (
            detector,
            inbox,
            outbox,
            stop,
            stats,
        )
        self.names = getattr(detector, "names", {}) or {}

    def run(self) -> None:
        s = self.stats
        while True:
            t_wait = time.perf_counter()
            packet = self.inbox.get(0.1)
            if packet is None and (self.inbox.closed or self.stop.is_set()):
                break
            if s.inferred or s.skipped:  # the interpreter's idle time, after its first frame
                s.inference_wait_ms += (time.perf_counter() - t_wait) * 1000.0
            if packet is None:
                continue
            if not self.outbox.put(self._infer(packet)):
                s.discarded_at_stop += 1
                break

    def _infer(self, packet: Packet) -> Result:
        s, frame = self.stats, packet.frame
        if packet.skipped:
            s.skipped += 1
            return Result(frame, Detections.empty(self.names), 0.0, True, 0.0)
        assert packet.tensor is not None  # not skipped: the capture stage preprocessed it
        t0 = time.perf_counter()
        raw = self.detector.infer(packet.tensor)
        t1 = time.perf_counter()
        detections = self.detector.postprocess(raw, frame.size)
        t2 = time.perf_counter()
        inf_ms = (t1 - t0) * 1000.0
        s.inference.add(inf_ms)
        s.postprocess.add((t2 - t1) * 1000.0)
        s.inferred += 1
        return Result(frame, detections, inf_ms, False, packet.preprocess_ms)


class OutputStage:
    """Output slot -> overlay -> sinks, off the critical path; closes the sinks at the end.

    A sink that raises is logged (full traceback the first time, one line after that: a broken
    sink on every frame must not flood the log) and counted; the other sinks still run.

    When no result came for `IDLE_S`, a sink's optional ``idle()`` is called, in this thread:
    a sink can act on the silence (the service ends its visits when the camera is gone) without
    a second thread touching its state. Its failures are counted; only the first is logged.
    """

    IDLE_S = 0.1

    def __init__(
        self,
        sinks: Iterable[Sink],
        inbox: LatestSlot[Result],
        stop: threading.Event,
        stats: PipelineStats,
        *,
        annotate: bool,
    ) -> None:
        self.sinks, self.inbox, self.stop, self.stats = list(sinks), inbox, stop, stats
        self.annotate = annotate
        self._idle_failed: set[str] = set()  # sinks whose idle() failure was logged

    def run(self) -> None:
        s = self.stats
        while True:
            result = self.inbox.get(self.IDLE_S)
            if result is None:
                if self.inbox.closed or self.stop.is_set():
                    break
                self._idle()
                continue
            t0 = time.perf_counter()
            result.output_time = time.monotonic()
            if self.annotate:
                result.annotated = draw_detections(result.frame.image, result.detections)
            for sink in self.sinks:
                self._call(sink, result)
            s.output += 1
            s.last_frame_wall = result.frame.wall_time
            s.last_frame_id = result.frame.id
            now = time.monotonic()
            s.output_time.add((time.perf_counter() - t0) * 1000.0, now)
            s.latency.add((now - result.frame.timestamp) * 1000.0, now)

    def _call(self, sink: Sink, result: Result) -> None:
        try:
            sink(result)
        except Exception as exc:
            name = sink_name(sink)
            n = self.stats.sink_errors.get(name, 0) + 1
            self.stats.sink_errors[name] = n
            log.error(
                "sink %s failed on frame %d (%d so far): %s",
                name,
                result.frame.id,
                n,
                exc,
                exc_info=n == 1,
            )

    def _idle(self) -> None:
        for sink in self.sinks:
            idle = getattr(sink, "idle", None)
            if not callable(idle):
                continue
            try:
                idle()
            except Exception as exc:
                name = sink_name(sink)
                self.stats.sink_errors[name] = self.stats.sink_errors.get(name, 0) + 1
                if name not in self._idle_failed:  # ten calls a second while idle: no flood
                    self._idle_failed.add(name)
                    log.error("sink %s failed while idle: %s", name, exc, exc_info=True)

    def close_sinks(self) -> None:
        """``close()`` every sink once (writers flush here), on every kind of stop."""
        for sink in self.sinks:
            close = getattr(sink, "close", None)
            if callable(close):
                try:
                    close()
                except Exception as exc:
                    name = sink_name(sink)
                    self.stats.sink_errors[name] = self.stats.sink_errors.get(name, 0) + 1
                    log.error("sink %s failed to close: %s", name, exc)
