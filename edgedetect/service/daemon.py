"""The service: pipeline + tracker + outputs + HTTP + systemd notifications, with reload and clean stop.

Threads: the pipeline's three (capture, inference, output), the resilient source's reader, one
worker per network output, paho's network loop, waitress's pool, and the main thread, which
only handles signals, health, the watchdog and STATUS. Everything per-frame happens in the
pipeline's output thread through `ServiceSink`; nothing there can block on the network.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from typing import Any

import cv2
import numpy as np

from edgedetect.detections import Detections
from edgedetect.errors import EdgeDetectError, SourceLost
from edgedetect.service.config import Config, load_config, parse_listen
from edgedetect.service.events import Event, JsonlWriter, LogOutput, make_event, utc_stamp
from edgedetect.service.http import HttpApp, HttpServer
from edgedetect.service.metrics import ServiceMetrics
from edgedetect.service.motion import MotionGate
from edgedetect.service.notify import Notifier, watchdog_interval_s
from edgedetect.service.resilient import ResilientSource
from edgedetect.service.snapshots import SnapshotStore
from edgedetect.service.tracker import PersonTracker, TrackEvent

log = logging.getLogger("edgedetect.service")

STOP_BUDGET_S = 2.5  # SIGTERM to exit, leaving margin under the 3 s promise


class Outputs:
    """The reloadable set of event outputs and the snapshot store, built from one config."""

    def __init__(self, cfg: Config, metrics: ServiceMetrics) -> None:
        self.items: list[Any] = []
        self.snapshots: SnapshotStore | None = None
        ev = cfg["events"]
        if ev["log"]:
            self.items.append(LogOutput())
        if ev["jsonl"]:
            self.items.append(JsonlWriter(ev["jsonl"], int(ev["max_mb"] * 1024 * 1024), ev["backups"]))
        hooks = dict(on_error=metrics.error, on_drop=lambda name: metrics.output_dropped.labels(name).inc())
        wh = cfg["webhook"]
        if wh["url"]:
            from edgedetect.service.outputs import WebhookOutput

            self.items.append(WebhookOutput(wh["url"], wh["events"], wh["timeout_s"], wh["retries"],
                                            wh["queue"], wh["headers"], **hooks))
        mq = cfg["mqtt"]
        if mq["enabled"]:
            from edgedetect.service.outputs import MqttOutput

            self.items.append(MqttOutput(mq["host"], mq["port"], mq["topic_prefix"], mq["username"],
                                         mq["password"], mq["client_id"], mq["keepalive_s"], mq["queue"],
                                         mq["discovery"], mq["discovery_prefix"], mq["device_name"], **hooks))
        sn = cfg["snapshots"]
        if sn["enabled"]:
            self.snapshots = SnapshotStore(sn["dir"], int(sn["max_mb"] * 1024 * 1024), sn["max_files"],
                                           sn["quality"])

    def close(self, timeout: float = 0.5) -> None:
        for item in self.items:
            try:
                if hasattr(item, "pending"):
                    item.close(timeout)
                else:
                    item.close()
            except Exception as e:
                log.warning("closing %s output: %s", getattr(item, "name", item), e)


class LiveView:
    """The newest frame and its boxes, for /snapshot.jpg and /stream.mjpg.

    JPEG encoding happens on demand in the HTTP thread, at most once per frame: with no viewer
    the service spends nothing on it.
    """

    def __init__(self, quality: int = 75) -> None:
        self.quality = quality
        self._lock = threading.Lock()
        self._frame: Any = None
        self._dets: Detections | None = None
        self._cache: tuple[int, bytes] | None = None

    def update(self, frame: Any, dets: Detections) -> None:
        with self._lock:
            self._frame, self._dets = frame, dets

    def jpeg(self) -> tuple[int, bytes] | None:
        with self._lock:
            frame, dets, cache = self._frame, self._dets, self._cache
        if frame is None:
            return None
        if cache is not None and cache[0] == frame.id:
            return cache
        img = annotate(frame.image, dets)
        ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, int(self.quality)])
        if not ok:
            return None
        got = (frame.id, buf.tobytes())
        with self._lock:
            self._cache = got
        return got


def annotate(image: np.ndarray, dets: Detections | None) -> np.ndarray:
    """Boxes with labels (and track ids when known) on a copy of `image`."""
    from edgedetect.overlay import draw_detections

    if dets is None or len(dets) == 0:
        return image.copy()
    return draw_detections(image, dets)


def person_mask(dets: Detections) -> np.ndarray:
    """Which detections the tracker counts: label 'person' when the model has one, else all."""
    names = dets.names or {}
    person_ids = [i for i, n in names.items() if str(n).lower() == "person"]
    if not person_ids:
        return np.ones(len(dets), dtype=bool)
    return np.isin(dets.class_id, person_ids)


class ServiceSink:
    """The pipeline sink: metrics, tracking, events, snapshots, live view, preview, health."""

    name = "service"

    def __init__(self, service: Service) -> None:
        self.svc = service
        self.last_frame_time: float | None = None
        self._tracked = Detections.empty()

    def __call__(self, result: Any) -> None:
        svc, m = self.svc, self.svc.metrics
        self.last_frame_time = time.monotonic()
        m.frames.inc()
        frame = result.frame
        if result.skipped:
            m.skipped.inc()
            dets = self._tracked  # still scene: tracks are alive and their boxes still valid
        else:
            m.inferred.inc()
            m.inference.observe(result.inference_ms / 1000.0)
            dets = result.detections
            m.detections.set(len(dets))
            mask = person_mask(dets)
            persons = dets[mask]
            events, ids = svc.tracker.update(persons.xyxy, persons.score, frame.timestamp)
            tids = np.full(len(dets), -1, dtype=np.int64)
            tids[np.flatnonzero(mask)] = ids
            dets = Detections(dets.xyxy, dets.score, dets.class_id, dets.names, tids)
            confirmed = tids >= 0
            self._tracked = dets[confirmed]
            m.persons.set(svc.tracker.count)
            for te in events:
                svc.emit(te, frame, dets)
        svc.live.update(frame, dets)
        preview = svc.preview
        if preview is not None:
            try:
                preview(frame, dets.xyxy, _labels(dets))
            except Exception as e:
                m.error("preview")
                log.warning("preview failed (%s); disabling it", e)
                svc.preview = None
                try:
                    preview.close()
                except Exception:
                    pass

    def close(self) -> None:
        """Flush on the way out; the outputs themselves belong to the service (they survive reloads)."""
        self.svc.flush_outputs()


def _labels(dets: Detections) -> list[str]:
    labels = dets.labels
    if dets.tracker_id is None:
        return labels
    return [f"{lab} #{t}" if t >= 0 else lab for lab, t in zip(labels, dets.tracker_id, strict=True)]


class Service:
    """The daemon. `run()` blocks until SIGTERM/SIGINT, end of a non-looping source, or failure."""

    def __init__(self, cfg: Config, config_path: str | None = None, overrides: dict[str, Any] | None = None,
                 install_signals: bool = True, source_opener: Any = None) -> None:
        self.cfg = cfg
        self.source_opener = source_opener  # tests inject faulty sources; None = open_source
        self.config_path = config_path
        self.overrides = overrides or {}
        self.install_signals = install_signals
        self.metrics = ServiceMetrics()
        self.notifier = Notifier()
        self.live = LiveView(cfg["http"]["jpeg_quality"])
        t = cfg["tracker"]
        self.tracker = PersonTracker(t["iou_threshold"], t["max_center_distance"], t["enter_frames"],
                                     t["leave_frames"])
        self.preview: Any = None
        self.pipeline: Any = None
        self.source: ResilientSource | None = None
        self.detector: Any = None
        self.gate: MotionGate | None = None
        self.http: HttpServer | None = None
        self.outputs: Outputs | None = None
        self._outputs_lock = threading.Lock()
        self.sink = ServiceSink(self)
        self._stop = threading.Event()
        self._reload = threading.Event()
        self._stalled = False
        self.exit_code = 0
        self.reloads = 0
        self.started = time.monotonic()

    # ------------------------------------------------------------------ building blocks
    def _make_detector(self, cfg: Config) -> Any:
        from edgedetect.detector import Detector

        m = cfg["model"]
        det = Detector(m["path"] or None, labels=m["labels"] or None, threshold=m["threshold"],
                       classes=m["classes"], num_threads=m["threads"])
        self.metrics.model_loaded.set(1)
        log.info("model %s loaded (%s, input %s)", det.model_path, det.runtime, getattr(det, "input_size", "?"))
        return det

    def _make_source(self, cfg: Config) -> ResilientSource:
        from edgedetect.sources import open_source

        s = cfg["source"]
        lores = tuple(self.detector.input_size) if getattr(self.detector, "input_size", None) else (320, 240)

        def opener(spec: str) -> Any:
            if self.source_opener is not None:
                return self.source_opener(spec)
            return open_source(spec, loop=s["loop"], lores_size=lores)

        def on_event(kind: str) -> None:
            if kind == "reconnect":
                self.metrics.reconnects.inc()
            elif kind == "stall":
                self.metrics.stalls.inc()
            else:
                self.metrics.error(f"source_{kind}")

        src = ResilientSource(s["spec"], opener, loop=s["loop"], stall_timeout_s=cfg["service"]["stall_timeout_s"],
                              reconnect_max_s=s["reconnect_max_s"], on_event=on_event)
        try:
            src.open()
        except SourceLost as e:  # camera absent or busy at boot: keep trying, unhealthy meanwhile
            log.warning("source %s unavailable at start (%s); will keep trying", s["spec"], e)
            src.last_error = str(e)
        return src

    def _make_gate(self, cfg: Config) -> MotionGate | None:
        mo = cfg["motion"]
        if not mo["enabled"]:
            return None
        return MotionGate(mo["pixel_delta"], mo["min_area"], mo["max_interval_s"], mo["hold_s"], mo["width"])

    def _start_pipeline(self) -> None:
        from edgedetect.pipeline import Pipeline

        src = self.source
        assert src is not None
        inner = src.inner
        live = src.live
        fps = getattr(inner, "fps", None) if inner is not None else None
        # Offline sources: every frame, played at the file's own rate like a camera would deliver.
        self.pipeline = Pipeline(src, self.detector, sinks=[self.sink], gate=self.gate, every_frame=not live,
                                 pace=fps if (not live and fps) else None, annotate=False, reconnect=None,
                                 thread_timeout=1.0)
        self.metrics.attach_stats(self.pipeline_stats)
        self.pipeline.start()

    def _start_http(self, cfg: Config) -> None:
        h = cfg["http"]
        if not h["enabled"]:
            return
        host, port = parse_listen(h["listen"])
        app = HttpApp(self.health, self.render_metrics, self.live.jpeg, h["token"], h["stream_fps"])
        try:
            self.http = HttpServer(app, host, port, h["threads"]).start()
        except OSError as e:
            from edgedetect.errors import ConfigError

            raise ConfigError(f"{cfg.path or '<config>'}: [http] listen = {h['listen']!r}: cannot listen "
                              f"({e.strerror or e}); pick a free port or another address") from None

    # ------------------------------------------------------------------ state
    def health(self) -> tuple[bool, dict[str, Any]]:
        now = time.monotonic()
        last = self.sink.last_frame_time
        age = None if last is None else now - last
        stall = self.cfg["service"]["stall_timeout_s"]
        loaded = self.detector is not None
        running = self.pipeline is not None and self.pipeline.running
        ok = loaded and running and age is not None and age < stall
        stats = self.pipeline_stats()
        src = self.source
        info = {
            "status": "ok" if ok else "unhealthy",
            "model_loaded": loaded,
            "pipeline": stats.get("state", "not started"),
            "source": self.cfg["source"]["spec"],
            "source_connected": bool(src and src.connected),
            "source_error": (src.last_error if src else "") or None,
            "last_frame_age_s": None if age is None else round(age, 3),
            "stall_timeout_s": stall,
            "fps": (stats.get("fps") or {}).get("output", 0.0),
            "persons": self.tracker.count,
            "uptime_s": round(now - self.started, 1),
        }
        return ok, info

    def pipeline_stats(self) -> dict[str, Any]:
        """`pipeline.stats()`, retried: it reads deques the pipeline threads append to, and a
        concurrent append can raise "deque mutated during iteration" (reported upstream)."""
        p = self.pipeline
        for _ in range(5):
            if p is None:
                return {}
            try:
                return p.stats()
            except RuntimeError:
                time.sleep(0.001)
        return {}

    def render_metrics(self) -> bytes:
        ok, info = self.health()
        self.metrics.healthy.set(1 if ok else 0)
        age = info["last_frame_age_s"]
        self.metrics.last_frame_age.set(age if age is not None else -1)
        return self.metrics.render()

    # ------------------------------------------------------------------ events
    def emit(self, te: TrackEvent, frame: Any, dets: Detections) -> None:
        """Called in the output thread for each tracker event: snapshot, then every output."""
        m = self.metrics
        m.events.labels(te.type).inc()
        with self._outputs_lock:
            outputs = self.outputs
        snapshot = ""
        if te.type == "person_entered" and outputs is not None and outputs.snapshots is not None:
            try:
                path = outputs.snapshots.save(annotate(frame.image, dets),
                                              f"{utc_stamp(frame.wall_time)}_person{te.track_id}")
                snapshot = str(path)
                m.snapshots.inc()
            except Exception as e:  # disk full, permissions: count, log, keep detecting
                m.error("snapshots")
                log.error("snapshot for track %d failed: %s", te.track_id, e)
        event = make_event(te, frame.wall_time, frame.id, snapshot)
        if outputs is not None:
            self._dispatch(outputs, event)

    def _dispatch(self, outputs: Outputs, event: Event) -> None:
        for out in outputs.items:
            try:
                out.send(event)
            except Exception as e:
                self.metrics.error(out.name)
                log.error("%s output failed for %s: %s", out.name, event.type, e)

    def flush_outputs(self) -> None:
        with self._outputs_lock:
            outputs = self.outputs
        for out in outputs.items if outputs else []:
            flush = getattr(out, "flush", None)
            if flush is not None:
                try:
                    flush()
                except Exception as e:
                    self.metrics.error(out.name)
                    log.error("%s flush failed: %s", out.name, e)

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        """Load the model (fatal: exit 2 on a bad model), open outputs, source, pipeline, HTTP."""
        cfg = self.cfg
        logging.getLogger("edgedetect").setLevel(cfg["service"]["log_level"].upper())
        self.detector = self._make_detector(cfg)
        self.outputs = Outputs(cfg, self.metrics)
        self.gate = self._make_gate(cfg)
        self.source = self._make_source(cfg)
        if cfg["preview"]["enabled"]:
            self.preview = __import__("edgedetect.service.preview", fromlist=["open_preview"]).open_preview(
                cfg["preview"]["backend"], self.source)
        self._start_pipeline()
        self._start_http(cfg)
        if self.install_signals:
            signal.signal(signal.SIGTERM, lambda *a: self.request_stop())
            signal.signal(signal.SIGINT, lambda *a: self.request_stop())
            signal.signal(signal.SIGHUP, lambda *a: self.request_reload())
        self.notifier.ready(f"started; source {cfg['source']['spec']}")
        log.info("edgedetect service running (source %s, pid %d)", cfg["source"]["spec"], os.getpid())

    def request_stop(self) -> None:
        self._stop.set()

    def request_reload(self) -> None:
        self._reload.set()  # handled by the main loop within one tick (0.2 s)

    def run(self) -> int:
        """Main loop: watchdog, STATUS, stall log, reload, end/failure detection. Returns the exit code."""
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
                    log.error("pipeline failed: %s", p.error)
                    self.exit_code = 1
                else:
                    log.info("source ended; stopping")
                break
            ok, info = self.health()
            self.metrics.healthy.set(1 if ok else 0)
            self._log_stall(ok, info)
            # Watchdog: only while frames flow, or while the source is actively reconnecting (a
            # camera unplugged is retried in-process; a read stuck forever stops the pings).
            src = self.source
            window = info["stall_timeout_s"] + (src.reconnect_max_s if src else 0.0)  # longest backoff
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
            log.error("no frame for %.1f s (stall_timeout_s %.1f): camera stalled or gone; /healthz is 503",
                      age, info["stall_timeout_s"])
        elif ok and self._stalled:
            self._stalled = False
            log.info("frames flowing again")

    def status_text(self, info: dict[str, Any]) -> str:
        state = "ok" if info["status"] == "ok" else ("reconnecting" if not info["source_connected"] else "stalled")
        return f"{info['fps']:.1f} fps, {info['persons']} person(s), source {state}"

    def reload(self) -> None:
        """SIGHUP: re-read the config; thresholds and outputs change in place, the camera stays open.

        A changed source or model (path, labels, threads) restarts the pipeline with them; a
        config that fails validation is logged and ignored (the running service keeps going).
        """
        try:
            from edgedetect.service.config import apply_overrides

            new = apply_overrides(load_config(self.config_path), self.overrides)
        except EdgeDetectError as e:
            log.error("reload ignored: %s", e)
            self.metrics.error("config")
            return
        old = self.cfg
        self.notifier.notify(RELOADING=1, MONOTONIC_USEC=int(time.monotonic() * 1e6))
        try:
            logging.getLogger("edgedetect").setLevel(new["service"]["log_level"].upper())
            restart_pipeline = (new["source"] != old["source"]
                                or new["service"]["stall_timeout_s"] != old["service"]["stall_timeout_s"]
                                or {k: new["model"][k] for k in ("path", "labels", "threads")}
                                != {k: old["model"][k] for k in ("path", "labels", "threads")})
            if restart_pipeline:
                log.info("reload: source/model changed; restarting the pipeline")
                self.pipeline.stop(1.0)
                det = self._make_detector(new) if new["model"] != old["model"] else self.detector
                self.detector = det
                self.cfg = new
                self.source = self._make_source(new)
                self.gate = self._make_gate(new)
                self._start_pipeline()
            else:
                m = new["model"]
                self.detector.configure(threshold=float(m["threshold"]), classes=m["classes"])
                mo = new["motion"]
                if mo["enabled"] and self.gate is not None:
                    self.gate.configure(pixel_delta=mo["pixel_delta"], min_area=mo["min_area"],
                                        max_interval_s=mo["max_interval_s"], hold_s=mo["hold_s"], width=mo["width"])
                elif mo["enabled"] != old["motion"]["enabled"]:
                    self.gate = self._make_gate(new)
                    self.pipeline.gate = self.gate  # read per frame by the capture thread
            t = new["tracker"]
            self.tracker.configure(iou_threshold=t["iou_threshold"], max_center_distance=t["max_center_distance"],
                                   enter_frames=t["enter_frames"], leave_frames=t["leave_frames"])
            if any(new[s] != old[s] for s in ("events", "mqtt", "webhook", "snapshots")):
                fresh = Outputs(new, self.metrics)
                with self._outputs_lock:
                    stale, self.outputs = self.outputs, fresh
                if stale is not None:
                    stale.close()
            self.live.quality = new["http"]["jpeg_quality"]
            if new["http"] != old["http"]:
                if self.http is not None:
                    self.http.stop()
                    self.http = None
                self._start_http(new)
            self.cfg = new
            self.reloads += 1
            self.metrics.reloads.inc()
            log.info("reloaded %s (threshold %.2f)", self.config_path, new["model"]["threshold"])
        except EdgeDetectError as e:
            log.error("reload failed: %s", e)
            self.metrics.error("config")
        finally:
            self.notifier.notify(READY=1, STATUS="reloaded")

    def shutdown(self) -> int:
        """Stop capture, drain the pipeline, emit person_left for open tracks, flush and close outputs."""
        t0 = time.monotonic()
        self.notifier.stopping()
        log.info("stopping")
        if self.pipeline is not None:
            self.pipeline.stop(min(1.5, STOP_BUDGET_S))
        now = time.monotonic()
        frame = None
        if self.live is not None:
            frame = self.live._frame
        for te in self.tracker.close_all(now):
            if frame is not None:
                self.metrics.events.labels(te.type).inc()
                with self._outputs_lock:
                    outputs = self.outputs
                if outputs is not None:
                    self._dispatch(outputs, make_event(te, time.time(), frame.id))
        if self.http is not None:
            self.http.stop()
        if self.preview is not None:
            try:
                self.preview.close()
            except Exception:
                pass
        if self.outputs is not None:
            left = STOP_BUDGET_S - (time.monotonic() - t0)
            self.outputs.close(timeout=max(0.1, min(0.5, left / 3)))
        self.notifier.close()
        log.info("stopped in %.2f s", time.monotonic() - t0)
        return self.exit_code


def make_service(config_path: str | None, overrides: dict[str, Any] | None = None,
                 install_signals: bool = True) -> Service:
    from edgedetect.service.config import apply_overrides

    cfg = apply_overrides(load_config(config_path), overrides or {})
    return Service(cfg, config_path, overrides, install_signals)

