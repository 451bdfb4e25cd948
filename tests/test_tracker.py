"""Tracker mechanics on synthetic box sequences: association, debounce, median score."""

from __future__ import annotations

import numpy as np

from edgedetect.boxes import box_iou
from edgedetect.detections import Detections
from edgedetect.service.tracker import PersonTracker


def box(x: float, y: float = 100.0, w: float = 50.0, h: float = 120.0) -> list[float]:
    return [x, y, x + w, y + h]


def feed(
    tr: PersonTracker, boxes: list[list[float]], scores: list[float] | None = None, t: float = 0.0
):
    scores = scores if scores is not None else [0.9] * len(boxes)
    people = Detections(
        np.array(boxes, dtype=np.float32).reshape(-1, 4),
        np.array(scores),
        np.zeros(len(boxes), np.int32),
        {0: "person"},
    )
    tracked, events = tr.update(people, t)
    assert np.array_equal(tracked.xyxy, people.xyxy) and tracked.tracker_id is not None  # ids added
    return events, tracked.tracker_id


def types(events) -> list[str]:
    return [e.type for e in events]


def test_the_tracker_iou_is_the_runtime_one() -> None:
    a = np.array([box(0)], dtype=np.float32)
    b = np.array([box(0), box(25), box(500)], dtype=np.float32)
    m = box_iou(a, b)
    assert m.shape == (1, 3)
    assert m[0, 0] == 1.0 and 0.3 < m[0, 1] < 0.34 and m[0, 2] == 0.0
    assert box_iou(np.zeros((0, 4)), b).shape == (0, 3)


def test_enter_after_n_consecutive_frames_and_leave_after_m_unseen() -> None:
    tr = PersonTracker(enter_frames=3, leave_frames=4)
    ev, ids = feed(tr, [box(100)])
    assert ev == [] and ids.tolist() == [-1]
    ev, _ = feed(tr, [box(105)])
    assert ev == []
    ev, ids = feed(tr, [box(110)], t=1.0)
    assert types(ev) == ["person_entered", "count_changed"]
    assert ev[0].track_id == 1 and ids.tolist() == [1] and ev[0].count == 1
    assert ev[1].count == 1 and ev[1].previous_count == 0
    for i in range(3):  # unseen for 3 frames: still present
        ev, _ = feed(tr, [], t=2.0 + i)
        assert ev == [] and tr.count == 1
    ev, _ = feed(tr, [], t=6.0)
    assert types(ev) == ["person_left", "count_changed"]
    assert ev[0].track_id == 1 and ev[0].duration_s == 6.0 and ev[1].count == 0


def test_flicker_does_not_enter() -> None:
    tr = PersonTracker(enter_frames=3, leave_frames=4)
    for _ in range(10):  # seen, unseen, seen...: never 3 in a row
        assert feed(tr, [box(100)])[0] == []
        assert feed(tr, [])[0] == []
    assert tr.count == 0


def test_brief_miss_keeps_the_same_id() -> None:
    tr = PersonTracker(enter_frames=2, leave_frames=5)
    feed(tr, [box(100)])
    feed(tr, [box(102)])
    feed(tr, [])
    feed(tr, [])
    ev, ids = feed(tr, [box(108)])
    assert ev == [] and ids.tolist() == [1]


def test_two_people_get_stable_distinct_ids() -> None:
    tr = PersonTracker(enter_frames=2, leave_frames=3)
    ids_seen = []
    for i in range(8):
        a, b = box(100 + 5 * i), box(400 - 5 * i)
        order = [a, b] if i % 2 else [b, a]  # detection order must not matter
        _, ids = feed(tr, order)
        ids_seen.append(ids.tolist() if i % 2 else ids.tolist()[::-1])
    assert ids_seen[-1] == ids_seen[2] == [1, 2] or ids_seen[-1] == ids_seen[2] == [2, 1]
    assert tr.count == 2


def test_fast_mover_matched_by_centroid() -> None:
    tr = PersonTracker(enter_frames=2, leave_frames=3, max_center_distance=0.75)
    feed(tr, [box(100)])
    feed(tr, [box(100)])
    # 60 px jump: no overlap with a 50-px-wide box, but within 0.75 of the 130-px diagonal
    ev, ids = feed(tr, [box(160)])
    assert ev == [] and ids.tolist() == [1]
    tr2 = PersonTracker(enter_frames=2, leave_frames=1, max_center_distance=0.0)
    feed(tr2, [box(100)])
    feed(tr2, [box(100)])
    ev, ids = feed(tr2, [box(160)])
    assert "person_left" in types(ev) and ids.tolist() == [-1]


def test_event_score_is_median() -> None:
    tr = PersonTracker(enter_frames=5, leave_frames=2)
    evs = []
    for s in [0.9, 0.2, 0.8, 0.7, 0.6]:
        evs += feed(tr, [box(100)], [s])[0]
    entered = [e for e in evs if e.type == "person_entered"]
    assert len(entered) == 1 and abs(entered[0].score - 0.7) < 1e-6


def test_close_all_emits_leave_for_confirmed() -> None:
    tr = PersonTracker(enter_frames=1, leave_frames=5)
    ev, _ = feed(tr, [box(100), box(400)])
    assert types(ev).count("person_entered") == 2
    ev = tr.close_all(10.0)
    assert types(ev) == ["person_left", "person_left", "count_changed"] and tr.count == 0
