"""The threaded frame pipeline: capture -> inference -> output, joined by one-slot mailboxes.

Threads and what each one does::

    capture    source.read() -> gate(frame) -> detector.preprocess()   (prefetch: the next tensor
               is ready before the interpreter is free, so inference never waits for decode)
    inference  detector.infer() -> detector.postprocess() -> Result
    output     overlay -> sinks (preview, writers, events, metrics), off the critical path

Each hand-over is a :class:`LatestSlot`. In ``latest`` mode (live sources, always) a new item
replaces an untaken one and the drop is counted: queues never grow and the output shows the
newest frame. In ``every_frame`` mode (offline files and folders) the hand-over blocks, so every
frame is processed; the capture thread then reads each frame *just in time* (timed from measured
inference and read durations) so a frame does not sit in the slot aging while the interpreter
is busy: the capture-to-output latency stays close to the inference time itself.
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
from edgedetect.errors import EdgeDetectError, SourceLost
from edgedetect.frame import Frame, Result
from edgedetect.overlay import draw_detections
from edgedetect.slot import LatestSlot
from edgedetect.sources import FrameSource

__all__ = ["DetectorLike", "LatestSlot", "Pipeline", "StageTimer"]

log = logging.getLogger(__name__)

Sink = Callable[[Result], None]
Gate = Callable[[Frame], bool]

class DetectorLike(Protocol):
    """What the pipeline needs from :class:`edgedetect.detector.Detector`."""

    names: Any

    def preprocess(self, bgr: np.ndarray) -> np.ndarray: ...

    def infer(self, tensor: np.ndarray) -> Any: ...

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


@dataclass
class _Packet:
    frame: Frame
    tensor: np.ndarray | None
    skipped: bool
    preprocess_ms: float


def _sink_name(sink: Any) -> str:
    return getattr(sink, "name", None) or getattr(sink, "__name__", None) or type(sink).__name__


class Pipeline:
    """Run a source through a detector into sinks on three threads.

    Args:
        source: an open :class:`FrameSource` (the pipeline closes it when it stops, unless
            ``close_source=False``).
        detector: a :class:`~edgedetect.detector.Detector` used by this pipeline only
            (``preprocess`` runs in the capture thread, ``infer``/``postprocess`` in the
            inference thread; the interpreter is only touched from one thread).
        sinks: callables ``sink(result)`` run in order in the output thread; an optional
            ``close()`` is called once at the end. A sink that raises is logged and counted.
        gate: optional ``gate(frame) -> bool`` run in the capture thread; False skips inference
            and emits a ``Result`` with ``skipped=True`` and no detections (motion gating).
        every_frame: blocking hand-over (offline processing of files/folders: no frame dropped).
            Refused for live sources, which always drop the oldest frame.
        pace: read at most this many frames per second (play a file at its own speed, like a
            camera); None reads as fast as the mode allows.
        max_frames: stop after capturing this many frames.
        annotate: draw boxes into ``result.annotated`` in the output thread before the sinks.

    A live source that may drop is wrapped in :class:`~edgedetect.resilient.ResilientSource`
    by the caller, which reopens it; a ``SourceLost`` that reaches the pipeline ends it with
    ``state == "failed"``, ``source_state == "lost"`` and ``error`` set.
    """

    def __init__(self, source: FrameSource, detector: DetectorLike, sinks: Iterable[Sink] = (),
                 gate: Gate | None = None, *, every_frame: bool = False,
                 pace: float | None = None, max_frames: int | None = None, annotate: bool = True,
                 close_source: bool = True,
                 thread_timeout: float = 2.0) -> None:
        if every_frame and source.live:
            raise ValueError(f"every_frame is for offline sources; {source.spec!r} is live")
        if pace is not None and pace <= 0:
            raise ValueError(f"pace must be > 0 frames/s, got {pace}")
        self.source = source
        self.detector = detector
        self.sinks = list(sinks)
        self.gate = gate
        self.every_frame = every_frame
        self.pace = pace
        self.max_frames = max_frames
        self.annotate = annotate
        self.close_source = close_source
        self.thread_timeout = thread_timeout

        self._in: LatestSlot[_Packet] = LatestSlot("capture", blocking=every_frame)
        self._out: LatestSlot[Result] = LatestSlot("inference", blocking=every_frame)
        self._stop = threading.Event()
        self._done = threading.Event()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self.error: BaseException | None = None
        self.state = "created"
        self.source_state = "ok"
        self._started_at: float | None = None
        self._last_result_wall: float | None = None
        self._last_frame_id: int | None = None

        self.captured = 0
        self.inferred = 0
        self.skipped = 0
        self.output = 0
        self.gate_errors = 0
        self.sink_errors: dict[str, int] = {}
        self.discarded_at_stop = 0
        self.inference_wait_ms = 0.0
        self._jit_margin_ms = 2.0
        self.t_read = StageTimer()
        self.t_preprocess = StageTimer()
        self.t_inference = StageTimer()
        self.t_postprocess = StageTimer()
        self.t_output = StageTimer()
        self.t_latency = StageTimer()

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> Pipeline:
        """Start the three threads (once)."""
        if self._threads:
            raise RuntimeError("pipeline already started")
        self._started_at = time.monotonic()
        self.state = "running"
        for name, target in (("capture", self._capture_loop), ("inference", self._inference_loop),
                             ("output", self._output_loop)):
            # daemon: a source stuck in a blocking read must not keep the process alive
            t = threading.Thread(target=target, name=f"edgedetect-{name}", daemon=True)
            self._threads.append(t)
            t.start()
        return self

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the source is exhausted and all results are out; True if finished."""
        return self._done.wait(timeout)

    def stop(self, timeout: float | None = None) -> bool:
        """Stop now: set the stop flag, wake every thread, join each with a timeout.

        Sinks are closed (writers flushed) by the output thread on its way out, and the source by
        the capture thread. Returns True when every thread ended in time; a thread stuck in a
        blocking ``source.read()`` is left behind (daemon) and reported in the log and ``stats()``.
        """
        timeout = self.thread_timeout if timeout is None else timeout
        self._stop.set()
        self.discarded_at_stop += self._in.close(discard=True)
        self.discarded_at_stop += self._out.close(discard=True)
        deadline = time.monotonic() + timeout
        ok = True
        # join output first: it flushes writers, which matters more than a stuck capture read
        for t in reversed(self._threads):
            if t is threading.current_thread():  # stop() from a sink or the gate: it exits anyway
                continue
            t.join(max(0.0, deadline - time.monotonic()))
            if t.is_alive():
                ok = False
                log.warning("%s thread did not stop within %.1f s (blocked in a call); leaving it",
                            t.name, timeout)
        if self.state == "running":
            self.state = "stopped"
        return ok

    def run(self, timeout: float | None = None) -> dict[str, Any]:
        """Start, wait for the end of the source (or ``timeout``), stop; return ``stats()``.

        Ctrl-C stops the threads cleanly before ``KeyboardInterrupt`` propagates.
        """
        self.start()
        try:
            self.wait(timeout)
        finally:
            self.stop()
        return self.stats()

    @property
    def running(self) -> bool:
        return any(t.is_alive() for t in self._threads) and not self._done.is_set()

    def __enter__(self) -> Pipeline:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- threads -----------------------------------------------------------------------------
    def _fail(self, exc: BaseException, where: str) -> None:
        with self._lock:
            if self.error is None:
                self.error = exc
        self.state = "failed"
        if isinstance(exc, EdgeDetectError):  # bad input or a lost source: the owner reports it
            log.info("pipeline %s stage stopped: %s", where, exc)
        else:
            log.error("pipeline %s stage failed: %s", where, exc, exc_info=True)
        self._stop.set()
        self._in.close(discard=True)
        self._out.close(discard=True)

    def _read(self) -> Frame | None:
        """``source.read()``; a ``SourceLost`` marks the source lost and ends the capture."""
        try:
            return self.source.read()
        except SourceLost:
            self.source_state = "lost"
            raise

    def _just_in_time_wait(self, last_skipped: bool) -> None:
        """every_frame mode: wait until the interpreter is about to be free, then read.

        Reading right away would let the frame age in the slot for a whole inference; reading
        after the slot empties would make the interpreter wait for the decode. So read at
        ``take time + expected inference - expected read/preprocess - margin``, where the margin
        adapts: it grows by however long the interpreter had to wait for the last frame, and
        shrinks by 5 % per frame when it did not wait (a feedback loop, because inference and
        decode times on a shared CPU vary more than any fixed margin can cover).
        """
        while not self._in.wait_empty(0.1):
            if self._stop.is_set():
                return
        taken = self._in.last_take_time
        busy = self.t_inference.ema_ms if not last_skipped else 0.0
        if taken is None or not busy:
            return
        waited_ms = self._in.last_get_wait * 1000.0
        if waited_ms > 0.3:
            self._jit_margin_ms = min(self._jit_margin_ms + waited_ms, 0.5 * busy)
        else:
            self._jit_margin_ms = max(0.5, self._jit_margin_ms * 0.95)
        prep = (self.t_read.ema_ms or 0.0) + (self.t_preprocess.ema_ms or 0.0)
        wake = taken + (busy + (self.t_postprocess.ema_ms or 0.0) - prep
                        - self._jit_margin_ms) / 1000.0
        delay = wake - time.monotonic()
        if delay > 0:
            self._stop.wait(delay)

    def _capture_loop(self) -> None:
        last_skipped = False
        t_first: float | None = None
        try:
            while not self._stop.is_set():
                if self.max_frames is not None and self.captured >= self.max_frames:
                    break
                if self.every_frame:
                    self._just_in_time_wait(last_skipped)
                if self.pace and t_first is not None:
                    due = t_first + self.captured / self.pace
                    if self._stop.wait(max(0.0, due - time.monotonic())):
                        break
                if self._stop.is_set():
                    break
                t0 = time.perf_counter()
                frame = self._read()
                if frame is None:
                    if not self._stop.is_set():
                        self.source_state = "ended"
                    break
                self.t_read.add((time.perf_counter() - t0) * 1000.0)
                if t_first is None:
                    t_first = time.monotonic()
                self.captured += 1
                passed = True
                if self.gate is not None:
                    try:
                        passed = bool(self.gate(frame))
                    except Exception:
                        self.gate_errors += 1
                        log.exception("gate raised on frame %d; running inference anyway", frame.id)
                tensor, pre_ms = None, 0.0
                if passed:
                    t1 = time.perf_counter()
                    tensor = self.detector.preprocess(frame.detector_input)
                    pre_ms = (time.perf_counter() - t1) * 1000.0
                    self.t_preprocess.add(pre_ms)
                last_skipped = not passed
                if not self._in.put(_Packet(frame, tensor, not passed, pre_ms)):
                    self.discarded_at_stop += 1
                    break
        except BaseException as exc:  # noqa: BLE001 - reported via .error, never lost in a thread
            self._fail(exc, "capture")
        finally:
            self._in.close()
            if self.close_source:
                try:
                    self.source.close()
                except Exception:
                    log.exception("error closing source %s", self.source.spec)

    def _inference_loop(self) -> None:
        names = getattr(self.detector, "names", {}) or {}
        try:
            while True:
                t_wait = time.perf_counter()
                packet = self._in.get(0.1)
                if packet is None:
                    if self._in.closed or self._stop.is_set():
                        break
                    if self.inferred or self.skipped:
                        self.inference_wait_ms += (time.perf_counter() - t_wait) * 1000.0
                    continue
                if self.inferred or self.skipped:
                    self.inference_wait_ms += (time.perf_counter() - t_wait) * 1000.0
                frame = packet.frame
                if packet.skipped:
                    result = Result(frame, Detections.empty(names), 0.0, True, 0.0)
                    self.skipped += 1
                else:
                    t0 = time.perf_counter()
                    raw = self.detector.infer(packet.tensor)
                    t1 = time.perf_counter()
                    detections = self.detector.postprocess(raw, frame.size)
                    t2 = time.perf_counter()
                    inf_ms = (t1 - t0) * 1000.0
                    self.t_inference.add(inf_ms)
                    self.t_postprocess.add((t2 - t1) * 1000.0)
                    result = Result(frame, detections, inf_ms, False, packet.preprocess_ms)
                    self.inferred += 1
                if not self._out.put(result):
                    self.discarded_at_stop += 1
                    break
        except BaseException as exc:  # noqa: BLE001
            self._fail(exc, "inference")
        finally:
            self._out.close()

    def _output_loop(self) -> None:
        try:
            while True:
                result = self._out.get(0.1)
                if result is None:
                    if self._out.closed or self._stop.is_set():
                        break
                    continue
                t0 = time.perf_counter()
                result.output_time = time.monotonic()
                if self.annotate:
                    result.annotated = draw_detections(result.frame.image, result.detections)
                for sink in self.sinks:
                    try:
                        sink(result)
                    except Exception as exc:
                        name = _sink_name(sink)
                        n = self.sink_errors.get(name, 0) + 1
                        self.sink_errors[name] = n
                        # full traceback the first time, one line after that: a broken sink on
                        # every frame must not flood the log
                        log.error("sink %s failed on frame %d (%d so far): %s", name,
                                  result.frame.id, n, exc, exc_info=n == 1)
                self.output += 1
                self._last_result_wall = result.frame.wall_time
                self._last_frame_id = result.frame.id
                now = time.monotonic()
                self.t_output.add((time.perf_counter() - t0) * 1000.0, now)
                self.t_latency.add((now - result.frame.timestamp) * 1000.0, now)
        except BaseException as exc:  # noqa: BLE001
            self._fail(exc, "output")
        finally:
            for sink in self.sinks:
                close = getattr(sink, "close", None)
                if callable(close):
                    try:
                        close()
                    except Exception as exc:
                        name = _sink_name(sink)
                        self.sink_errors[name] = self.sink_errors.get(name, 0) + 1
                        log.error("sink %s failed to close: %s", name, exc)
            if self.state == "running":
                self.state = "finished" if not self._stop.is_set() else "stopped"
            self._done.set()

    # -- reporting ---------------------------------------------------------------------------
    def stats(self) -> dict[str, Any]:
        """A JSON-ready snapshot of counters and timings (cheap; safe from any thread).

        ``dropped`` is keyed by the stage whose output was overwritten before the next stage
        took it: ``capture`` (frames never inferred) and ``inference`` (results never output).
        """
        now = time.monotonic()
        sink_errors = dict(self.sink_errors)
        source_stats = self.source.stats()
        return {
            "state": self.state,
            "mode": "every_frame" if self.every_frame else "latest",
            "source": self.source.spec,
            "source_state": ("reconnecting" if self.source_state == "ok"
                             and source_stats.get("connected") is False else self.source_state),
            "captured": self.captured,
            "inferred": self.inferred,
            "skipped": self.skipped,
            "output": self.output,
            "dropped": {"capture": self._in.dropped, "inference": self._out.dropped},
            "discarded_at_stop": self.discarded_at_stop,
            "sink_errors": sum(sink_errors.values()),
            "sink_errors_by_sink": sink_errors,
            "gate_errors": self.gate_errors,
            "reconnects": int(source_stats.get("reconnects", 0)),
            "source_stats": source_stats,
            "fps": {
                "capture": round(self.t_read.fps(now), 2),
                "inference": round(self.t_inference.fps(now), 2),
                "output": round(self.t_output.fps(now), 2),
            },
            "timings_ms": {
                "read": self.t_read.summary(),
                "preprocess": self.t_preprocess.summary(),
                "inference": self.t_inference.summary(),
                "postprocess": self.t_postprocess.summary(),
                "output": self.t_output.summary(),
                "latency": self.t_latency.summary(),
            },
            "inference_wait_ms": round(self.inference_wait_ms, 1),
            "prefetch_margin_ms": round(self._jit_margin_ms, 2),
            "last_frame_id": self._last_frame_id,
            "last_frame_wall_time": self._last_result_wall,
            "uptime_s": round(now - self._started_at, 3) if self._started_at else 0.0,
            "error": None if self.error is None else str(self.error),
            "threads_alive": [t.name for t in self._threads if t.is_alive()],
        }
