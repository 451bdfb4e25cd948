"""The reloadable set of event outputs (log, JSONL, webhook, MQTT) and the snapshot store.

The page's recent-events list (recent.py) is passed in, not built here: the service keeps the
one instance across reloads, and its `close()` keeps its events.

Each output is built from its own config section (`MqttOutput.from_config(cfg.mqtt)`), so a
reload that changed only `[webhook]` can be compared section by section; the whole set is
swapped at once under the service's lock.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from edgedetect.detections import Detections
from edgedetect.service.config import Config
from edgedetect.service.events import Event, JsonlWriter, LogOutput, make_event
from edgedetect.service.liveview import annotate
from edgedetect.service.metrics import ServiceMetrics
from edgedetect.service.outputs import SceneCounts
from edgedetect.service.recent import RecentEvents
from edgedetect.service.snapshots import SnapshotStore
from edgedetect.service.tracker import TrackEvent

log = logging.getLogger("edgedetect.service")

# A change in any of these rebuilds the set (zones and lines: MQTT's discovery and state topics).
SECTIONS = ("events", "mqtt", "webhook", "snapshots", "zones", "lines")


class Outputs:
    """Where events go; failures are logged and counted, never raised into the pipeline."""

    def __init__(
        self,
        items: list[Any],
        snapshots: SnapshotStore | None,
        metrics: ServiceMetrics,
        run_id: str = "",
        kept: list[Any] | None = None,
    ) -> None:
        self.items = items
        self.snapshots = snapshots
        self.metrics = metrics
        self.run_id = run_id
        self.kept = kept or []  # outputs of the running set this one shares (a reload)
        self._spells: dict[str, str] = {}  # output name -> the error logged once, until it works

    @classmethod
    def from_config(
        cls,
        cfg: Config,
        metrics: ServiceMetrics,
        run_id: str = "",
        recent: RecentEvents | None = None,
        previous: Outputs | None = None,
        scene: SceneCounts | None = None,
    ) -> Outputs:
        """The set `cfg` names; on a reload, `previous` (the running set) seeds MQTT's counts,
        or `scene` (the counts now) when MQTT was off."""
        items: list[Any] = [] if recent is None else [recent]
        if cfg.events.log:
            items.append(LogOutput())
        if cfg.events.jsonl:
            items.append(JsonlWriter.from_config(cfg.events, on_error=metrics.error))
        # An output whose own settings a reload left alone is kept, with the events it has not
        # delivered yet (an endpoint or broker that is down): a new one would lose them.
        running = previous.items if previous is not None else []
        wanted = {"webhook": cfg.webhook, "mqtt": (cfg.mqtt, tuple(cfg.zones), tuple(cfg.lines))}
        # (an output of another kind, or one made without a config, never equals what is wanted)
        kept = [o for o in running if getattr(o, "config", None) == wanted.get(o.name, False)]
        built = cls._network_outputs(cfg, metrics, previous, {o.name for o in kept}, scene)
        snapshots = SnapshotStore.from_config(cfg.snapshots) if cfg.snapshots.enabled else None
        return cls(items + kept + built, snapshots, metrics, run_id, kept)

    @classmethod
    def _network_outputs(
        cls,
        cfg: Config,
        metrics: ServiceMetrics,
        previous: Outputs | None,
        kept: set[str],
        scene: SceneCounts | None = None,
    ) -> list[Any]:
        """The webhook and MQTT outputs `cfg` turns on, but those `kept` from the running set;
        a failure closes what was built (a half-built set must not leak a worker thread)."""
        hooks = dict(
            on_error=metrics.error, on_drop=lambda name: metrics.output_dropped.labels(name).inc()
        )
        built: list[Any] = []
        try:
            if cfg.webhook.url and "webhook" not in kept:
                from edgedetect.service.outputs import WebhookOutput

                built.append(WebhookOutput.from_config(cfg.webhook, **hooks))
            if cfg.mqtt.enabled and "mqtt" not in kept:
                from edgedetect.service.outputs import MqttOutput

                mqtt = previous.mqtt() if previous is not None else None
                built.append(
                    MqttOutput.from_config(
                        cfg.mqtt,
                        list(cfg.zones),
                        list(cfg.lines),
                        mqtt,
                        scene if mqtt is None else None,
                        **hooks,
                    )
                )
        except BaseException:
            cls(built, None, metrics).close(0.1)
            raise
        return built

    def mqtt(self) -> Any:
        """The MQTT output of the set, or None."""
        return next((item for item in self.items if item.name == "mqtt"), None)

    def adopt(self, previous: Outputs, scene: SceneCounts | None = None) -> None:
        """After a reload swapped `previous` out and closed it: its final counts, and its
        retained topics that this set no longer publishes, pass to this set's MQTT output; with
        no MQTT in `previous`, the `scene`'s counts now (events that came while the set was
        built went only to `previous`)."""
        new, old = self.mqtt(), previous.mqtt()
        if new is not None and old is not None and new is not old:
            new.adopt(old)
        elif new is not None and old is None and scene is not None:
            new.seed(scene)

    def publish(self, te: TrackEvent, frame: Any, dets: Detections) -> None:
        """One tracker event: a snapshot on enter, then the event to every output."""
        snapshot = ""
        if te.type == "person_entered" and self.snapshots is not None:
            try:
                path = self.snapshots.save(
                    annotate(frame.image, dets), frame.wall_time, te.track_id
                )
                snapshot = str(path)
                self.metrics.snapshots.inc()
            except Exception as e:  # disk full, permissions: count, log, keep detecting
                self.metrics.error("snapshots")
                log.error("snapshot for track %d failed: %s", te.track_id, e)
        self.dispatch(make_event(te, frame.wall_time, frame.id, snapshot, run_id=self.run_id))

    def dispatch(self, event: Event) -> None:
        for out in self.items:
            try:
                out.send(event)
            except Exception as e:
                self.metrics.error(out.name)
                if out.name == "jsonl":  # not written at all (never half a line): the event is lost
                    self.metrics.output_dropped.labels(out.name).inc()
                self._log_failure(out.name, event, e)
            else:
                if self._spells.pop(out.name, None) is not None:
                    log.info("%s output works again", out.name)

    def _log_failure(self, name: str, event: Event, e: Exception) -> None:
        """Log a failed send; an error that repeats until the user acts (a file in the events
        folder's place) once per spell: a line per event buried what to do."""
        if not getattr(e, "once_per_spell", False):
            log.error("%s output failed for %s: %s", name, event.type, e)
        elif self._spells.get(name) != str(e):
            self._spells[name] = str(e)
            log.error("%s output: %s; events are lost until then (counted)", name, e)

    def flush(self) -> None:
        for out in self.items:
            flush = getattr(out, "flush", None)
            if flush is not None:
                try:
                    flush()
                except Exception as e:
                    self.metrics.error(out.name)
                    log.error("%s flush failed: %s", out.name, e)

    def close(self, timeout: float = 0.5, farewell: bool = True, keep: Sequence[Any] = ()) -> None:
        """Close every output but those in `keep` (shared with the set that goes on);
        `farewell=False` keeps MQTT from announcing 'offline' (a reload)."""
        for item in self.items:
            if any(item is k for k in keep):
                continue
            try:
                if item.name == "mqtt":
                    item.close(timeout, farewell=farewell)
                elif hasattr(item, "pending"):
                    item.close(timeout)
                else:
                    item.close()
            except Exception as e:
                log.warning("closing %s output: %s", getattr(item, "name", item), e)
