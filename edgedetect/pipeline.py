"""The threaded frame pipeline: capture -> inference -> output, joined by one-slot mailboxes.

Threads and what each one does (the loops are in :mod:`edgedetect.stages`)::

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
from collections.abc import Callable, Iterable
from typing import Any

from edgedetect.errors import EdgeDetectError
from edgedetect.frame import Result
from edgedetect.slot import LatestSlot
from edgedetect.sources import FrameSource
from edgedetect.stages import (
    CaptureStage,
    DetectorLike,
    Gate,
    InferenceStage,
    OutputStage,
    Packet,
    PipelineStats,
    Sink,
    StageTimer,
)

__all__ = ["DetectorLike", "Gate", "LatestSlot", "Pipeline", "Sink", "StageTimer"]

log = logging.getLogger(__name__)


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

    def __init__(
        self,
        source: FrameSource,
        detector: DetectorLike,
        sinks: Iterable[Sink] = (),
        gate: Gate | None = None,
        *,
        every_frame: bool = False,
        pace: float | None = None,
        max_frames: int | None = None,
        annotate: bool = True,
        close_source: bool = True,
        thread_timeout: float = 2.0,
    ) -> None:
        if every_frame and source.live:
            raise ValueError(f"every_frame is for offline sources; {source.spec!r} is live")
        if pace is not None and pace <= 0:
            raise ValueError(f"pace must be > 0 frames/s, got {pace}")
        self.source = source
        self.every_frame = every_frame
        self.close_source = close_source
        self.thread_timeout = thread_timeout
        self.counters = PipelineStats()
        self._in: LatestSlot[Packet] = LatestSlot("capture", blocking=every_frame)
        self._out: LatestSlot[Result] = LatestSlot("inference", blocking=every_frame)
        self._stop = threading.Event()
        self._done = threading.Event()
        self._capture = CaptureStage(
            source,
            detector,
            self._in,
            self._stop,
            self.counters,
            gate=gate,
            every_frame=every_frame,
            pace=pace,
            max_frames=max_frames,
        )
        self._inference = InferenceStage(detector, self._in, self._out, self._stop, self.counters)
        self._output = OutputStage(sinks, self._out, self._stop, self.counters, annotate=annotate)
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self.error: BaseException | None = None
        self.state = "created"
        self._started_at: float | None = None

    @property
    def gate(self) -> Gate | None:
        """The capture stage's gate; read for every frame, so it can be swapped while running."""
        return self._capture.gate

    @gate.setter
    def gate(self, gate: Gate | None) -> None:
        self._capture.gate = gate

    @property
    def source_state(self) -> str:
        """``ok``, ``ended`` (the source finished) or ``lost`` (it raised ``SourceLost``)."""
        return self._capture.source_state

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> Pipeline:
        """Start the three threads (once)."""
        if self._threads:
            raise RuntimeError("pipeline already started")
        self._started_at = time.monotonic()
        self.state = "running"
        for name, body, cleanup in (
            ("capture", self._capture.run, self._capture_ended),
            ("inference", self._inference.run, self._out.close),
            ("output", self._output.run, self._output_ended),
        ):
            # daemon: a source stuck in a blocking read must not keep the process alive
            t = threading.Thread(
                target=self._stage,
                args=(name, body, cleanup),
                name=f"edgedetect-{name}",
                daemon=True,
            )
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
        self.counters.discarded_at_stop += self._in.close(discard=True)
        self.counters.discarded_at_stop += self._out.close(discard=True)
        deadline = time.monotonic() + timeout
        ok = True
        # join output first: it flushes writers, which matters more than a stuck capture read
        for t in reversed(self._threads):
            if t is threading.current_thread():  # stop() from a sink or the gate: it exits anyway
                continue
            t.join(max(0.0, deadline - time.monotonic()))
            if t.is_alive():
                ok = False
                log.warning(
                    "%s thread did not stop within %.1f s (blocked in a call); leaving it",
                    t.name,
                    timeout,
                )
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
    def _stage(self, name: str, body: Callable[[], None], cleanup: Callable[[], Any]) -> None:
        """One stage thread: its loop, any exception reported via ``error``, then its cleanup."""
        try:
            body()
        except BaseException as exc:  # noqa: BLE001 - reported via .error, never lost in a thread
            self._fail(exc, name)
        finally:
            cleanup()

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

    def _capture_ended(self) -> None:
        """The capture thread releases the source it read (unless the owner keeps it)."""
        self._in.close()
        if self.close_source:
            try:
                self.source.close()
            except Exception:
                log.exception("error closing source %s", self.source.spec)

    def _output_ended(self) -> None:
        self._output.close_sinks()
        if self.state == "running":
            self.state = "finished" if not self._stop.is_set() else "stopped"
        self._done.set()

    # -- reporting ---------------------------------------------------------------------------
    def dropped(self) -> dict[str, int]:
        """Frames (``capture``) and results (``inference``) overwritten in a one-slot mailbox
        before the next stage took them."""
        return {"capture": self._in.dropped, "inference": self._out.dropped}

    def stats(self) -> dict[str, Any]:
        """A JSON-ready snapshot of counters and timings (cheap; safe from any thread).

        ``dropped`` is keyed by the stage whose output was overwritten before the next stage
        took it: ``capture`` (frames never inferred) and ``inference`` (results never output).
        """
        now, c = time.monotonic(), self.counters
        sink_errors = dict(c.sink_errors)
        source_stats = self.source.stats()
        source_state = self.source_state
        if source_state == "ok" and source_stats.get("connected") is False:
            source_state = "reconnecting"
        return {
            "state": self.state,
            "mode": "every_frame" if self.every_frame else "latest",
            "source": self.source.spec,
            "source_state": source_state,
            "captured": c.captured,
            "inferred": c.inferred,
            "skipped": c.skipped,
            "output": c.output,
            "dropped": self.dropped(),
            "discarded_at_stop": c.discarded_at_stop,
            "sink_errors": sum(sink_errors.values()),
            "sink_errors_by_sink": sink_errors,
            "gate_errors": c.gate_errors,
            "reconnects": int(source_stats.get("reconnects", 0)),
            "source_stats": source_stats,
            "fps": c.fps(now),
            "timings_ms": c.timings(),
            "inference_wait_ms": round(c.inference_wait_ms, 1),
            "prefetch_margin_ms": round(c.jit_margin_ms, 2),
            "last_frame_id": c.last_frame_id,
            "last_frame_wall_time": c.last_frame_wall,
            "uptime_s": round(now - self._started_at, 3) if self._started_at else 0.0,
            "error": None if self.error is None else str(self.error),
            "threads_alive": [t.name for t in self._threads if t.is_alive()],
        }
