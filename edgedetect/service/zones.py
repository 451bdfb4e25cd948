"""Zones, masks, detection filters and counting lines, in normalised frame coordinates.

Every shape in the config is given as fractions 0..1 of the frame's width and height from the top
left, so a config survives a change of camera resolution. A person's position is the feet: the
bottom centre of the box, the point that stands on the floor a zone or a line is drawn on.

- `DetectionFilter` (`[filters]`, `[masks]`) drops detections before tracking: too unsure, too
  small or too large, or standing in a masked area.
- `SceneRules` (`[zones.NAME]`, `[lines.NAME]`) watches the tracked persons after tracking and
  returns `zone_entered` / `zone_left` / `line_crossed` events. A zone's membership changes only
  after `inertia` consecutive inferred frames agree (one bad box does not toggle it); a line
  counts a crossing only when the confirmed side flips, and a side is only confirmed outside a
  dead band around the line, so a person wobbling on the line counts once.

`count` in a zone event is the zone's head count after the event; in `line_crossed` it is the
line's total for that direction. NumPy only: the point-in-polygon test is the even-odd rule,
vectorised over points and edges (no shapely on the Pi).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edgedetect.detections import Detections
from edgedetect.service.tracker import TrackEvent

DEAD_BAND = 0.02  # of the frame diagonal: the hysteresis of a line's side
REASONS = ("score", "area", "mask")  # why the filter dropped a detection (a metric label)
DIRECTIONS = ("in", "out")
EDGE = 1e-6  # how far inside the frame's right and bottom edges feet are kept


def feet(xyxy: np.ndarray, frame_w: int, frame_h: int) -> np.ndarray:
    """(N, 2) bottom centres of pixel boxes, as fractions of the frame (the point on the floor)."""
    b = np.asarray(xyxy, dtype=np.float64).reshape(-1, 4)
    pts = np.stack([(b[:, 0] + b[:, 2]) / 2 / frame_w, b[:, 3] / frame_h], axis=1)
    # A person cut off by the bottom of the picture stands on its edge (y = 1.0), which the even-odd
    # rule puts outside a zone drawn to that edge: keep the feet just inside the frame.
    return np.clip(pts, 0.0, 1.0 - EDGE)


def points_in_polygon(points: np.ndarray, polygon: np.ndarray) -> np.ndarray:
    """(N,) bool: which points lie inside the polygon, by the even-odd rule over all edges at once.

    A horizontal ray from each point crosses the edges; an odd number of crossings is inside.
    """
    p = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    a = np.asarray(polygon, dtype=np.float64).reshape(-1, 2)
    b = np.roll(a, -1, axis=0)  # each edge runs a[i] -> b[i]
    px, py = p[:, 0:1], p[:, 1:2]  # (N, 1) against (M,) edges
    straddles = (a[:, 1] > py) != (b[:, 1] > py)
    dy = np.where(b[:, 1] == a[:, 1], 1.0, b[:, 1] - a[:, 1])  # unused where not straddling
    x_cross = a[:, 0] + (py - a[:, 1]) * (b[:, 0] - a[:, 0]) / dy
    crossings = straddles & (px < x_cross)
    return np.asarray(crossings.sum(axis=1) % 2 == 1, dtype=bool)


def in_any(points: np.ndarray, polygons: Sequence[np.ndarray]) -> np.ndarray:
    """(N,) bool: inside at least one of the polygons."""
    hit = np.zeros(len(points), dtype=bool)
    for poly in polygons:
        hit |= points_in_polygon(points, poly)
    return hit


class DetectionFilter:
    """`[filters]` and `[masks]`: which detections are worth tracking at all.

    A detection dropped here never reaches the tracker, the zones or the events; the reason is
    counted (the first that applies, in the order score, area, mask).
    """

    def __init__(
        self,
        min_score: float = 0.0,
        min_area: float = 0.0,
        max_area: float = 1.0,
        masks: Iterable[Sequence[Sequence[float]]] = (),
    ) -> None:
        self.min_score = float(min_score)
        self.min_area = float(min_area)
        self.max_area = float(max_area)
        self.masks = [np.asarray(m, dtype=np.float64).reshape(-1, 2) for m in masks]

    @classmethod
    def from_config(cls, cfg: Any) -> DetectionFilter:
        f = cfg.filters
        return cls(f.min_score, f.min_area, f.max_area, cfg.masks.polygons)

    @property
    def active(self) -> bool:
        """False when nothing can be dropped (the defaults): the sink skips the work."""
        return bool(self.min_score > 0 or self.min_area > 0 or self.max_area < 1 or self.masks)

    def reasons(self, dets: Detections, frame_w: int, frame_h: int) -> np.ndarray:
        """(N,) index into `REASONS` + 1 of why each detection is dropped; 0 = kept."""
        why = np.zeros(len(dets), dtype=np.int64)
        if not len(dets):
            return why
        b = dets.xyxy.astype(np.float64)
        area = (b[:, 2] - b[:, 0]).clip(0) * (b[:, 3] - b[:, 1]).clip(0) / (frame_w * frame_h)
        checks = [dets.score < self.min_score, (area < self.min_area) | (area > self.max_area)]
        if self.masks:
            checks.append(in_any(feet(b, frame_w, frame_h), self.masks))
        for code in range(len(checks), 0, -1):  # the first reason wins: set it last
            why[checks[code - 1]] = code
        return why

    def apply(
        self, dets: Detections, frame_w: int, frame_h: int
    ) -> tuple[Detections, dict[str, int]]:
        """The kept detections and how many were dropped for each reason (only reasons that hit)."""
        why = self.reasons(dets, frame_w, frame_h)
        dropped = {
            REASONS[c - 1]: int(n)
            for c, n in zip(*np.unique(why[why > 0], return_counts=True), strict=True)
        }
        return (dets if not dropped else dets[why == 0]), dropped


@dataclass
class Zone:
    """One `[zones.NAME]`: who is inside, and who has been seen on the other side how long."""

    name: str
    polygon: np.ndarray
    inertia: int
    members: set[int] = field(default_factory=set)
    streak: dict[int, int] = field(default_factory=dict)  # track id -> frames disagreeing so far

    def same_shape(self, other: Zone) -> bool:
        return self.inertia == other.inertia and np.array_equal(self.polygon, other.polygon)

    def step(self, tid: int, inside: bool) -> bool:
        """One inferred frame of one track; True when its membership flips on this frame."""
        if inside == (tid in self.members):
            self.streak.pop(tid, None)
            return False
        n = self.streak.get(tid, 0) + 1
        if n < self.inertia:
            self.streak[tid] = n
            return False
        self.streak.pop(tid, None)
        if inside:
            self.members.add(tid)
        else:
            self.members.discard(tid)
        return True


@dataclass
class Line:
    """One `[lines.NAME]`, p1 -> p2 in pixels of the current frame size, and each track's side."""

    name: str
    points: np.ndarray  # normalised [[x1, y1], [x2, y2]]
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(DIRECTIONS, 0))
    side: dict[int, int] = field(
        default_factory=dict
    )  # track id -> confirmed side: -1 left, +1 right
    last: dict[int, np.ndarray] = field(default_factory=dict)  # track id -> previous feet (pixels)
    cross_t: dict[int, float] = field(default_factory=dict)  # where its path last met the line

    def same_shape(self, other: Line) -> bool:
        return np.array_equal(self.points, other.points)

    def step(self, tid: int, xy: np.ndarray, size: tuple[int, int]) -> str:
        """One inferred frame of one track (feet in pixels); "in"/"out" on a counted crossing.

        Left and right are as seen on the picture, facing from p1 to p2; image y grows downwards,
        so the left side is where the cross product (p2 - p1) x (feet - p1) is negative.
        """
        w, h = size
        p1, p2 = self.points[0] * (w, h), self.points[1] * (w, h)
        d = p2 - p1
        length = float(np.hypot(*d))
        dist = float(d[0] * (xy[1] - p1[1]) - d[1] * (xy[0] - p1[0])) / length  # signed, pixels
        prev = self.last.get(tid)
        self.last[tid] = xy
        if prev is not None:
            prev_dist = float(d[0] * (prev[1] - p1[1]) - d[1] * (prev[0] - p1[0])) / length
            if (prev_dist < 0) != (dist < 0):  # this step met the infinite line: where, along it?
                hit = prev + (xy - prev) * (prev_dist / (prev_dist - dist))
                self.cross_t[tid] = float(np.dot(hit - p1, d)) / length**2
        if abs(dist) <= DEAD_BAND * float(np.hypot(w, h)):
            return ""  # too close to call: the confirmed side stays
        side = -1 if dist < 0 else 1
        before = self.side.get(tid)
        self.side[tid] = side
        if before is None or before == side:
            return ""
        t = self.cross_t.pop(tid, None)
        if t is None or not 0.0 <= t <= 1.0:
            return ""  # went round the end of the line, not across it
        direction = "in" if before < 0 else "out"
        self.counts[direction] += 1
        return direction

    def forget(self, keep: set[int]) -> None:
        """Drop the state of tracks that are gone (bounded memory)."""
        for d in (self.side, self.last, self.cross_t):
            for tid in [t for t in d if t not in keep]:
                del d[tid]


