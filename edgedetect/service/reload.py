"""The reload transaction (SIGHUP) of a running `Service`: build, then swap.

`prepare` builds every part the new config changes (detector, source, outputs, clip recorder,
HTTP listener) while the old ones keep running; `commit` swaps them in only once all of them
built. A failure anywhere before the swap discards what was built and leaves the running service
untouched; `reload` is the one place that says so. These functions are the `Service`'s own,
kept apart so each reads on one screen: they use its building blocks (`_make_detector`, ...).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgedetect.errors import ConfigError, EdgeDetectError
from edgedetect.service.config import (
    Config,
    EmptyConfigError,
    apply_overrides,
    load_config,
    parse_listen,
    redact,
    server_limits,
)
from edgedetect.service.config_files import check_output_paths
from edgedetect.service.http import stop_server
from edgedetect.service.outputset import SECTIONS as OUTPUT_SECTIONS
from edgedetect.service.outputset import Outputs
from edgedetect.service.zones import DetectionFilter, SceneRules
from edgedetect.tiling import lores_size

if TYPE_CHECKING:
    from edgedetect.detector import Detector
    from edgedetect.resilient import ResilientSource
    from edgedetect.service.clip_recorder import ClipRecorder
    from edgedetect.service.daemon import Service
    from edgedetect.service.http import HttpServer
    from edgedetect.service.webapp import HttpApp
    from edgedetect.tiling import TiledDetector

log = logging.getLogger("edgedetect.service")

MODEL_KEYS = ("path", "labels", "threads", "classes", "tiles")  # a change builds a new detector
FilesStamp = tuple[tuple[Any, ...], ...]


def model_files_stamp(det: Detector | TiledDetector) -> FilesStamp:
    """Identity of the files a detector was loaded from (model, label file): a reload that finds
    one replaced (same path, e.g. ``cp new.tflite model.tflite``) builds a new detector."""
    paths = [Path(det.model_path)]
    labels = Path(str(det.labels_source))
    if labels.is_file():
        paths.append(labels)
    stamps: list[tuple[Any, ...]] = []
    for p in paths:
        try:
            st = p.stat()
            stamps.append((str(p), st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns))
        except OSError:
            stamps.append((str(p), None))
    return tuple(stamps)


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
    detector_files: FilesStamp = ()  # model_files_stamp(detector)
    restart_reason: str = ""  # what the pipeline restarts for, for the log ("" = no restart)

    def discard(self) -> None:
        """Undo the build after a failure: close what was made, leave the running service alone."""
        if self.source is not None:
            self.source.close()
        if self.outputs is not None:  # never used: the running outputs (kept ones too) stay
            self.outputs.close(0.1, farewell=False, keep=self.outputs.kept)
        if self.http is not None:
            stop_server(self.http)
        if self.recorder is not None:
            self.recorder.close(0.1)  # never fed a frame: nothing to finish


def reload(svc: Service) -> None:
    """SIGHUP: build what the new config changes, then swap it in; on failure keep the old."""
    svc.notifier.notify(RELOADING=1, MONOTONIC_USEC=int(time.monotonic() * 1e6))
    try:
        plan: ReloadPlan | None = None
        previous = svc.cfg
        try:
            new = apply_overrides(_load(svc), svc.overrides)
            plan = prepare(svc, new)
            commit(svc, plan)
        except Exception as e:  # noqa: BLE001 - whatever it was, the running service stays
            if plan is not None:
                plan.discard()
            _failed(svc, e)
            return
        svc.last_reload_error = ""
        log.info("reloaded %s (threshold %.2f)", svc.config_path, svc.cfg.model.threshold)
        if plan.cfg.preview != previous.preview:  # opened at start only
            log.warning(
                "reload: [preview] changed, but the preview is opened at start only; it stays as "
                "it was until the service restarts (systemctl restart edgedetect)"
            )
        # counted last: whoever waits for the count (a test, /api/status) finds it all said
        svc.reloads += 1
        svc.metrics.reloads.inc()
    finally:
        svc.notifier.notify(READY=1, STATUS="reloaded")


def _load(svc: Service) -> Config:
    """The new config; an empty file (one being rewritten, say) is refused, never the defaults."""
    try:
        return load_config(svc.config_path)
    except EmptyConfigError as e:  # one line, the running service's own words
        raise ConfigError(
            f"{e.path}: empty; the running settings are kept (write the whole file, "
            "then reload again)"
        ) from None


def _failed(svc: Service, e: BaseException) -> None:
    """One log line, a counter and /healthz's last_reload_error: the running config stays."""
    why = str(e) if isinstance(e, EdgeDetectError) else f"{type(e).__name__}: {e}"
    svc.reload_failures += 1
    svc.last_reload_error = redact(why)
    svc.metrics.reload_failures.inc()
    svc.metrics.error("config")
    log.error("reload failed, keeping the running configuration: %s", svc.last_reload_error)


