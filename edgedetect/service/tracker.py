"""A light person tracker: greedy IoU association with a centroid fallback, plus debounce.

Why not norfair: it pulls scipy, filterpy and rich onto the Pi for what is, with a handful of
people in view of a fixed camera, a 100-line problem. Greedy matching (best IoU first) is
optimal enough at these counts and costs microseconds.

Debounce: a candidate becomes a person (`person_entered`) after `enter_frames` consecutive
detections; a person leaves (`person_left`) after `leave_frames` inferred frames without a
match. Frames skipped by the motion gate are not fed here, so tracks stay alive while the
scene is still. The event score is the median of the track's recent scores.
"""

from __future__ import annotations

import dataclasses
import statistics
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from edgedetect.boxes import box_iou
from edgedetect.detections import Detections

SCORE_WINDOW = 256  # scores kept per track for the median: bounded memory on month-long tracks


@dataclass
class Track:
    """One tracked box. `track_id` is 0 until confirmed, so public ids run 1, 2, 3 without gaps."""

    box: np.ndarray
    first_seen: float
    last_seen: float
    hits: int = 1
    misses: int = 0
    track_id: int = 0
    scores: deque = field(default_factory=lambda: deque(maxlen=SCORE_WINDOW))

    @property
    def confirmed(self) -> bool:
        return self.track_id > 0

    @property
    def score(self) -> float:
        return float(statistics.median(self.scores)) if self.scores else 0.0


@dataclass(frozen=True)
class TrackEvent:
    """What the tracker decided on one frame; `events.py` turns these into outward events."""

    # person_entered | person_left | count_changed | zone_entered | zone_left | line_crossed
    type: str
    track_id: int
    box: tuple[float, float, float, float]
    score: float
    count: int
    previous_count: int = 0
    duration_s: float = 0.0
    zone: str = ""  # zone_entered / zone_left: the [zones.NAME]
    line: str = ""  # line_crossed: the [lines.NAME] ...
    direction: str = ""  # ... and "in" or "out"
    clip: str = ""  # the clip file of the episode this event belongs to ("" = clips off)


