"""The service loop: pipeline + tracker + outputs + HTTP + systemd notifications, reload and stop.

Threads: the pipeline's three (capture, inference, output), the resilient source's reader, one
worker per network output, paho's network loop, the HTTP server's pool, and the main thread,
which only handles signals, health, the watchdog, STATUS and reloads. Everything per-frame
happens in the pipeline's output thread through `ServiceSink` (frame_sink.py); events go to the
`Outputs` set (outputset.py); /snapshot.jpg and /stream.mjpg read the `LiveView` (liveview.py).

A reload is a transaction: everything new is built first (detector, source, outputs, HTTP
listener) while the old keeps running; only then are the changed parts swapped in. A reload
that fails anywhere leaves the running service untouched, is logged on one line, counted in
`edgedetect_reload_failures_total` and shown in /healthz. The process ends only on
SIGTERM/SIGINT (0), at the end of a finite source (0), or on a fault it cannot survive (1).
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from edgedetect.detections import Detections
from edgedetect.errors import ConfigError, EdgeDetectError, SourceLost
from edgedetect.resilient import ResilientSource
from edgedetect.service.clip_picamera import choose_writer
from edgedetect.service.clip_recorder import ClipRecorder
from edgedetect.service.config import (
    Config,
    apply_overrides,
    check_output_paths,
    exposed_without_token,
    load_config,
    parse_listen,
    redact,
)
from edgedetect.service.events import make_event
from edgedetect.service.frame_sink import ServiceSink
from edgedetect.service.http import HttpApp, HttpServer
from edgedetect.service.liveview import LiveView
from edgedetect.service.metrics import ServiceMetrics
from edgedetect.service.motion import MotionGate
from edgedetect.service.notify import Notifier, watchdog_interval_s
from edgedetect.service.outputset import SECTIONS as OUTPUT_SECTIONS
from edgedetect.service.outputset import Outputs
from edgedetect.service.recent import RecentEvents
from edgedetect.service.tracker import PersonTracker, TrackEvent
from edgedetect.service.zones import DetectionFilter, SceneRules
from edgedetect.tiling import lores_size

if TYPE_CHECKING:  # imported where used at run time: loading them is the slow part of a start
    from edgedetect.detector import Detector
    from edgedetect.frame import Frame
    from edgedetect.pipeline import Pipeline
    from edgedetect.service.config import Section
    from edgedetect.service.preview import Preview
    from edgedetect.sources import FrameSource
    from edgedetect.tiling import TiledDetector

log = logging.getLogger("edgedetect.service")

STOP_BUDGET_S = (
    2.5  # SIGTERM to exit: well inside the unit's TimeoutStopSec, so systemd never kills it
)
MODEL_KEYS = ("path", "labels", "threads", "classes", "tiles")  # a change builds a new detector


def _server_limits(h: Section) -> dict[str, Any]:
    """The `[http]` keys that bound clients (see edgedetect.service.http.HttpServer)."""
    return {
        "max_connections": h.max_connections,
        "max_connections_per_client": h.max_connections_per_client,
        "send_timeout_s": h.send_timeout_s,
    }


def build_detector(m: Section) -> Detector | TiledDetector:
    """The detector a ``[model]`` section asks for (the service and check-config build it alike)."""
    from edgedetect.detector import Detector
    from edgedetect.tiling import with_tiles

    det = Detector(
        m.path or None,
        labels=m.labels or None,
        threshold=m.threshold,
        classes=m.classes,
        num_threads=m.threads,
    )
    return with_tiles(det, m.tiles)


@dataclass
class ReloadPlan:
    """What a reload built before touching the running service; None = keep the running one."""

    cfg: Config
    detector: Detector | TiledDetector | None = None
    source: ResilientSource | None = None
    outputs: Outputs | None = None
    http: HttpServer | None = None
    http_app: HttpApp | None = None  # same address: the running server serves this app instead
    recorder: ClipRecorder | None = None  # the new recorder (None: clips off)
    new_recorder: bool = False  # [clips] or the source changed: swap in `recorder`

    def discard(self) -> None:
        """Undo the build after a failure: close what was made, leave the running service alone."""
        if self.source is not None:
            self.source.close()
        if self.outputs is not None:
            self.outputs.close(0.1, farewell=False)  # never used: the running outputs stay
        if self.http is not None:
            _stop_server(self.http)
        if self.recorder is not None:
            self.recorder.close(0.1)  # never fed a frame: nothing to finish


def _stop_server(server: HttpServer) -> None:
    """Stop a server that may never have been started (its socket is closed either way)."""
    try:
        server.stop()
    except RuntimeError:  # a server that joins a thread it never started
        pass


class Service:
    """The daemon. `run()` blocks until SIGTERM/SIGINT, end of a finite source, or a fatal fault."""

    def __init__(
        self,
        cfg: Config,
        config_path: str | None = None,
        overrides: dict[str, Any] | None = None,
        install_signals: bool = True,
        source_opener: Callable[[str], FrameSource] | None = None,
    ) -> None:
        self.cfg = cfg
        self.source_opener = source_opener  # tests inject faulty sources; None = open_source
        self.config_path = config_path
        self.overrides = overrides or {}
        self.install_signals = install_signals
        self.run_id = uuid.uuid4().hex[:12]  # in every event: track ids of two runs never collide
        self.metrics = ServiceMetrics()
        self.notifier = Notifier()
        self.live = LiveView(cfg.http.jpeg_quality)
        self.recent = RecentEvents()  # the page's last events: outlives the outputs of a reload
        t = cfg.tracker
        self.tracker = PersonTracker(
            t.iou_threshold, t.max_center_distance, t.enter_frames, t.leave_frames
        )
        self.pipeline: Pipeline | None = None
        self.source: ResilientSource | None = None
        self.detector: Detector | TiledDetector | None = None
        self.gate: MotionGate | None = None
        self.http: HttpServer | None = None
        self.outputs: Outputs | None = None
        self._outputs_lock = threading.Lock()
        self.sink = ServiceSink(
            self.metrics, self.tracker, self.live, self.emit, self.flush_outputs
        )
        self.sink.filter = DetectionFilter.from_config(cfg)
        self.sink.rules = SceneRules.from_config(cfg)  # no pipeline yet: no frame can race this
        self.metrics.set_scene(self.sink.rules.counts(), self.sink.rules.line_counts())
        self.metrics.clip_buffer_bytes.set_function(
            lambda: getattr(self.sink.recorder, "buffer_bytes", 0)
        )
        self._stop = threading.Event()
        self._reload = threading.Event()
        self._stalled = False
        self.exit_code = 0
        self.reloads = 0
        self.reload_failures = 0
        self.last_reload_error = ""
        self.started = time.monotonic()

    @property
    def preview(self) -> Preview | None:
        return self.sink.preview

    # ------------------------------------------------------------------ building blocks
    def _make_detector(self, cfg: Config) -> Detector | TiledDetector:
        det = build_detector(cfg.model)
        log.info(
            "model %s loaded (%s, input %s, tiles %s)",
            det.model_path,
            det.runtime,
            getattr(det, "input_size", "?"),
            cfg.model.tiles,
        )
        return det

    def _make_source(self, cfg: Config, detector: Detector | TiledDetector) -> ResilientSource:
        """Open the source; a bad spec raises, a camera that is absent or busy is retried."""
        from edgedetect.sources import open_source

        s = cfg.source
        lores = lores_size(detector)

        def opener(spec: str) -> Any:
            if self.source_opener is not None:
                return self.source_opener(spec)
            return open_source(spec, loop=s.loop, lores_size=lores)

        def on_event(kind: str) -> None:
            if kind == "reconnect":
                self.metrics.reconnects.inc()
            elif kind == "stall":
                self.metrics.stalls.inc()
            else:
                self.metrics.error(f"source_{kind}")

        src = ResilientSource(
            s.spec,
            opener,
            loop=s.loop,
            stall_timeout_s=cfg.service.stall_timeout_s,
            reconnect_max_s=s.reconnect_max_s,
            on_event=on_event,
        )
        try:
            src.open()
        except SourceLost as e:  # camera absent or busy: keep trying, unhealthy meanwhile
            log.warning("source %s unavailable (%s); will keep trying", src.shown, redact(str(e)))
            src.last_error = redact(str(e))
        return src

    @staticmethod
    def _make_gate(cfg: Config) -> MotionGate | None:
        mo = cfg.motion
        if not mo.enabled:
            return None
        return MotionGate(mo.pixel_delta, mo.min_area, mo.max_interval_s, mo.hold_s, mo.width)

    def _make_recorder(self, cfg: Config, src: ResilientSource | None) -> ClipRecorder | None:
        """The `[clips]` recorder for source `src` (None when off); its counts go to the clip
        metrics. An unannotated Pi camera records with picamera2's hardware encoder, bound to
        `src` (so a new source needs a new recorder); anything else with OpenCV."""
        if not cfg.clips.enabled:
            return None
        writer, why = choose_writer(cfg.clips.annotated, src)
        log.info("clips: %s (%s)", "hardware H.264" if writer else "OpenCV software encoding", why)
        return ClipRecorder.from_config(cfg.clips, on_count=self.metrics.clip, writer=writer)

    def _start_pipeline(self) -> None:
        from edgedetect.pipeline import Pipeline

        src, detector = self.source, self.detector
        assert src is not None and detector is not None, "start() opens both first"
        inner = src.inner
        fps = getattr(inner, "fps", None) if inner is not None else None
        # Offline sources: every frame, played at the file's own rate like a camera would deliver.
        # The service owns the source (a reload may keep it for a new pipeline): close_source=False.
        self.pipeline = Pipeline(
            src,
            detector,
            sinks=[self.sink],
            gate=self.gate,
            every_frame=not src.live,
            pace=fps if (not src.live and fps) else None,
            annotate=False,
            thread_timeout=1.0,
            close_source=False,
        )
        self.metrics.attach_stats(self.pipeline_stats)
        self.pipeline.start()

    def _http_app(self, cfg: Config) -> HttpApp:
        h = cfg.http
        return HttpApp(
            self.health,
            self.render_metrics,
            self.live.jpeg,
            h.token,
            h.stream_fps,
            h.max_streams,
            status=self.web_status,
            events=self.recent.latest,
            folders=self.web_folders,
        )

    def _bind_http(self, cfg: Config) -> HttpServer | None:
        """A server, socket bound but not yet serving: a busy port fails here, before any swap."""
        h = cfg.http
        if not h.enabled:
            return None
        host, port = parse_listen(h.listen)
        app = self._http_app(cfg)
        try:
            return HttpServer(app, host, port, h.threads, **_server_limits(h))
        except OSError as e:
            raise ConfigError(
                f"{cfg.where}: [http] listen = {h.listen!r}: cannot listen "
                f"({e.strerror or e}); pick a free port or another address"
            ) from None

    # ------------------------------------------------------------------ state
    def health(self) -> tuple[bool, dict[str, Any]]:
        now = time.monotonic()
        last = self.sink.last_frame_time
        age = None if last is None else now - last
        stall = self.cfg.service.stall_timeout_s
        loaded = self.detector is not None
        running = self.pipeline is not None and self.pipeline.running
        ok = loaded and running and age is not None and age < stall
        stats = self.pipeline_stats()
        src = self.source
        info = {
            "status": "ok" if ok else "unhealthy",
            "model_loaded": loaded,
            "pipeline": stats.get("state", "not started"),
            "source": redact(self.cfg.source.spec),
            "source_connected": bool(src and src.connected),
            "source_error": redact(src.last_error) if src and src.last_error else None,
            "last_frame_age_s": None if age is None else round(age, 3),
            "stall_timeout_s": stall,
            "fps": (stats.get("fps") or {}).get("output", 0.0),
            "persons": self.tracker.count,
            "zones": self.sink.rules.counts(),  # persons per [zones.NAME] now
            "lines": self.sink.rules.line_counts(),  # crossings per [lines.NAME] and direction
            "uptime_s": round(now - self.started, 1),
            "run_id": self.run_id,
            "reloads": self.reloads,
            "reload_failures": self.reload_failures,
            "last_reload_error": self.last_reload_error or None,
        }
        return ok, info

    def web_status(self) -> dict[str, Any]:
        """/api/status for the page: the health info plus timings, drops and what is configured;
        the model as a file name only and the source redacted (as in /healthz)."""
        _, info = self.health()
        stats = self.pipeline_stats()
        cfg = self.cfg
        inference = (stats.get("timings_ms") or {}).get("inference") or {}
        model = getattr(self.detector, "model_path", None) or cfg.model.path
        info.setdefault("zones", {})
        info.setdefault("lines", {})
        info.update(
            inference_ms=inference.get("mean"),
            dropped_frames=sum((stats.get("dropped") or {}).values()),
            model=os.path.basename(str(model)) if model else "",
            threshold=cfg.model.threshold,
            snapshots=bool(cfg.snapshots.enabled),
            clips=bool(cfg.clips.enabled),
        )
        return info

    def web_folders(self) -> dict[str, str | None]:
        """The folders /snapshots/NAME and /clips/NAME read: the current config's, so a reload
        that moves them needs no new HTTP app."""
        cfg = self.cfg
        return {
            "snapshots": cfg.snapshots.dir if cfg.snapshots.enabled else None,
            "clips": cfg.clips.dir if cfg.clips.enabled else None,
        }

    def pipeline_stats(self) -> dict[str, Any]:
        """`pipeline.stats()` ({} before the pipeline exists); safe from the HTTP threads."""
        return self.pipeline.stats() if self.pipeline is not None else {}

    def render_metrics(self) -> bytes:
        ok, info = self.health()
        self.metrics.healthy.set(1 if ok else 0)
        age = info["last_frame_age_s"]
        self.metrics.last_frame_age.set(age if age is not None else -1)
        return self.metrics.render()

    # ------------------------------------------------------------------ events
    def emit(self, te: TrackEvent, frame: Frame, dets: Detections) -> None:
        """Called in the output thread for each tracker event."""
        self.metrics.events.labels(te.type).inc()
        with self._outputs_lock:
            outputs = self.outputs
        if outputs is not None:
            outputs.publish(te, frame, dets)

    def flush_outputs(self) -> None:
        with self._outputs_lock:
            outputs = self.outputs
        if outputs is not None:
            outputs.flush()

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        """Load the model, check output paths, bind the HTTP port (exit 2 on any), then open
        outputs, source, pipeline and serve HTTP.

        What can fail on the user's input is done before any thread starts; if a later step
        fails, what was started is stopped before the error leaves: a thread still reading a
        video in C++ when the interpreter exits aborts the process instead of exiting 2.
        """
        cfg = self.cfg
        logging.getLogger("edgedetect").setLevel(cfg.service.log_level.upper())
        check_output_paths(cfg)
        self._warn_exposure(cfg)
        self.detector = self._make_detector(cfg)
        self.metrics.model_loaded.set(1)
        self.http = self._bind_http(cfg)
        try:
            self._start_parts(cfg)
        except BaseException:
            self.shutdown()
            raise

    def _start_parts(self, cfg: Config) -> None:
        self.outputs = Outputs.from_config(cfg, self.metrics, self.run_id, self.recent)
        self.gate = self._make_gate(cfg)
        assert self.detector is not None, "start() loads it first"
        self.source = self._make_source(cfg, self.detector)
        self.sink.recorder = self._make_recorder(cfg, self.source)  # it may need the camera
        if cfg.preview.enabled:
            from edgedetect.service.preview import open_preview

            self.sink.preview = open_preview(cfg.preview.backend, self.source)
        self._start_pipeline()
        if self.http is not None:
            self.http.start()
        if self.install_signals:
            signal.signal(signal.SIGTERM, lambda *a: self.request_stop())
            signal.signal(signal.SIGINT, lambda *a: self.request_stop())
            signal.signal(signal.SIGHUP, lambda *a: self.request_reload())
        shown = redact(cfg.source.spec)
        self.notifier.ready(f"started; source {shown}")
        log.info(
            "edgedetect service running (source %s, run %s, pid %d)",
            shown,
            self.run_id,
            os.getpid(),
        )

    @staticmethod
    def _warn_exposure(cfg: Config) -> None:
        if exposed_without_token(cfg):
            log.warning(
                "HTTP listens on %s without a token (allow_unauthenticated = true): anyone who can "
                "reach it sees the camera",
                cfg.http.listen,
            )

    def request_stop(self) -> None:
        self._stop.set()

    def request_reload(self) -> None:
        self._reload.set()  # handled by the main loop within one tick (0.2 s)

    def run(self) -> int:
        """Main loop: watchdog, STATUS, stall log, reload, end/failure detection.
        Returns the exit code."""
        wd = watchdog_interval_s()
        tick = min(0.2, wd or 0.2)
        last_ping = last_status = 0.0
        while not self._stop.wait(tick):
            now = time.monotonic()
            if self._reload.is_set():
                self._reload.clear()
                self.reload()
            p = self.pipeline
            if p is not None and not p.running:
                if p.error is not None:
                    log.error("pipeline failed: %s", redact(str(p.error)))
                    self.exit_code = 1
                elif getattr(p, "source_state", "") == "ended":
                    log.info("source ended; stopping")
                else:
                    log.error("pipeline stopped without an error or the end of its source; exiting")
                    self.exit_code = 1
                break
            ok, info = self.health()
            self.metrics.healthy.set(1 if ok else 0)
            self._log_stall(ok, info)
            # Watchdog: only while frames flow, or while the source is actively reconnecting (a
            # camera unplugged is retried in-process; a read stuck forever stops the pings).
            src = self.source
            window = info["stall_timeout_s"] + (
                src.reconnect_max_s if src else 0.0
            )  # longest backoff
            retrying = bool(src and not src.connected and now - src.last_attempt < window)
            if wd and (ok or retrying) and now - last_ping >= wd:
                self.notifier.watchdog()
                last_ping = now
            if now - last_status >= 2.0:
                self.notifier.status(self.status_text(info))
                last_status = now
        return self.shutdown()

    def _log_stall(self, ok: bool, info: dict[str, Any]) -> None:
        age = info["last_frame_age_s"]
        if not ok and not self._stalled and age is not None and age >= info["stall_timeout_s"]:
            self._stalled = True
            log.error(
                "no frame for %.1f s (stall_timeout_s %.1f): camera stalled or gone; "
                "/healthz is 503",
                age,
                info["stall_timeout_s"],
            )
        elif ok and self._stalled:
            self._stalled = False
            log.info("frames flowing again")

    def status_text(self, info: dict[str, Any]) -> str:
        state = (
            "ok"
            if info["status"] == "ok"
            else ("reconnecting" if not info["source_connected"] else "stalled")
        )
        return f"{info['fps']:.1f} fps, {info['persons']} person(s), source {state}"

    # ------------------------------------------------------------------ reload
    def reload(self) -> None:
        """SIGHUP: build what the new config changes, then swap it in; on failure keep the old."""
        self.notifier.notify(RELOADING=1, MONOTONIC_USEC=int(time.monotonic() * 1e6))
        try:
            plan: ReloadPlan | None = None
            try:
                new = apply_overrides(load_config(self.config_path), self.overrides)
                plan = self._prepare(new)
                self._commit(plan)
            except Exception as e:  # noqa: BLE001 - whatever it was, the running service stays
                if plan is not None:
                    plan.discard()
                self._reload_failed(e)
                return
            self.reloads += 1
            self.metrics.reloads.inc()
            self.last_reload_error = ""
            log.info("reloaded %s (threshold %.2f)", self.config_path, self.cfg.model.threshold)
        finally:
            self.notifier.notify(READY=1, STATUS="reloaded")

    def _reload_failed(self, e: BaseException) -> None:
        why = str(e) if isinstance(e, EdgeDetectError) else f"{type(e).__name__}: {e}"
        self.reload_failures += 1
        self.last_reload_error = redact(why)
        self.metrics.reload_failures.inc()
        self.metrics.error("config")
        log.error("reload failed, keeping the running configuration: %s", self.last_reload_error)

    def _prepare(self, new: Config) -> ReloadPlan:
        """Build every part the new config changes; nothing running is touched yet."""
        old = self.cfg
        changed = new.changed(old)
        plan = ReloadPlan(new)
        try:
            # only what changed: a full disk must not block a threshold
            check_output_paths(new, changed)
            model_changed = any(new.model[k] != old.model[k] for k in MODEL_KEYS)
            if model_changed:
                plan.detector = self._make_detector(new)
            detector = plan.detector or self.detector
            assert detector is not None, "a reload comes after start()"
            size_changed = plan.detector is not None and lores_size(plan.detector) != lores_size(
                self.detector
            )
            if (
                new.source.spec != old.source.spec
                or new.source.loop != old.source.loop
                or size_changed
            ):
                plan.source = self._make_source(new, detector)
            if changed & set(OUTPUT_SECTIONS):
                plan.outputs = Outputs.from_config(new, self.metrics, self.run_id, self.recent)
            if "clips" in changed or plan.source is not None:
                plan.recorder = self._make_recorder(new, plan.source or self.source)
                plan.new_recorder = True
            if "http" in changed:
                old_addr = parse_listen(old.http.listen) if old.http.enabled else None
                new_addr = parse_listen(new.http.listen) if new.http.enabled else None
                if new_addr is not None and new_addr == old_addr and self.http is not None:
                    plan.http_app = self._http_app(new)  # same socket, new token/fps/threads
                else:
                    plan.http = self._bind_http(new)
        except BaseException:
            plan.discard()
            raise
        return plan

    def _commit(self, plan: ReloadPlan) -> None:
        """Swap in `_prepare`'s build, apply in-place settings. Nothing here can fail on input."""
        new, old = plan.cfg, self.cfg
        assert self.pipeline is not None and self.detector is not None, "after start()"
        if "http" in new.changed(old):
            self._swap_http(plan)
        logging.getLogger("edgedetect").setLevel(new.service.log_level.upper())
        if plan.detector is not None or plan.source is not None:
            log.info(
                "reload: %s changed; restarting the pipeline",
                "source" if plan.source is not None else "model",
            )
            self.pipeline.stop(1.0)
            if plan.detector is not None:
                self.detector, plan.detector = plan.detector, None
            if plan.source is not None:
                stale, self.source, plan.source = self.source, plan.source, None
                if stale is not None:
                    stale.close()
            self.gate = self._make_gate(new)
            self._start_pipeline()
        else:
            mo = new.motion
            if mo.enabled and self.gate is not None:
                self.gate.configure(
                    pixel_delta=mo.pixel_delta,
                    min_area=mo.min_area,
                    max_interval_s=mo.max_interval_s,
                    hold_s=mo.hold_s,
                    width=mo.width,
                )
            elif mo.enabled != old.motion.enabled:
                self.gate = self._make_gate(new)
                self.pipeline.gate = self.gate  # read per frame by the capture thread
        self.detector.configure(threshold=float(new.model.threshold))
        src = self.source
        if src is not None:  # read on every wait / backoff: no reopen needed
            src.stall_timeout_s = new.service.stall_timeout_s
            src.reconnect_max_s = new.source.reconnect_max_s
        self._configure_scene(new)
        t = new.tracker
        self.tracker.configure(
            iou_threshold=t.iou_threshold,
            max_center_distance=t.max_center_distance,
            enter_frames=t.enter_frames,
            leave_frames=t.leave_frames,
        )
        if plan.outputs is not None:
            with self._outputs_lock:
                stale_outputs, self.outputs = self.outputs, plan.outputs
            plan.outputs = None
            if stale_outputs is not None:  # the new MQTT client (if any) has said 'online' already
                stale_outputs.close(farewell=not new.mqtt.enabled)
        if plan.new_recorder:  # the old one finishes its clip; the new starts empty
            stale_recorder, self.sink.recorder = self.sink.recorder, plan.recorder
            plan.recorder = None
            if stale_recorder is not None:
                stale_recorder.close(1.0)
        self.live.quality = new.http.jpeg_quality
        self.cfg = new
        self._warn_exposure(new)

    def _configure_scene(self, new: Config) -> None:
        """New filter at once (it keeps no state); new zones and lines on the next frame, in the
        output thread. Tracks continue; a zone or line whose name and shape did not change keeps
        its members and counters, one that changed starts from 0 and its persons enter again."""
        old = self.cfg
        if new.filters != old.filters or new.masks != old.masks:
            self.sink.filter = DetectionFilter.from_config(new)
        if new.zones != old.zones or new.lines != old.lines:
            self.sink.set_rules(SceneRules.from_config(new))

    def _swap_http(self, plan: ReloadPlan) -> None:
        """Start the new server (bound in `_prepare`) before stopping the old, or re-app the old."""
        stale = self.http
        if plan.http_app is not None and stale is not None:
            stale.set_app(
                plan.http_app, threads=plan.cfg.http.threads
            )  # no rebind: no moment without /healthz
            stale.set_limits(**_server_limits(plan.cfg.http))
            return
        self.http, plan.http = plan.http, None
        if self.http is not None:
            self.http.start()
        if stale is not None:
            stale.stop()

    def shutdown(self) -> int:
        """Stop capture, drain the pipeline, emit person_left for open tracks,
        flush and close outputs."""
        t0 = time.monotonic()
        self.notifier.stopping()
        log.info("stopping")
        if self.pipeline is not None:
            self.pipeline.stop(min(1.5, STOP_BUDGET_S))
        recorder, clip = self.sink.recorder, ""
        if recorder is not None:  # the open episode's clip ends here; the last events name it
            clip = recorder.clip  # (before the source: a hardware encoder runs on the camera)
            recorder.close(max(0.2, min(1.0, (STOP_BUDGET_S - (time.monotonic() - t0)) / 2)))
        if self.source is not None:
            self.source.close()
        frame = self.live.frame
        # zone_left for persons still in a zone first, then their person_left
        for te in self.sink.close_scene() + self.tracker.close_all(time.monotonic()):
            if frame is not None:
                self.metrics.events.labels(te.type).inc()
                with self._outputs_lock:
                    outputs = self.outputs
                if outputs is not None:
                    te = replace(te, clip=clip) if clip else te
                    outputs.dispatch(make_event(te, time.time(), frame.id, run_id=self.run_id))
        if self.http is not None:
            _stop_server(self.http)  # bound, perhaps never started (a start that failed later)
        preview = self.sink.preview
        if preview is not None:
            try:
                preview.close()
            except Exception:
                pass
        if self.outputs is not None:
            left = STOP_BUDGET_S - (time.monotonic() - t0)
            self.outputs.close(timeout=max(0.1, min(0.5, left / 3)))
        self.notifier.close()
        log.info("stopped in %.2f s", time.monotonic() - t0)
        return self.exit_code


def make_service(
    config_path: str | None, overrides: dict[str, Any] | None = None, install_signals: bool = True
) -> Service:
    cfg = apply_overrides(load_config(config_path), overrides or {})
    return Service(cfg, config_path, overrides, install_signals)
