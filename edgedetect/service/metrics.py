"""Prometheus metrics (prometheus-client) on a private registry.

A private `CollectorRegistry` per service instance keeps tests and reloads independent of the
library's global default registry. Pipeline-owned numbers (per-stage fps, dropped frames) are
read from `pipeline.stats()` at scrape time by a custom collector instead of being copied on
every frame.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

COMPONENTS = (
    "source_error",
    "source_garbage",
    "jsonl",
    "jsonl_rotate",
    "log",
    "webhook",
    "mqtt",
    "snapshots",
    "preview",
    "config",
    "clips",
)
# Outputs that count the events they lose in edgedetect_output_dropped_total{output}: the JSONL
# file (a failed write) and the queued network outputs (a full queue).
DROPPING_OUTPUTS = ("jsonl", "mqtt", "webhook")
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# Inference on a Pi 4 is ~30-300 ms; buckets bracket that range.
LATENCY_BUCKETS = (0.005, 0.01, 0.02, 0.035, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 1.0, 2.0)


class _StatsCollector:
    """Exposes a `stats()` dict as metrics at scrape time (pipeline-side counters)."""

    def __init__(self, stats: Callable[[], dict[str, Any]]) -> None:
        self._stats = stats

    def collect(self):
        try:
            s = self._stats() or {}
        except Exception:  # a scrape must never fail because the pipeline is between states
            s = {}
        fps = GaugeMetricFamily(
            "edgedetect_stage_fps",
            "Frames per second through each pipeline stage",
            labels=["stage"],
        )
        for stage, value in (s.get("fps") or {}).items():
            fps.add_metric([str(stage)], float(value))
        yield fps
        dropped = CounterMetricFamily(
            "edgedetect_dropped_frames",
            "Frames dropped at a one-slot hand-over (newest wins)",
            labels=["stage"],
        )
        for stage, value in (s.get("dropped") or {}).items():
            dropped.add_metric([str(stage)], float(value))
        yield dropped


class ServiceMetrics:
    """All service metrics; `render()` returns the Prometheus text exposition."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.started = time.monotonic()  # uptime is a duration: a clock step must not move it
        self._pipeline_metrics(self.registry)
        self._source_and_output_metrics(self.registry)
        self._file_metrics(self.registry)
        self._health_metrics(self.registry)
        self._scene_metrics(self.registry)
        self._zones: set[str] = set()  # the label values set_scene made, to remove on a reload
        self._lines: set[tuple[str, str]] = set()
        self._stats_collector: _StatsCollector | None = None

    def _pipeline_metrics(self, r: CollectorRegistry) -> None:
        """Frames, inference, detections and the events they make."""
        self.frames = Counter(
            "edgedetect_frames", "Frames that reached the output stage", registry=r
        )
        self.inferred = Counter(
            "edgedetect_inferred_frames", "Frames that ran inference", registry=r
        )
        self.skipped = Counter(
            "edgedetect_skipped_frames",
            "Frames whose inference was skipped by the motion gate",
            registry=r,
        )
        self.inference = Histogram(
            "edgedetect_inference_seconds",
            "Model inference latency",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.persons = Gauge(
            "edgedetect_persons", "Persons currently tracked (debounced)", registry=r
        )
        self.detections = Gauge(
            "edgedetect_detections", "Raw detections on the last inferred frame", registry=r
        )
        self.events = Counter("edgedetect_events", "Person events emitted", ["type"], registry=r)
        for t in ("person_entered", "person_left", "count_changed"):
            self.events.labels(t)

    def _source_and_output_metrics(self, r: CollectorRegistry) -> None:
        """What goes wrong around the pipeline: the source, the outputs, errors by component."""
        self.errors = Counter(
            "edgedetect_errors",
            "Errors by component (outputs, source, ...)",
            ["component"],
            registry=r,
        )
        # Known components start at 0, so alerts like increase(errors[1h]) > 0 work from the start.
        for c in COMPONENTS:
            self.errors.labels(c)
        self.reconnects = Counter(
            "edgedetect_source_reconnects", "Source reopen attempts", registry=r
        )
        self.stalls = Counter(
            "edgedetect_source_stalls",
            "Times the source delivered no frame for longer than stall_timeout_s",
            registry=r,
        )
        self.output_dropped = Counter(
            "edgedetect_output_dropped",
            "Messages dropped by a full output queue (dead broker/endpoint)",
            ["output"],
            registry=r,
        )
        # The outputs that can lose an event start at 0 too (docs/service.md, Outputs).
        for o in DROPPING_OUTPUTS:
            self.output_dropped.labels(o)

    def _file_metrics(self, r: CollectorRegistry) -> None:
        """Snapshots and event clips written, lost and buffered."""
        self.snapshots = Counter("edgedetect_snapshots", "Snapshots written", registry=r)
        self.clips = Counter("edgedetect_clips", "Event clips written ([clips])", registry=r)
        self.clips_failed = Counter(
            "edgedetect_clips_failed",
            "Event clips lost (full disk, folder gone); the events were sent all the same",
            registry=r,
        )
        self.clip_frames_dropped = Counter(
            "edgedetect_clip_frames_dropped",
            "Clip frames dropped because the clip encoder fell behind",
            registry=r,
        )
        self.clip_buffer_bytes = Gauge(
            "edgedetect_clip_buffer_bytes",
            "Bytes of frames in the clip pre-roll ring buffer now",
            registry=r,
        )

    def _health_metrics(self, r: CollectorRegistry) -> None:
        """Reloads, health, model state, frame age and uptime."""
        self.reloads = Counter(
            "edgedetect_reloads",
            "Configuration reloads applied (SIGHUP); refused "
            'ones count as errors{component="config"}',
            registry=r,
        )
        self.reload_failures = Counter(
            "edgedetect_reload_failures",
            "Reloads refused or failed (bad file, "
            "model, source, busy port); the running service was kept",
            registry=r,
        )
        self.healthy = Gauge(
            "edgedetect_healthy", "1 when frames flow and the model is loaded", registry=r
        )
        self.model_loaded = Gauge(
            "edgedetect_model_loaded", "1 when the model is loaded", registry=r
        )
        self.last_frame_age = Gauge(
            "edgedetect_last_frame_age_seconds", "Seconds since the last frame", registry=r
        )
        self.uptime = Gauge(
            "edgedetect_uptime_seconds", "Seconds since the service started", registry=r
        )
        self.uptime.set_function(lambda: time.monotonic() - self.started)

    def _scene_metrics(self, r: CollectorRegistry) -> None:
        """Zones, lines and the detections [filters] and [masks] dropped."""
        self.zone_people = Gauge(
            "edgedetect_zone_people", "Persons in each [zones.NAME] now", ["zone"], registry=r
        )
        self.line_crossings = Counter(
            "edgedetect_line_crossings",
            "Persons who crossed each [lines.NAME], by direction",
            ["line", "direction"],
            registry=r,
        )
        self.filtered = Counter(
            "edgedetect_filtered",
            "Detections dropped by [filters] (score, area) and [masks] (mask) before tracking",
            ["reason"],
            registry=r,
        )
        for reason in ("score", "area", "mask"):
            self.filtered.labels(reason)

    def attach_stats(self, stats: Callable[[], dict[str, Any]]) -> None:
        """Register (or replace) the pipeline stats source."""
        if self._stats_collector is not None:
            self.registry.unregister(self._stats_collector)
        self._stats_collector = _StatsCollector(stats)
        self.registry.register(self._stats_collector)

    def set_scene(self, zones: dict[str, int], lines: dict[str, dict[str, int]]) -> None:
        """Show exactly the configured zones and lines (a reload may add, change or remove some):
        a removed one's series disappear; a line's series restart from its totals so far."""
        for zone in self._zones - set(zones):
            self.zone_people.remove(zone)
        for zone, n in zones.items():
            self.zone_people.labels(zone).set(n)
        for line, direction in self._lines:
            self.line_crossings.remove(line, direction)
        self._zones = set(zones)
        self._lines = set()
        for line, per_direction in lines.items():
            for direction, total in per_direction.items():
                self.line_crossings.labels(line, direction).inc(total)
                self._lines.add((line, direction))

    def clip(self, kind: str) -> None:
        """A ClipRecorder count: "saved", "failed" or "dropped"."""
        {"saved": self.clips, "failed": self.clips_failed, "dropped": self.clip_frames_dropped}[
            kind
        ].inc()

    def error(self, component: str) -> None:
        self.errors.labels(component).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)