# ---------------------------------------------------------------------- build (nothing swapped)
def prepare(svc: Service, new: Config) -> ReloadPlan:
    """Build every part the new config changes; nothing running is touched yet."""
    old = svc.cfg
    changed = new.changed(old)
    plan = ReloadPlan(new)
    try:
        # only what changed: a full disk must not block a threshold; a new source may be a
        # folder that holds the snapshots folder, or the events file, refused as at start
        check_output_paths(
            new, changed | ({"snapshots", "events"} if "source" in changed else set())
        )
        assert svc.detector is not None, "a reload comes after start()"
        replaced = model_files_stamp(svc.detector) != svc.detector_files  # same path, new file
        if replaced or any(new.model[k] != old.model[k] for k in MODEL_KEYS):
            plan.detector = svc._make_detector(new)
            plan.detector_files = model_files_stamp(plan.detector)
        detector = plan.detector or svc.detector
        assert detector is not None, "a reload comes after start()"
        plan.restart_reason = _restart_reason(svc, new, plan.detector)
        if _source_changed(svc, new, plan.detector):
            plan.source = svc._make_source(new, detector)
        if changed & set(OUTPUT_SECTIONS):
            plan.outputs = Outputs.from_config(
                new, svc.metrics, svc.run_id, svc.recent, svc.outputs, svc.scene_counts()
            )
        if "clips" in changed or plan.source is not None:
            plan.recorder = svc._make_recorder(new, plan.source or svc.source)
            plan.new_recorder = True
        if "http" in changed:
            _prepare_http(svc, plan)
    except BaseException:
        plan.discard()
        raise
    return plan


def _reopens_source(old: Config, new: Config) -> bool:
    """The `[source]` settings a running source cannot take in place: spec, loop, image_fps (the
    pipeline's pace is set when it starts)."""
    a, b = old.source, new.source
    return (a.spec, a.loop, a.image_fps) != (b.spec, b.loop, b.image_fps)


def _source_changed(svc: Service, new: Config, detector: Detector | TiledDetector | None) -> bool:
    """New source settings, or a new detector that wants another lores size, need a new source."""
    size_changed = detector is not None and lores_size(detector) != lores_size(svc.detector)
    return _reopens_source(svc.cfg, new) or size_changed


def _restart_reason(svc: Service, new: Config, detector: Detector | TiledDetector | None) -> str:
    """What a pipeline restart is for, as the log says it ("" = no restart). A new model that
    wants another input size reopens the source too (the camera's lores stream is made at the
    model's size), but what the user changed is the model."""
    source = _reopens_source(svc.cfg, new)
    if detector is None:
        return "source changed" if source else ""
    if source:
        return "model and source changed"
    before, after = lores_size(svc.detector), lores_size(detector)
    if before == after:
        return "model changed"

    def shown(size: tuple[int, int] | None) -> str:
        return "full frame (tiles)" if size is None else f"{size[0]}x{size[1]}"

    return f"model changed (input {shown(before)} -> {shown(after)}, so the source is reopened)"


def _prepare_http(svc: Service, plan: ReloadPlan) -> None:
    """Same address: a new app for the running socket; another: bind it now (busy fails here)."""
    old, new = svc.cfg, plan.cfg
    old_addr = parse_listen(old.http.listen) if old.http.enabled else None
    new_addr = parse_listen(new.http.listen) if new.http.enabled else None
    if new_addr is not None and new_addr == old_addr and svc.http is not None:
        plan.http_app = svc._http_app(new)  # same socket, new token/fps/threads
    else:
        plan.http = svc._bind_http(new)


# ---------------------------------------------------------------------- swap (cannot fail on input)
def commit(svc: Service, plan: ReloadPlan) -> None:
    """Swap in `prepare`'s build, apply in-place settings. Nothing here can fail on input."""
    new, old = plan.cfg, svc.cfg
    assert svc.pipeline is not None and svc.detector is not None, "after start()"
    if "http" in new.changed(old):
        _swap_http(svc, plan)
    logging.getLogger("edgedetect").setLevel(new.service.log_level.upper())
    if plan.detector is not None or plan.source is not None:
        _restart_pipeline(svc, plan)
    else:
        _configure_gate(svc, new)
    _configure_in_place(svc, new)
    _swap_outputs(svc, plan)
    if plan.new_recorder:  # the old one finishes its clip; the new starts empty
        stale_recorder, svc.sink.recorder = svc.sink.recorder, plan.recorder
        plan.recorder = None
        if stale_recorder is not None:
            stale_recorder.close(1.0)
    svc.live.quality = new.http.jpeg_quality
    svc.web_folders.use(new)
    svc.cfg = new
    svc._warn_about(new)


