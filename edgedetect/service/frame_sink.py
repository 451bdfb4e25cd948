"""The per-frame pipeline sink of the service: metrics, tracking, events, live view, preview.

It runs in the pipeline's output thread and is given its collaborators (metrics, tracker, live
view, an event callback) instead of reaching into the service, so it can be reasoned about and
tested alone. Nothing here blocks on the network: events go to outputs that only enqueue.
"""

from __future__ import annotations

import itertools
import logging
import statistics
import time
from collections import deque
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

MIN_QUIET_S = 1.0  # the shortest silence that ends a visit (a hiccup of a fast camera does not)
ARRIVALS = 32  # frame arrival times kept to measure the frame interval (their median gap)


def person_mask(dets: Detections) -> np.ndarray:
    """Which detections the tracker counts: label 'person' when the model has one, else all."""
    names = dets.names or {}
    person_ids = [i for i, n in names.items() if str(n).lower() == "person"]
    if not person_ids:
        return np.ones(len(dets), dtype=bool)
    return np.isin(dets.class_id, person_ids)


class ServiceSink:
    """`sink(result)`: count, track, emit events, update the live view and the preview.

    A camera or stream gone mid-visit ends the visit (`idle`): once no frame came for the
    tracker's leave window in time (`leave_frames` x the frame interval, at least
    `MIN_QUIET_S`), or at once when `source_lost()` says the source is known gone (what turns
    /healthz to 503), the open tracks end with their person_left and count_changed to 0, and
    the open clip is cut at its last real frame. Without frames the tracker never counts a miss,
    so the person stayed "in" for the whole outage and the clip was padded through it. Why
    here: the pipeline's output thread owns the tracker and the recorder and calls `idle()`
    when no frame came for 0.1 s, so the decision needs no lock around every frame and no
    hand-over that only a frame would take (like a reload's `set_rules`). Frames that come
    back are a new visit: new tracks, new person_entered, a new clip.
    """

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
        self.source_lost: Callable[[], bool] = lambda: False  # the service's source is gone
        self.rules_taken: Callable[[SceneRules], None] = lambda rules: None  # a reload's, now
        self._arrivals: deque[float] = deque(maxlen=ARRIVALS)  # monotonic, of the last frames
        self._quiet_since = time.monotonic()  # the last frame, or a (re)started pipeline
        self._paced_interval = 0.0  # expect_frames: 1 / a file's or folder's pace

    def __call__(self, result: Result) -> None:
        m = self.metrics
        self.last_frame_time = self._quiet_since = now = time.monotonic()
        self._arrivals.append(now)
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
            self.rules_taken(new)  # MQTT's line totals: a moved line starts from 0 there too
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
        """zone_left for everyone still in a zone (shutdown, after the pipeline stopped; or an
        outage, in the output thread: `end_visit`)."""
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

    def expect_frames(self, interval_s: float = 0.0) -> None:
        """A pipeline (re)starts: its first frame may take a while; the silence counts from now.
        `interval_s`: the pace a file or folder is read at (0: a camera's own rate)."""
        self._quiet_since = time.monotonic()
        self._paced_interval = interval_s

    def leave_window(self) -> float:
        """The tracker's leave window in seconds: `leave_frames` x the median interval of the
        last frames (robust to the gap of an outage), at least `MIN_QUIET_S`. Before two frames
        came, the pace's interval: a photo every 10 s was taken for an outage after 1 s, and the
        candidate track of a person in the first photo was dropped (entered a photo late)."""
        a = self._arrivals
        if len(a) < 2:
            return max(MIN_QUIET_S, self.tracker.leave_frames * self._paced_interval)
        interval = statistics.median(b - x for x, b in itertools.pairwise(a))
        return max(MIN_QUIET_S, self.tracker.leave_frames * interval)

    def idle(self) -> None:
        """No frame for a moment (the output thread asks): end the visit when the source is gone
        or has been silent for the leave window (see the class docstring)."""
        rec = self.recorder
        if not self.tracker.tracks and not (rec is not None and rec.clip):
            return
        quiet = time.monotonic() - self._quiet_since
        if self.source_lost():
            self.end_visit(f"source lost, no frame for {quiet:.1f} s")
        elif quiet >= self.leave_window():
            self.end_visit(f"no frame for {quiet:.1f} s")

    def end_visit(self, why: str) -> None:
        """End every track (zone_left, person_left, count_changed to 0) and cut the open clip at
        its last frame; the events name that clip and carry the last frame seen, as when a
        person walks out. Output thread only (or once the pipeline stopped)."""
        rec = self.recorder
        clip = ""
        if rec is not None:
            try:
                clip = rec.cut()
            except Exception as e:  # as in _record: clips off until a reload, detection goes on
                self.metrics.error("clips")
                log.warning("clip recorder failed (%s); clips are off until a reload", e)
                self.recorder = None
        frame = self.live.frame
        last_seen = frame.timestamp if frame is not None else time.monotonic()
        events = self.close_scene() + self.tracker.close_all(last_seen)
        self._tracked = Detections.empty()
        self.metrics.persons.set(0)
        self.live.drop_boxes()  # /stream.mjpg: the last picture, no longer with people boxed
        left = sum(te.type == "person_left" for te in events)
        log.log(
            logging.WARNING if left or clip else logging.DEBUG,  # a mere candidate: no news
            "%s: ending the visit (%d person(s) left%s)",
            why,
            left,
            f", clip {clip} finished" if clip else "",
        )
        if frame is None:
            return
        for te in events:
            self.emit(replace(te, clip=clip) if clip else te, frame, self._tracked)

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
