"""The per-frame pipeline sink of the service: metrics, tracking, events, live view, preview.

It runs in the pipeline's output thread and is given its collaborators (metrics, tracker, live
view, an event callback) instead of reaching into the service, so it can be reasoned about and
tested alone. Nothing here blocks on the network: events go to outputs that only enqueue.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np

from edgedetect.detections import Detections
from edgedetect.frame import Frame, Result
from edgedetect.overlay import box_labels
from edgedetect.service.clip_recorder import ClipRecorder
from edgedetect.service.liveview import LiveView
from edgedetect.service.metrics import ServiceMetrics
from edgedetect.service.tracker import PersonTracker, TrackEvent
from edgedetect.service.zones import DetectionFilter, SceneRules

if TYPE_CHECKING:
    from edgedetect.service.preview import Preview

log = logging.getLogger("edgedetect.service")


def person_mask(dets: Detections) -> np.ndarray:
    """Which detections the tracker counts: label 'person' when the model has one, else all."""
    names = dets.names or {}
    person_ids = [i for i, n in names.items() if str(n).lower() == "person"]
    if not person_ids:
        return np.ones(len(dets), dtype=bool)
    return np.isin(dets.class_id, person_ids)


class ServiceSink:
    """`sink(result)`: count, track, emit events, update the live view and the preview."""

    name = "service"

    def __init__(
        self,
        metrics: ServiceMetrics,
        tracker: PersonTracker,
        live: LiveView,
        emit: Callable[[TrackEvent, Frame, Detections], None],
        flush: Callable[[], None],
        preview: Preview | None = None,
    ) -> None:
        self.metrics = metrics
        self.tracker = tracker
        self.live = live
        self.emit = emit
        self.flush = flush
        self.preview = preview  # a callable(frame, boxes, labels) with close(), or None
        self.recorder: ClipRecorder | None = None  # [clips]; the service swaps it on a reload
        self.last_frame_time: float | None = None
        self._tracked = Detections.empty()
        self.filter = DetectionFilter()  # stateless: a reload replaces it in one assignment
        self.rules = SceneRules()
        self._next_rules: SceneRules | None = None  # handed over by a reload, taken per frame

    def __call__(self, result: Result) -> None:
        m = self.metrics
        self.last_frame_time = time.monotonic()
        m.frames.inc()
        frame = result.frame
        if result.skipped:
            m.skipped.inc()
            dets = self._tracked  # still scene: tracks are alive and their boxes still valid
            self._record(frame, dets)  # the clip keeps its frame rate through still scenes
        else:
            m.inferred.inc()
            m.inference.observe(result.inference_ms / 1000.0)
            dets = self._track(result.detections, frame)
        self.live.update(frame, dets)
        self._show(frame, dets)

    def _track(self, dets: Detections, frame: Frame) -> Detections:
        self.metrics.detections.set(len(dets))
        dets = self._filter(dets, frame)
        mask = person_mask(dets)
        persons = dets[mask]
        tracked, events = self.tracker.update(persons, frame.timestamp)
        tids = np.full(len(dets), -1, dtype=np.int64)
        tids[np.flatnonzero(mask)] = np.asarray(tracked.tracker_id, dtype=np.int64)
        dets = Detections(dets.xyxy, dets.score, dets.class_id, dets.names, tids)
        self._tracked = dets[tids >= 0]
        self.metrics.persons.set(self.tracker.count)
        alive = self.tracker.confirmed_ids()
        scene = self._scene(frame, alive)
        ended = [te for te in scene if te.track_id not in alive]  # zone_left of a track that ended:
        events = ended + events + [te for te in scene if te.track_id in alive]  # before person_left
        clip = self._record(frame, dets)
        for te in events:
            self.emit(replace(te, clip=clip) if clip else te, frame, dets)
        return dets

    def _filter(self, dets: Detections, frame: Frame) -> Detections:
        """`[filters]` and `[masks]`, before the tracker: a dropped box never becomes a person."""
        f = self.filter
        if not f.active:
            return dets
        kept, dropped = f.apply(dets, *frame.size)
        for reason, n in dropped.items():
            self.metrics.filtered.labels(reason).inc(n)
        return kept

    def set_rules(self, rules: SceneRules) -> None:
        """A reload's new zones and lines; taken over on the next inferred frame, in this thread,
        keeping the state of zones and lines that did not change (see `SceneRules.adopt`)."""
        self._next_rules = rules

    def _take_rules(self) -> tuple[SceneRules, list[TrackEvent]]:
        """The rules to apply now (a reload's, once), and the zone_left events of the people
        in the zones that reload changed or removed."""
        new, self._next_rules = self._next_rules, None
        closing: list[TrackEvent] = []
        if new is not None:
            closing = new.adopt(self.rules)
            self.metrics.set_scene(new.counts(), new.line_counts())
            self.rules = new
        return self.rules, closing

    def _scene(self, frame: Frame, alive: set[int]) -> list[TrackEvent]:
        """Zone and line events of this frame, after the tracker (they need its confirmed ids)."""
        rules, events = self._take_rules()
        if rules.active:
            w, h = frame.size
            events += rules.update(self._tracked, w, h, frame.timestamp, alive)
        self._count_scene(events, rules)
        return events

    def _count_scene(self, events: list[TrackEvent], rules: SceneRules) -> None:
        m = self.metrics
        for te in events:
            if te.type == "line_crossed":
                m.line_crossings.labels(te.line, te.direction).inc()
        for zone, n in rules.counts().items():
            m.zone_people.labels(zone).set(n)

    def close_scene(self) -> list[TrackEvent]:
        """zone_left for everyone still in a zone (shutdown, after the pipeline stopped)."""
        rules, events = self._take_rules()
        events += rules.close_all()
        self._count_scene(events, rules)
        return events

    def _record(self, frame: Frame, dets: Detections) -> str:
        """Feed the clip recorder after the tracker (it needs the count); the episode's clip."""
        rec = self.recorder
        if rec is None:
            return ""
        try:
            return rec.push(frame, dets, self.tracker.count)
        except Exception as e:  # a bug here must not stop detection: clips off until a reload
            self.metrics.error("clips")
            log.warning("clip recorder failed (%s); clips are off until a reload", e)
            self.recorder = None
            return ""

    def _show(self, frame: Frame, dets: Detections) -> None:
        preview = self.preview
        if preview is None:
            return
        try:
            preview(frame, dets.xyxy, box_labels(dets, scores=False))
        except Exception as e:
            self.metrics.error("preview")
            log.warning("preview failed (%s); disabling it", e)
            self.preview = None
            try:
                preview.close()
            except Exception:
                pass

    def close(self) -> None:
        """Flush on the way out; the outputs belong to the service (they survive reloads)."""
        self.flush()