def _swap_http(svc: Service, plan: ReloadPlan) -> None:
    """Start the new server (bound in `prepare`) before stopping the old, or re-app the old."""
    stale = svc.http
    if plan.http_app is not None and stale is not None:
        # no rebind: no moment without /healthz
        stale.set_app(plan.http_app, threads=plan.cfg.http.threads)
        stale.set_limits(**server_limits(plan.cfg.http))
        return
    svc.http, plan.http = plan.http, None
    if svc.http is not None:
        svc.http.start()
    if stale is not None:
        stale.stop()


def _restart_pipeline(svc: Service, plan: ReloadPlan) -> None:
    """A new detector or source: stop the pipeline, swap them in, start a new one."""
    assert svc.pipeline is not None, "after start()"
    log.info("reload: %s; restarting the pipeline", plan.restart_reason)
    if plan.source is not None and svc.source is not None:
        svc.source.stop_reading()  # replaced: a capture thread in a reconnect backoff returns now
    svc.pipeline.stop(1.0)
    if plan.source is not None and plan.cfg.source.spec != svc.cfg.source.spec:
        # another camera: the people in view were in the old one's picture (output thread off)
        svc.sink.end_visit("reload: the source changed")
    if plan.detector is not None:
        svc.detector, plan.detector = plan.detector, None
        svc.detector_files = plan.detector_files
    if plan.source is not None:
        stale, svc.source, plan.source = svc.source, plan.source, None
        if stale is not None:
            stale.close()
    svc.gate = svc._make_gate(plan.cfg)
    svc._start_pipeline(plan.cfg)


def _configure_gate(svc: Service, new: Config) -> None:
    """Same pipeline: retune the motion gate in place, or add/remove it (read per frame)."""
    assert svc.pipeline is not None, "after start()"
    mo = new.motion
    if mo.enabled and svc.gate is not None:
        svc.gate.configure(
            pixel_delta=mo.pixel_delta,
            min_area=mo.min_area,
            max_interval_s=mo.max_interval_s,
            hold_s=mo.hold_s,
            width=mo.width,
        )
    elif mo.enabled != svc.cfg.motion.enabled:
        svc.gate = svc._make_gate(new)
        svc.pipeline.gate = svc.gate  # read per frame by the capture thread


def _configure_in_place(svc: Service, new: Config) -> None:
    """Settings the running parts read as they go: threshold, source timing, scene, tracker."""
    assert svc.detector is not None, "after start()"
    svc.detector.configure(threshold=float(new.model.threshold))
    src = svc.source
    if src is not None:  # read on every wait / backoff: no reopen needed
        src.stall_timeout_s = new.service.stall_timeout_s
        src.reconnect_max_s = new.source.reconnect_max_s
    _configure_scene(svc, new)
    t = new.tracker
    svc.tracker.configure(
        iou_threshold=t.iou_threshold,
        max_center_distance=t.max_center_distance,
        enter_frames=t.enter_frames,
        leave_frames=t.leave_frames,
    )


def _configure_scene(svc: Service, new: Config) -> None:
    """New filter at once (it keeps no state); new zones and lines on the next frame, in the
    output thread. Tracks continue; a zone or line whose name and shape did not change keeps
    its members and counters, one that changed starts from 0 and its persons enter again."""
    old = svc.cfg
    if new.filters != old.filters or new.masks != old.masks:
        svc.sink.filter = DetectionFilter.from_config(new)
    if new.zones != old.zones or new.lines != old.lines:
        svc.sink.set_rules(SceneRules.from_config(new))


def _swap_outputs(svc: Service, plan: ReloadPlan) -> None:
    """The new outputs take the next event; the old ones then flush and close, and hand their
    final MQTT counts to the new ones."""
    if plan.outputs is None:
        return
    with svc._outputs_lock:
        stale_outputs, svc.outputs = svc.outputs, plan.outputs
    fresh, plan.outputs = plan.outputs, None
    if stale_outputs is not None:  # the new MQTT client (if any) has said 'online' already
        stale_outputs.close(farewell=not plan.cfg.mqtt.enabled, keep=fresh.kept)
        fresh.adopt(stale_outputs, svc.scene_counts())
