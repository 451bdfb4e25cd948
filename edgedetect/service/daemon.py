"""The service loop: pipeline + tracker + outputs + HTTP + systemd notifications, reload and stop.

Threads: the pipeline's three (capture, inference, output), the resilient source's reader, one
worker per network output, paho's network loop, the HTTP server's pool, and the main thread,
which only handles signals, health, the watchdog, STATUS and reloads. Everything per-frame
happens in the pipeline's output thread through `ServiceSink` (frame_sink.py); events go to the
`Outputs` set (outputset.py); /snapshot.jpg and /stream.mjpg read the `LiveView` (liveview.py).
What the service reports (/healthz, /api/status, /metrics, systemd's STATUS) is in status.py.

A reload is a transaction (reload.py): everything new is built first (detector, source, outputs,
clip recorder, HTTP listener) while the old keeps running; only then are the changed parts
swapped in. A reload that fails anywhere leaves the running service untouched, is logged on one
line, counted in `edgedetect_reload_failures_total` and shown in /healthz. The process ends only
on SIGTERM/SIGINT (0), at the end of a finite source (0), on a file or folder source it cannot
read (2), or on a fault it cannot survive (1).
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from edgedetect.detections import Detections
from edgedetect.errors import ConfigError, EdgeDetectError, ImageError, SourceError, SourceLost
from edgedetect.resilient import ResilientSource
from edgedetect.service import reload, status
from edgedetect.service.clip_picamera import choose_writer
from edgedetect.service.clip_recorder import ClipRecorder
from edgedetect.service.config import (
    Config,
    apply_overrides,
    exposed_without_token,
    left_off_warnings,
    load_config,
    parse_listen,
    redact,
    server_limits,
)
from edgedetect.service.config_files import check_output_paths
from edgedetect.service.events import make_event
from edgedetect.service.frame_sink import ServiceSink
from edgedetect.service.http import HttpServer, stop_server
from edgedetect.service.liveview import LiveView
from edgedetect.service.metrics import ServiceMetrics
from edgedetect.service.motion import MotionGate
from edgedetect.service.notify import Notifier, watchdog_interval_s
from edgedetect.service.outputs import SceneCounts
from edgedetect.service.outputset import Outputs
from edgedetect.service.recent import RecentEvents
from edgedetect.service.tracker import PersonTracker, TrackEvent
from edgedetect.service.webapp import HttpApp
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


def build_config_detector(cfg: Config) -> Detector | TiledDetector:
    """`build_detector` for a config's `[model]`, an error naming the config file and section
    too: the model's path came from there (check-config, the start and a reload alike)."""
    try:
        return build_detector(cfg.model)
    except EdgeDetectError as e:
        raise type(e)(f"{cfg.where}: [model]: {e}") from None


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
        self.web_folders = status.WebFolders(cfg)  # where their files are read (reload.commit)
        t = cfg.tracker
        self.tracker = PersonTracker(
            t.iou_threshold, t.max_center_distance, t.enter_frames, t.leave_frames
        )
        self.pipeline: Pipeline | None = None
        # Drops of the pipelines a reload replaced: the service's counter must never go back.
        self._dropped_before: dict[str, int] = {}
        self.source: ResilientSource | None = None
        self.detector: Detector | TiledDetector | None = None
        self.detector_files: reload.FilesStamp = ()  # reload.model_files_stamp(detector)
        self.gate: MotionGate | None = None
        self.frame_interval_s = 0.0  # 1 / the pace a file or folder is read at (0: not paced)
        self.http: HttpServer | None = None
        self.outputs: Outputs | None = None
        self._outputs_lock = threading.Lock()
        self.sink = self._new_sink(cfg)
        self._stop = threading.Event()
        self._reload = threading.Event()
        self._stall_log = status.StallLog()
        self.exit_code = 0
        self.fatal = ""  # the one-line error of an exit 2 found while running (a bad file source)
        self.reloads = 0
        self.reload_failures = 0
        self.last_reload_error = ""
        self.started = time.monotonic()

    def _new_sink(self, cfg: Config) -> ServiceSink:
        """The sink the pipeline hands each frame to, wired to this service's metrics, tracker,
        outputs and scene rules (no pipeline yet: no frame can race the wiring)."""
        sink = ServiceSink(self.metrics, self.tracker, self.live, self.emit, self.flush_outputs)
        sink.source_lost = self._source_lost  # asked by the output thread (frame_sink.py)
        sink.rules_taken = self._rules_taken
        sink.filter = DetectionFilter.from_config(cfg)
        sink.rules = SceneRules.from_config(cfg)
        self.metrics.set_scene(sink.rules.counts(), sink.rules.line_counts())
        self.metrics.clip_buffer_bytes.set_function(
            lambda: getattr(self.sink.recorder, "buffer_bytes", 0)
        )
        return sink

    @property
    def preview(self) -> Preview | None:
        return self.sink.preview

    # ------------------------------------------------------------------ building blocks
    def _make_detector(self, cfg: Config) -> Detector | TiledDetector:
        det = build_config_detector(cfg)
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
        from edgedetect.sources import check_stream_url, open_source

        s = cfg.source
        try:  # 'rtsp://' with no host would be retried forever as tcp://:554
            check_stream_url(s.spec)
        except SourceError as e:
            raise SourceError(f"{cfg.where}: [source] spec: {e}") from None
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
        except SourceError as e:  # the user's to fix: name the file and key, as check-config does
            raise SourceError(f"{cfg.where}: [source] spec: {e}") from None
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

    def _start_pipeline(self, cfg: Config) -> None:
        """A pipeline over the service's source and detector, paced as `cfg` says."""
        from edgedetect.pipeline import Pipeline

        src, detector = self.source, self.detector
        assert src is not None and detector is not None, "start() opens both first"
        if self.pipeline is not None:  # a reload's restart: carry its drops over
            for stage, n in self.pipeline.dropped().items():
                self._dropped_before[stage] = self._dropped_before.get(stage, 0) + n
        inner = src.inner
        fps = getattr(inner, "fps", None) if inner is not None else None
        # Images have no rate of their own: unpaced, a looping folder kept a core busy re-reading
        # the same few pictures hundreds of times a second.
        fps = fps or cfg.source.image_fps or None
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
        self.frame_interval_s = 1.0 / fps if (not src.live and fps) else 0.0  # status.stall_after
        self.metrics.attach_stats(self.pipeline_stats)
        self.sink.expect_frames(self.frame_interval_s)  # a restart's first frame: no outage yet
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
            recording=lambda: getattr(self.sink.recorder, "clip", ""),
            source_lost=self._source_lost,
        )

    def _bind_http(self, cfg: Config) -> HttpServer | None:
        """A server, socket bound but not yet serving: a busy port fails here, before any swap."""
        h = cfg.http
        if not h.enabled:
            return None
        host, port = parse_listen(h.listen)
        app = self._http_app(cfg)
        try:
            return HttpServer(app, host, port, h.threads, **server_limits(h))
        except OSError as e:
            raise ConfigError(
                f"{cfg.where}: [http] listen = {h.listen!r}: cannot listen "
                f"({e.strerror or e}); pick a free port or another address"
            ) from None

    # ------------------------------------------------------------------ reporting (status.py)
    def health(self) -> tuple[bool, dict[str, Any]]:
        """(ok, the /healthz body); also asked by the main loop, /metrics and /api/status."""
        return status.health(self)

    def web_status(self) -> dict[str, Any]:
        """/api/status for the page."""
        return status.web_status(self)

    def render_metrics(self) -> bytes:
        """/metrics."""
        return status.render_metrics(self)

    def pipeline_stats(self) -> dict[str, Any]:
        """`pipeline.stats()` ({} before the pipeline exists), with `dropped` counted since the
        service started (over the pipelines a reload replaced); safe from the HTTP threads."""
        if self.pipeline is None:
            return {}
        stats = self.pipeline.stats()
        before = self._dropped_before
        stats["dropped"] = {k: v + before.get(k, 0) for k, v in stats["dropped"].items()}
        return stats

    # ------------------------------------------------------------------ events
    def emit(self, te: TrackEvent, frame: Frame, dets: Detections) -> None:
        """Called in the output thread for each tracker event; under the lock, so a reload
        swaps (and then closes) the outputs between events, never under one."""
        self.metrics.events.labels(te.type).inc()
        with self._outputs_lock:
            if self.outputs is not None:
                self.outputs.publish(te, frame, dets)

    def scene_counts(self) -> SceneCounts:
        """The people in view now, in all, per zone and over each line: what MQTT turned on by
        a reload starts from (read from the main thread; each value is one atomic read)."""
        rules = self.sink.rules
        return SceneCounts(self.tracker.count, rules.counts(), rules.line_counts())

    def _rules_taken(self, rules: SceneRules) -> None:
        """A reload's zones and lines took over (output thread): MQTT's line totals become
        theirs, so a moved line restarts from 0 there as in /healthz and /metrics (no event
        says so: the old totals stayed retained until the moved line's next crossing)."""
        with self._outputs_lock:
            mqtt = self.outputs.mqtt() if self.outputs is not None else None
        if mqtt is not None:
            mqtt.set_lines(rules.line_counts())

    def flush_outputs(self) -> None:
        with self._outputs_lock:
            if self.outputs is not None:
                self.outputs.flush()

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        """Load the model, check output paths, bind the HTTP port (exit 2 on any), then open
        outputs, source, pipeline and serve HTTP.

        What can fail on the user's input is done before any thread starts; if a later step
        fails, what was started is stopped before the error leaves: a thread still reading a
        video in C++ when the interpreter exits aborts the process instead of exiting 2.
        """
        cfg = self.cfg
        if self.install_signals:  # first: a SIGTERM or SIGHUP while the model loads is not fatal
            signal.signal(signal.SIGTERM, lambda *a: self.request_stop())
            signal.signal(signal.SIGINT, lambda *a: self.request_stop())
            signal.signal(signal.SIGHUP, lambda *a: self.request_reload())
        logging.getLogger("edgedetect").setLevel(cfg.service.log_level.upper())
        check_output_paths(cfg)
        self._warn_about(cfg)
        self.detector = self._make_detector(cfg)
        self.detector_files = reload.model_files_stamp(self.detector)
        self.metrics.model_loaded.set(1)
        self.http = self._bind_http(cfg)
        try:
            self._start_parts(cfg)
        except BaseException:
            self.shutdown()
            raise

    def _start_parts(self, cfg: Config) -> None:
        self.recent.resume(cfg.events.jsonl)  # before the outputs write this run's first event
        self.outputs = Outputs.from_config(cfg, self.metrics, self.run_id, self.recent)
        self.gate = self._make_gate(cfg)
        assert self.detector is not None, "start() loads it first"
        self.source = self._make_source(cfg, self.detector)
        self.sink.recorder = self._make_recorder(cfg, self.source)  # it may need the camera
        if cfg.preview.enabled:
            from edgedetect.service.preview import open_preview

            self.sink.preview = open_preview(cfg.preview.backend, self.source)
        self._start_pipeline(cfg)
        if self.http is not None:
            self.http.start()
        shown = redact(cfg.source.spec)
        self.notifier.ready(f"started; source {shown}")
        log.info(
            "edgedetect service running (source %s, run %s, pid %d)",
            shown,
            self.run_id,
            os.getpid(),
        )

    @staticmethod
    def _warn_about(cfg: Config) -> None:
        """What a config leaves open, or off by mistake: logged at start and at every reload."""
        if exposed_without_token(cfg):
            log.warning(
                "HTTP listens on %s without a token (allow_unauthenticated = true): anyone who can "
                "reach it sees the camera",
                cfg.http.listen,
            )
        for line in left_off_warnings(cfg):
            log.warning("%s: %s", cfg.path or "config", line)

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
            if self._pipeline_ended():
                break
            ok, info = self.health()
            self.metrics.healthy.set(1 if ok else 0)
            self._stall_log.update(ok, info)
            self._report_camera()
            if wd and (ok or self._retrying(now, info)) and now - last_ping >= wd:
                self.notifier.watchdog()
                last_ping = now
            if now - last_status >= 2.0:
                self.notifier.status(status.status_text(info))
                last_status = now
        return self.shutdown()

    def _pipeline_ended(self) -> bool:
        """True once the pipeline stopped: the end of a finite source (0), a file source it
        cannot read (2, the message in ``fatal``) or a failure (1)."""
        p = self.pipeline
        if p is None or p.running:
            return False
        if _unreadable_source(p.error):  # a file or folder it cannot read: fix the config, 2
            self.fatal = f"{self.cfg.where}: [source] spec: {redact(str(p.error))}"
            self.exit_code = 2
        elif p.error is not None:
            log.error("pipeline failed: %s", redact(str(p.error)))
            self.exit_code = 1
        elif getattr(p, "source_state", "") == "ended":
            log.info("source ended; stopping")
        else:
            log.error("pipeline stopped without an error or the end of its source; exiting")
            self.exit_code = 1
        return True

    def _retrying(self, now: float, info: dict[str, Any]) -> bool:
        """The watchdog pings while frames flow or while the source is actively reconnecting (a
        camera unplugged is retried in-process; a read stuck forever stops the pings)."""
        src = self.source
        window = info["stall_timeout_s"] + (src.reconnect_max_s if src else 0.0)  # longest backoff
        return bool(src and not src.connected and now - src.last_attempt < window)

    def _report_camera(self) -> None:
        """MQTT's camera sensor follows the source, checked every tick (`set_camera` publishes
        changes only; a reload's new output starts from the one it replaced)."""
        with self._outputs_lock:
            mqtt = self.outputs.mqtt() if self.outputs is not None else None
        if mqtt is not None:
            mqtt.set_camera(not self._source_lost())

    def _source_lost(self) -> bool:
        """The source is known gone: the signal that turns /healthz to 503 (not connected),
        for a camera or stream, or a file or folder that failed (a looping one between two
        passes is briefly not connected too, without an error: that is no outage)."""
        src = self.source
        return bool(src and not src.connected and (src.live or src.last_error))

    def reload(self) -> None:
        """SIGHUP: the reload transaction (reload.py); on failure the running service stays."""
        reload.reload(self)

    def shutdown(self) -> int:
        """Stop capture, drain the pipeline, emit person_left for open tracks,
        flush and close outputs."""
        t0 = time.monotonic()
        self.notifier.stopping()
        log.info("stopping")
        if self.source is not None:  # a capture thread waiting out a reconnect backoff returns now
            self.source.stop_reading()
        if self.pipeline is not None:
            self.pipeline.stop(min(1.5, STOP_BUDGET_S))
        recorder, clip = self.sink.recorder, ""
        if recorder is not None:  # the open episode's clip ends here; the last events name it
            clip = recorder.clip  # (before the source: a hardware encoder runs on the camera)
            budget = max(0.2, min(1.0, (STOP_BUDGET_S - (time.monotonic() - t0)) / 2))
            recorder.close(budget, exiting=True)
        if self.source is not None:
            self.source.close()
        self._close_tracks(clip)
        if self.http is not None:
            stop_server(self.http)  # bound, perhaps never started (a start that failed later)
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

    def _close_tracks(self, clip: str) -> None:
        """At stop, zone_left for persons still in a zone first, then their person_left, on the
        last frame shown (none: no frame, no events) and naming the clip that just ended."""
        frame = self.live.frame
        for te in self.sink.close_scene() + self.tracker.close_all(time.monotonic()):
            if frame is not None:
                self.metrics.events.labels(te.type).inc()
                with self._outputs_lock:
                    outputs = self.outputs
                if outputs is not None:
                    te = replace(te, clip=clip) if clip else te
                    outputs.dispatch(make_event(te, time.time(), frame.id, run_id=self.run_id))


def _unreadable_source(error: BaseException | None) -> bool:
    """The pipeline stopped because its file or folder source cannot be read (not a lost camera,
    which is a runtime fault): the user's to fix, like a bad config."""
    return isinstance(error, (SourceError, ImageError)) and not isinstance(error, SourceLost)


def make_service(
    config_path: str | None, overrides: dict[str, Any] | None = None, install_signals: bool = True
) -> Service:
    cfg = apply_overrides(load_config(config_path), overrides or {})
    return Service(cfg, config_path, overrides, install_signals)