class PersonTracker:
    """Associates per-frame boxes into tracks and emits enter/leave/count events."""

    def __init__(
        self,
        iou_threshold: float = 0.3,
        max_center_distance: float = 0.75,
        enter_frames: int = 3,
        leave_frames: int = 15,
    ) -> None:
        self.iou_threshold = iou_threshold
        self.max_center_distance = max_center_distance  # in units of the track box diagonal
        self.enter_frames = enter_frames
        self.leave_frames = leave_frames
        self.tracks: list[Track] = []
        self._next_id = 1
        self.count = 0

    def configure(self, **params: float) -> None:
        """Change thresholds in place (SIGHUP reload) without dropping live tracks."""
        for name, value in params.items():
            if not hasattr(self, name):
                raise AttributeError(name)
            setattr(self, name, value)

    def confirmed_ids(self) -> set[int]:
        """Ids of the persons still tracked, seen on this frame or not (zones keep them)."""
        return {t.track_id for t in self.tracks if t.confirmed}

    def _associate(self, boxes: np.ndarray) -> list[tuple[int, int]]:
        tboxes = np.array([t.box for t in self.tracks], dtype=np.float32).reshape(-1, 4)
        pairs: list[tuple[int, int]] = []
        used_t: set[int] = set()
        used_d: set[int] = set()
        ious = box_iou(tboxes, boxes)
        for flat in np.argsort(-ious, axis=None):
            ti, di = np.unravel_index(flat, ious.shape)
            if ious[ti, di] < self.iou_threshold:
                break
            if ti in used_t or di in used_d:
                continue
            pairs.append((int(ti), int(di)))
            used_t.add(int(ti))
            used_d.add(int(di))
        # Centroid fallback: a fast mover at low fps may not overlap its old box at all.
        if self.max_center_distance > 0 and len(used_t) < len(tboxes) and len(used_d) < len(boxes):
            tc = (tboxes[:, :2] + tboxes[:, 2:]) / 2
            dc = (boxes[:, :2] + boxes[:, 2:]) / 2
            diag = np.hypot(tboxes[:, 2] - tboxes[:, 0], tboxes[:, 3] - tboxes[:, 1])
            dist = (
                np.linalg.norm(tc[:, None, :] - dc[None, :, :], axis=2)
                / np.maximum(diag, 1e-6)[:, None]
            )
            for flat in np.argsort(dist, axis=None):
                ti, di = (int(x) for x in np.unravel_index(flat, dist.shape))
                if dist[ti, di] > self.max_center_distance:
                    break
                if ti in used_t or di in used_d:
                    continue
                pairs.append((ti, di))
                used_t.add(ti)
                used_d.add(di)
        return pairs

    def update(self, detections: Detections, now: float) -> tuple[Detections, list[TrackEvent]]:
        """Feed one inferred frame's people; returns them with ``tracker_id`` set (-1 = not
        confirmed yet) and the events, as supervision's ``update_with_detections`` does."""
        events, ids = self._update_boxes(detections.xyxy, detections.score, now)
        return dataclasses.replace(detections, tracker_id=ids), events

    def _update_boxes(
        self, boxes: np.ndarray, scores: np.ndarray, now: float
    ) -> tuple[list[TrackEvent], np.ndarray]:
        """The association and debounce on plain arrays: events and a track id per box."""
        boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
        scores = np.asarray(scores, dtype=np.float32).reshape(-1)
        events: list[TrackEvent] = []
        ids = np.full(len(boxes), -1, dtype=np.int64)
        pairs = self._associate(boxes)
        self._extend_matched(pairs, boxes, scores, now, events, ids)
        keep = self._age_unmatched({ti for ti, _ in pairs}, now, events)
        matched_d = {di for _, di in pairs}
        for di in range(len(boxes)):
            if di not in matched_d:
                keep.append(self._start_track(boxes[di], float(scores[di]), di, now, events, ids))
        self.tracks = keep
        new_count = sum(1 for t in self.tracks if t.confirmed)
        if new_count != self.count:
            box = events[-1].box if events else (0.0, 0.0, 0.0, 0.0)
            events.append(TrackEvent("count_changed", 0, box, 0.0, new_count, self.count))
            self.count = new_count
        # fill counts on enter/leave events now that the frame's count is known
        return [_with_count(e, new_count) for e in events], ids

    def _extend_matched(
        self,
        pairs: list[tuple[int, int]],
        boxes: np.ndarray,
        scores: np.ndarray,
        now: float,
        events: list[TrackEvent],
        ids: np.ndarray,
    ) -> None:
        """Move each matched track to its box; a candidate seen often enough is confirmed."""
        for ti, di in pairs:
            t = self.tracks[ti]
            t.box = boxes[di].copy()
            t.last_seen = now
            t.hits += 1
            t.misses = 0
            t.scores.append(float(scores[di]))
            if not t.confirmed and t.hits >= self.enter_frames:
                events.append(self._confirm(t, now))
            if t.confirmed:
                ids[di] = t.track_id

    def _age_unmatched(
        self, matched_t: set[int], now: float, events: list[TrackEvent]
    ) -> list[Track]:
        """The tracks that stay: an unmatched candidate is dropped, an unmatched person leaves
        after ``leave_frames`` misses."""
        keep: list[Track] = []
        for ti, t in enumerate(self.tracks):
            if ti in matched_t:
                keep.append(t)
                continue
            if not t.confirmed:
                continue  # a candidate must be seen on consecutive frames
            t.misses += 1
            if t.misses >= self.leave_frames:
                events.append(self._event("person_left", t, now))
            else:
                keep.append(t)
        return keep

    def _start_track(
        self,
        box: np.ndarray,
        score: float,
        di: int,
        now: float,
        events: list[TrackEvent],
        ids: np.ndarray,
    ) -> Track:
        """A new track for an unmatched box, confirmed at once when ``enter_frames`` is 1."""
        t = Track(box=box.copy(), first_seen=now, last_seen=now)
        t.scores.append(score)
        if self.enter_frames <= 1:
            events.append(self._confirm(t, now))
            ids[di] = t.track_id
        return t

    def _confirm(self, t: Track, now: float) -> TrackEvent:
        """Give a track the next id once it is a person: its ``person_entered`` event."""
        t.track_id = self._next_id
        self._next_id += 1
        return self._event("person_entered", t, now)

    def _event(self, kind: str, t: Track, now: float) -> TrackEvent:
        x1, y1, x2, y2 = (float(x) for x in t.box)
        return TrackEvent(
            kind,
            t.track_id,
            (x1, y1, x2, y2),
            round(t.score, 4),
            0,
            0,
            duration_s=round(now - t.first_seen, 3),
        )

    def close_all(self, now: float) -> list[TrackEvent]:
        """Emit person_left for every confirmed track (clean shutdown), then reset."""
        events = [self._event("person_left", t, now) for t in self.tracks if t.confirmed]
        prev = self.count
        self.tracks = []
        self.count = 0
        if prev:
            events.append(TrackEvent("count_changed", 0, (0.0, 0.0, 0.0, 0.0), 0.0, 0, prev))
        return [_with_count(e, 0) for e in events]


def _with_count(e: TrackEvent, count: int) -> TrackEvent:
    if e.type == "count_changed":
        return e
    return dataclasses.replace(e, count=count)
