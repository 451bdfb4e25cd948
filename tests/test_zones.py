"""Zones, masks, filters and lines on hand-made tracks (edgedetect.service.zones).

Each track is a box whose feet (bottom centre) are placed where the case needs them; frames are
fed one by one as the sink does after the tracker.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

from edgedetect.detections import Detections
from edgedetect.service.zones import (
    DetectionFilter,
    Line,
    SceneRules,
    Zone,
    points_in_polygon,
)

W, H = 640, 480
LEFT_HALF = [[0.0, 0.0], [0.5, 0.0], [0.5, 1.0], [0.0, 1.0]]


def people(*tracks: tuple[int, float, float], score: float = 0.9) -> Detections:
    """Tracked persons: (track id, feet x, feet y) in pixels; boxes 40 x 100 px above the feet."""
    xyxy = [[x - 20, y - 100, x + 20, y] for _, x, y in tracks]
    n = len(tracks)
    return Detections(
        np.asarray(xyxy, np.float32).reshape(-1, 4),
        np.full(n, score),
        np.zeros(n),
        {0: "person"},
        np.asarray([t for t, _, _ in tracks], np.int64),
    )


def zone_rules(polygon: list[list[float]], inertia: int = 3) -> SceneRules:
    return SceneRules([Zone("z", np.asarray(polygon, float), inertia)])


def line_rules(p1: tuple[float, float], p2: tuple[float, float]) -> SceneRules:
    return SceneRules(lines=[Line("door", np.asarray([p1, p2], float))])


def kinds(events: list) -> list[tuple[str, int]]:
    return [(e.type, e.track_id) for e in events]


# ----------------------------------------------------------------------------- geometry
def test_even_odd_rule_on_a_concave_polygon() -> None:
    ell = np.array([[0, 0], [1, 0], [1, 0.5], [0.5, 0.5], [0.5, 1], [0, 1]], float)  # an L
    pts = np.array([[0.25, 0.25], [0.75, 0.25], [0.25, 0.75], [0.75, 0.75], [1.5, 0.25]])
    assert points_in_polygon(pts, ell).tolist() == [True, True, True, False, False]


def test_polygons_are_fractions_of_a_non_square_frame() -> None:
    rules = zone_rules(LEFT_HALF, inertia=1)
    wide_w, wide_h = 1280, 480
    # x = 600 px is 0.47 of a 1280 px frame (inside the left half) but would be 0.94 of 640 px
    events = rules.update(people((1, 600, 300), (2, 700, 300)), wide_w, wide_h, 0.0)
    assert kinds(events) == [("zone_entered", 1)]
    assert rules.counts() == {"z": 1}


def test_feet_on_the_bottom_edge_are_in_a_zone_drawn_to_it() -> None:
    rules = zone_rules([[0.0, 0.5], [1.0, 0.5], [1.0, 1.0], [0.0, 1.0]], inertia=1)
    events = rules.update(people((1, 320, H), (2, W, 300)), W, H, 0.0)  # cut off by the edges
    assert kinds(events) == [("zone_entered", 1), ("zone_entered", 2)]


# ----------------------------------------------------------------------------- zones
def test_zone_entered_only_after_inertia_frames() -> None:
    rules = zone_rules(LEFT_HALF, inertia=3)
    assert rules.update(people((1, 100, 300)), W, H, 0.0) == []
    assert rules.update(people((1, 110, 300)), W, H, 0.1) == []
    events = rules.update(people((1, 120, 300)), W, H, 0.2)
    assert kinds(events) == [("zone_entered", 1)]
    assert events[0].zone == "z" and events[0].count == 1
    assert events[0].box == (100.0, 200.0, 140.0, 300.0) and events[0].score == pytest.approx(0.9)
    assert rules.counts() == {"z": 1}


def test_one_stray_frame_restarts_the_count() -> None:
    rules = zone_rules(LEFT_HALF, inertia=3)
    for x in (100, 100, 500, 100, 100):  # the 500 px frame is outside: the run starts again
        assert rules.update(people((1, x, 300)), W, H, 0.0) == []
    assert kinds(rules.update(people((1, 100, 300)), W, H, 0.0)) == [("zone_entered", 1)]


def test_zone_left_after_inertia_frames_outside() -> None:
    rules = zone_rules(LEFT_HALF, inertia=2)
    for _ in range(2):
        rules.update(people((1, 100, 300), (2, 150, 300)), W, H, 0.0)
    assert rules.counts() == {"z": 2}
    assert rules.update(people((1, 500, 300), (2, 150, 300)), W, H, 0.0) == []
    events = rules.update(people((1, 500, 300), (2, 150, 300)), W, H, 0.0)
    assert kinds(events) == [("zone_left", 1)] and events[0].count == 1
    assert rules.counts() == {"z": 1}


def test_track_that_ended_leaves_at_once_one_that_is_missed_stays() -> None:
    rules = zone_rules(LEFT_HALF, inertia=1)
    rules.update(people((1, 100, 300), (2, 150, 300)), W, H, 0.0)
    # track 1 unmatched on this frame but still held by the tracker: still in the zone
    assert rules.update(people((2, 150, 300)), W, H, 0.1, alive={1, 2}) == []
    assert rules.counts() == {"z": 2}
    events = rules.update(people((2, 150, 300)), W, H, 0.2, alive={2})
    assert kinds(events) == [("zone_left", 1)]
    assert events[0].box == (80.0, 200.0, 120.0, 300.0)  # its last box
    assert rules.counts() == {"z": 1}


def test_unconfirmed_candidates_are_ignored() -> None:
    rules = zone_rules(LEFT_HALF, inertia=1)
    assert rules.update(people((-1, 100, 300)), W, H, 0.0) == []
    assert rules.counts() == {"z": 0}


def test_close_all_empties_every_zone() -> None:
    rules = zone_rules(LEFT_HALF, inertia=1)
    rules.update(people((1, 100, 300), (2, 150, 300), (3, 600, 300)), W, H, 0.0)
    assert kinds(rules.close_all()) == [("zone_left", 1), ("zone_left", 2)]
    assert rules.counts() == {"z": 0}


def test_state_of_ended_tracks_is_dropped() -> None:
    rules = SceneRules(
        [Zone("z", np.asarray(LEFT_HALF), 5)], [Line("l", np.array([[0.5, 0], [0.5, 1]]))]
    )
    for tid in range(1, 200):  # many short tracks, each gone by the next frame
        rules.update(people((tid, 100 + tid, 300)), W, H, float(tid))
    z, ln = rules.zones["z"], rules.lines["l"]
    assert set(z.streak) == {199} and set(ln.last) == {199} and set(ln.side) == {199}
    assert set(rules._seen) == {199}


def test_reload_keeps_unchanged_zones_and_resets_changed_ones() -> None:
    old = SceneRules(
        [Zone("same", np.asarray(LEFT_HALF), 1), Zone("moved", np.asarray(LEFT_HALF), 1)]
    )
    old.update(people((1, 100, 300)), W, H, 0.0)
    assert old.counts() == {"same": 1, "moved": 1}
    right_half = [[0.5, 0.0], [1.0, 0.0], [1.0, 1.0], [0.5, 1.0]]
    new = SceneRules(
        [Zone("same", np.asarray(LEFT_HALF), 1), Zone("moved", np.asarray(right_half), 1)]
    )
    assert kinds(new.adopt(old)) == [("zone_left", 1)]  # leaves "moved" as it was
    assert new.counts() == {"same": 1, "moved": 0}


def test_reload_closes_the_members_of_changed_and_removed_zones() -> None:
    """Every zone_entered gets its zone_left: a reshaped or removed zone's people leave it (and
    enter the reshaped one again after `inertia` frames); an unchanged zone keeps them."""
    old = SceneRules(
        [
            Zone("same", np.asarray(LEFT_HALF), 1),
            Zone("moved", np.asarray(LEFT_HALF), 1),
            Zone("gone", np.asarray(LEFT_HALF), 1),
        ]
    )
    entered = old.update(people((1, 100, 300), (2, 120, 300)), W, H, 0.0)
    assert len(entered) == 6
    reshaped = [[0.0, 0.0], [0.51, 0.0], [0.51, 1.0], [0.0, 1.0]]
    new = SceneRules(
        [Zone("same", np.asarray(LEFT_HALF), 1), Zone("moved", np.asarray(reshaped), 1)]
    )
    closing = new.adopt(old)
    assert [(e.type, e.zone, e.track_id, e.count) for e in closing] == [
        ("zone_left", "moved", 1, 1),
        ("zone_left", "moved", 2, 0),
        ("zone_left", "gone", 1, 1),
        ("zone_left", "gone", 2, 0),
    ]
    assert closing[0].box == entered[0].box  # the track's last box, as for any zone_left
    again = new.update(people((1, 100, 300), (2, 120, 300)), W, H, 1.0)
    assert [(e.type, e.zone) for e in again] == [("zone_entered", "moved")] * 2


# ----------------------------------------------------------------------------- lines
def walk(rules: SceneRules, tid: int, points: Sequence[tuple[float, float]]) -> list:
    events = []
    for x, y in points:
        events += rules.update(people((tid, x, y)), W, H, 0.0)
    return events


def test_line_direction_in_is_from_the_left_of_p1_to_p2() -> None:
    # p1 -> p2 points right on the picture: its left is the top of the picture (image y is down)
    rules = line_rules((0.2, 0.5), (0.8, 0.5))
    down = walk(rules, 1, [(320, 150), (320, 200), (320, 300), (320, 350)])
    assert [(e.type, e.line, e.direction, e.count) for e in down] == [
        ("line_crossed", "door", "in", 1)
    ]
    up = walk(rules, 2, [(300, 350), (300, 300), (300, 150)])
    assert [(e.direction, e.count) for e in up] == [("out", 1)]
    assert rules.line_counts() == {"door": {"in": 1, "out": 1}}


def test_reversed_line_swaps_the_direction() -> None:
    rules = line_rules((0.8, 0.5), (0.2, 0.5))
    assert [e.direction for e in walk(rules, 1, [(320, 150), (320, 350)])] == ["out"]


def test_wobbling_on_the_line_counts_once() -> None:
    rules = line_rules((0.2, 0.5), (0.8, 0.5))  # y = 240 px; dead band 2 % of 800 px = 16 px
    path = [(320, 150)] + [(320, 236 + 8 * (i % 2)) for i in range(20)] + [(320, 350)]
    path += [(320, 236 + 8 * (i % 2)) for i in range(20)] + [(320, 350)]
    events = walk(rules, 1, path)
    assert [e.direction for e in events] == ["in"]
    assert rules.line_counts() == {"door": {"in": 1, "out": 0}}


def test_wobble_that_ends_back_where_it_started_counts_nothing() -> None:
    rules = line_rules((0.2, 0.5), (0.8, 0.5))
    path = [(320, 150)] + [(320, 236 + 8 * (i % 2)) for i in range(9)] + [(320, 150)]
    assert walk(rules, 1, path) == []


def test_passing_beside_the_segment_is_not_a_crossing() -> None:
    rules = line_rules((0.2, 0.5), (0.5, 0.5))  # x from 128 to 320 px
    assert walk(rules, 1, [(500, 150), (500, 350)]) == []  # crossed the line's extension
    # and back across the segment itself: counted (out: from the right/bottom to the top)
    assert [e.direction for e in walk(rules, 1, [(200, 350), (200, 150)])] == ["out"]


def test_first_sighting_on_a_side_is_no_crossing() -> None:
    rules = line_rules((0.2, 0.5), (0.8, 0.5))
    assert walk(rules, 1, [(320, 350), (320, 360)]) == []


# ----------------------------------------------------------------------------- filter
def boxes(xyxy: list[list[float]], scores: list[float]) -> Detections:
    n = len(xyxy)
    return Detections(np.asarray(xyxy, np.float32), np.asarray(scores), np.zeros(n), {0: "person"})


def test_filter_drops_low_scores_and_counts_the_reason() -> None:
    f = DetectionFilter(min_score=0.6)
    kept, dropped = f.apply(boxes([[0, 0, 50, 100], [100, 0, 150, 100]], [0.55, 0.7]), W, H)
    assert kept.score.tolist() == pytest.approx([0.7]) and dropped == {"score": 1}


def test_filter_area_bounds_are_fractions_of_the_frame() -> None:
    f = DetectionFilter(min_area=0.01, max_area=0.5)  # frame 307200 px: 3072 .. 153600 px
    dets = boxes(
        [[0, 0, 50, 50], [0, 0, 60, 60], [0, 0, 640, 300]], [0.9, 0.9, 0.9]
    )  # 2500, 3600, 192000
    kept, dropped = f.apply(dets, W, H)
    assert kept.xyxy.tolist() == [[0, 0, 60, 60]] and dropped == {"area": 2}


def test_mask_drops_by_the_feet_not_the_box() -> None:
    top = [[0.0, 0.0], [1.0, 0.0], [1.0, 0.3], [0.0, 0.3]]  # y < 144 px
    f = DetectionFilter(masks=[top])
    # box A's feet are at y 120 (masked) though most of it is below; B's box reaches into the
    # mask but its feet stand at y 400
    dets = boxes([[10, 20, 60, 120], [100, 50, 150, 400]], [0.9, 0.9])
    kept, dropped = f.apply(dets, W, H)
    assert kept.xyxy[:, 0].tolist() == [100] and dropped == {"mask": 1}


def test_first_reason_wins_and_defaults_drop_nothing() -> None:
    f = DetectionFilter(min_score=0.5, max_area=0.1, masks=[LEFT_HALF])
    dets = boxes([[0, 0, 600, 400]], [0.1])  # low score, too big and feet in the mask
    assert f.apply(dets, W, H)[1] == {"score": 1}
    assert not DetectionFilter().active and f.active
    kept, dropped = DetectionFilter().apply(dets, W, H)
    assert len(kept) == 1 and dropped == {}