class SceneRules:
    """`[zones.NAME]` and `[lines.NAME]` over tracked persons: zone and line events per frame.

    Tracks are known by their tracker id. A track that is alive but unmatched on a frame keeps its
    zone membership and line side; one that is gone leaves its zones at once and is forgotten.
    """

    def __init__(self, zones: Iterable[Zone] = (), lines: Iterable[Line] = ()) -> None:
        self.zones = {z.name: z for z in zones}
        self.lines = {ln.name: ln for ln in lines}
        self._seen: dict[int, tuple[tuple[float, float, float, float], float]] = {}  # box, score

    @classmethod
    def from_config(cls, cfg: Any) -> SceneRules:
        zones = [
            Zone(name, np.asarray(z.polygon, dtype=np.float64), int(z.inertia))
            for name, z in cfg.zones.items()
        ]
        lines = [
            Line(name, np.asarray(ln.points, dtype=np.float64)) for name, ln in cfg.lines.items()
        ]
        return cls(zones, lines)

    @property
    def active(self) -> bool:
        return bool(self.zones or self.lines)

    def adopt(self, old: SceneRules) -> list[TrackEvent]:
        """Keep the state of zones and lines a reload did not change (same name and shape), so
        their counts and members carry on; a changed or new zone starts empty, and its members
        enter again after `inertia` frames.

        Returns zone_left for every member of an old zone that changed or is gone: a consumer
        that counts occupancy from entered/left pairs would otherwise count them for ever."""
        closing: list[TrackEvent] = []
        for name, prev in old.zones.items():
            z = self.zones.get(name)
            if z is not None and prev.same_shape(z):
                self.zones[name] = prev
                continue
            for tid in sorted(prev.members):
                prev.members.discard(tid)
                closing.append(old._event("zone_left", tid, len(prev.members), zone=name))
        for name, ln in self.lines.items():
            before = old.lines.get(name)
            if before is not None and before.same_shape(ln):
                self.lines[name] = before
        self._seen = dict(old._seen)
        return closing

    def counts(self) -> dict[str, int]:
        """Persons in each zone now."""
        return {name: len(z.members) for name, z in self.zones.items()}

    def line_counts(self) -> dict[str, dict[str, int]]:
        """Crossings of each line so far, per direction."""
        return {name: dict(ln.counts) for name, ln in self.lines.items()}

    def update(
        self,
        tracked: Detections,
        frame_w: int,
        frame_h: int,
        now: float,
        alive: Iterable[int] | None = None,
    ) -> list[TrackEvent]:
        """One inferred frame. `tracked`: the confirmed persons seen on it (tracker ids >= 0);
        `alive`: ids the tracker still holds (default: those in `tracked`)."""
        tids = tracked.tracker_id if tracked.tracker_id is not None else np.full(len(tracked), -1)
        tracked = tracked[tids >= 0]  # unconfirmed candidates (-1) have no id to follow yet
        ids = [int(t) for t in tids[tids >= 0]]
        keep = set(ids) if alive is None else set(alive) | set(ids)
        events = self._gone(keep)
        if not ids:
            return events
        pts = feet(tracked.xyxy, frame_w, frame_h)
        for i, tid in enumerate(ids):
            x1, y1, x2, y2 = (float(v) for v in tracked.xyxy[i])
            self._seen[tid] = ((x1, y1, x2, y2), float(tracked.score[i]))
        for z in self.zones.values():
            inside = points_in_polygon(pts, z.polygon)
            for tid, hit in zip(ids, inside, strict=True):
                if z.step(tid, bool(hit)):
                    events.append(
                        self._event(
                            "zone_entered" if hit else "zone_left", tid, len(z.members), zone=z.name
                        )
                    )
        for ln in self.lines.values():
            for tid, p in zip(ids, pts, strict=True):
                direction = ln.step(tid, p * (frame_w, frame_h), (frame_w, frame_h))
                if direction:
                    events.append(
                        self._event(
                            "line_crossed",
                            tid,
                            ln.counts[direction],
                            line=ln.name,
                            direction=direction,
                        )
                    )
        return events

    def _gone(self, keep: set[int]) -> list[TrackEvent]:
        """zone_left for members whose track ended; forget every ended track."""
        events = []
        for z in self.zones.values():
            for tid in sorted(z.members - keep):
                z.members.discard(tid)
                events.append(self._event("zone_left", tid, len(z.members), zone=z.name))
            for tid in [t for t in z.streak if t not in keep]:
                del z.streak[tid]
        for ln in self.lines.values():
            ln.forget(keep)
        for tid in [t for t in self._seen if t not in keep]:
            del self._seen[tid]
        return events

    def close_all(self) -> list[TrackEvent]:
        """zone_left for everyone still in a zone (clean shutdown), then forget all tracks."""
        return self._gone(set())

    def _event(
        self, kind: str, tid: int, count: int, zone: str = "", line: str = "", direction: str = ""
    ) -> TrackEvent:
        """The event with the track's last box and score (a track that ended keeps its last)."""
        box, score = self._seen.get(tid, ((0.0, 0.0, 0.0, 0.0), 0.0))
        return TrackEvent(
            kind, tid, box, round(score, 4), count, zone=zone, line=line, direction=direction
        )
