"""What a running `Service` reports: /healthz, /api/status, /metrics, systemd's STATUS line and
the stall log line. Read-only over the service (safe from the HTTP threads), except `StallLog`,
which the main loop alone updates."""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import TYPE_CHECKING, Any

from edgedetect.service.config import Config, redact

if TYPE_CHECKING:
    from edgedetect.service.daemon import Service

log = logging.getLogger("edgedetect.service")


def health(svc: Service) -> tuple[bool, dict[str, Any]]:
    """(ok, /healthz body): ok while the model is loaded, the pipeline runs and frames arrive
    from a connected source (one known to be gone is not ok before `stall_timeout_s` is up)."""
    now = time.monotonic()
    last = svc.sink.last_frame_time
    age = None if last is None else now - last
    stall = stall_after(svc)
    loaded = svc.detector is not None
    running = svc.pipeline is not None and svc.pipeline.running
    src = svc.source
    connected = bool(src and src.connected)
    ok = loaded and running and connected and age is not None and age < stall
    stats = svc.pipeline_stats()
    info = {
        "status": "ok" if ok else "unhealthy",
        "model_loaded": loaded,
        "pipeline": stats.get("state", "not started"),
        "source": redact(svc.cfg.source.spec),
        "source_connected": connected,
        "source_error": redact(src.last_error) if src and src.last_error else None,
        "last_frame_age_s": None if age is None else round(age, 3),
        "stall_timeout_s": svc.cfg.service.stall_timeout_s,
        "stall_after_s": round(stall, 3),  # the above, or 2 frame intervals of a slow pace
        "fps": (stats.get("fps") or {}).get("output", 0.0),
        "persons": svc.tracker.count,
        "zones": svc.sink.rules.counts(),  # persons per [zones.NAME] now
        "lines": svc.sink.rules.line_counts(),  # crossings per [lines.NAME] and direction
        "uptime_s": round(now - svc.started, 1),
        "run_id": svc.run_id,
        "reloads": svc.reloads,
        "reload_failures": svc.reload_failures,
        "last_reload_error": svc.last_reload_error or None,
    }
    return ok, info


def stall_after(svc: Service) -> float:
    """How long without a frame is a stall: `stall_timeout_s`, or twice the frame interval of
    a source read at a pace slower than that (`image_fps = 0.1`: a photo every 10 s), which
    otherwise turned /healthz 503 and stopped the watchdog's pings between every two frames."""
    return max(svc.cfg.service.stall_timeout_s, 2.0 * svc.frame_interval_s)


def web_status(svc: Service) -> dict[str, Any]:
    """/api/status for the page: the health info plus timings, drops and what is configured;
    the model as a file name only and the source redacted (as in /healthz)."""
    _, info = health(svc)
    stats = svc.pipeline_stats()
    cfg = svc.cfg
    inference = (stats.get("timings_ms") or {}).get("inference") or {}
    model = getattr(svc.detector, "model_path", None) or cfg.model.path
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


class WebFolders:
    """Where /snapshots/NAME and /clips/NAME are read, newest first: the running config's folder,
    then the ones earlier configs of this run saved into. A reload that moves `[snapshots] dir`
    or `[clips] dir` thus keeps the earlier events' links, whose files stay where they were saved
    (an event names its file, not its folder). A kind that is off now has none: its links go
    and no file of it is served. Called per HTTP request; `use` at start and at each reload."""

    EARLIER = 8  # earlier folders remembered per kind; a request tries each

    def __init__(self, cfg: Config) -> None:
        self._lock = threading.Lock()
        self._dirs: dict[str, list[str]] = {"snapshots": [], "clips": []}
        self._on: dict[str, bool] = {}
        self.use(cfg)

    def use(self, cfg: Config) -> None:
        """`cfg` is the running config now."""
        sections = {"snapshots": cfg.snapshots, "clips": cfg.clips}
        with self._lock:
            for kind, section in sections.items():
                self._on[kind] = bool(section.enabled)
                if section.enabled:
                    here = os.path.normpath(os.path.abspath(section.dir))
                    earlier = [d for d in self._dirs[kind] if d != here][: self.EARLIER]
                    self._dirs[kind] = [here, *earlier]

    def __call__(self) -> dict[str, list[str]]:
        with self._lock:
            return {kind: list(dirs) if self._on[kind] else [] for kind, dirs in self._dirs.items()}


def render_metrics(svc: Service) -> bytes:
    """/metrics, with the health gauges brought up to date first."""
    ok, info = health(svc)
    svc.metrics.healthy.set(1 if ok else 0)
    age = info["last_frame_age_s"]
    svc.metrics.last_frame_age.set(age if age is not None else -1)
    return svc.metrics.render()


def status_text(info: dict[str, Any]) -> str:
    """systemd's STATUS= line, from `health()`'s info."""
    state = (
        "ok"
        if info["status"] == "ok"
        else ("reconnecting" if not info["source_connected"] else "stalled")
    )
    return f"{info['fps']:.1f} fps, {info['persons']} person(s), source {state}"


class StallLog:
    """One error line when frames stop, one info line when they flow again (not one per tick)."""

    def __init__(self) -> None:
        self.stalled = False

    def update(self, ok: bool, info: dict[str, Any]) -> None:
        age, after = info["last_frame_age_s"], info["stall_after_s"]
        if not ok and not self.stalled and age is not None and age >= after:
            self.stalled = True
            limit = info["stall_timeout_s"]
            why = (
                f"stall_timeout_s {limit:.1f}"
                if after == limit
                else f"two frame intervals of the paced source, {after:.1f} s"
            )
            log.error("no frame for %.1f s (%s): camera stalled or gone; /healthz is 503", age, why)
        elif ok and self.stalled:
            self.stalled = False
            log.info("frames flowing again")
