"""NMS and IoU: hand-computed cases and a property test against a brute-force reference."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from edgedetect.nms import box_iou, nms


def test_iou_hand_computed() -> None:
    a = np.array([[0, 0, 10, 10]], float)
    b = np.array([[5, 0, 15, 10], [0, 0, 10, 10], [20, 20, 30, 30], [0, 0, 0, 0]], float)
    # overlap 5x10 = 50, union 150 -> 1/3; identical -> 1; disjoint -> 0; degenerate -> 0
    np.testing.assert_allclose(box_iou(a, b)[0], [1 / 3, 1.0, 0.0, 0.0])


def test_nms_suppresses_overlap_and_keeps_order() -> None:
    boxes = np.array([[0, 0, 10, 10], [1, 0, 11, 10], [50, 50, 60, 60]], float)
    scores = np.array([0.8, 0.9, 0.7])
    assert nms(boxes, scores, 0.5).tolist() == [1, 2]
    assert nms(boxes, scores, 0.95).tolist() == [1, 0, 2]
    assert nms(boxes, scores, 0.5, max_detections=1).tolist() == [1]


def test_nms_class_aware() -> None:
    boxes = np.array([[0, 0, 10, 10], [0, 0, 10, 10]], float)
    scores = np.array([0.9, 0.8])
    assert nms(boxes, scores, 0.5).tolist() == [0]
    assert nms(boxes, scores, 0.5, class_ids=np.array([0, 1])).tolist() == [0, 1]


def test_nms_empty() -> None:
    assert nms(np.zeros((0, 4)), np.zeros(0)).size == 0


def brute_force_nms(boxes, scores, thr, max_det, classes):
    """Reference: textbook greedy NMS with Python loops, pairwise, per class."""
    order = sorted(range(len(scores)), key=lambda i: (-scores[i], i))
    kept: list[int] = []
    for i in order:
        if len(kept) >= max_det:
            break
        ok = True
        for j in kept:
            if classes is not None and classes[i] != classes[j]:
                continue
            x1, y1 = max(boxes[i][0], boxes[j][0]), max(boxes[i][1], boxes[j][1])
            x2, y2 = min(boxes[i][2], boxes[j][2]), min(boxes[i][3], boxes[j][3])
            inter = max(0.0, x2 - x1) * max(0.0, y2 - y1)
            ai = max(0.0, boxes[i][2] - boxes[i][0]) * max(0.0, boxes[i][3] - boxes[i][1])
            aj = max(0.0, boxes[j][2] - boxes[j][0]) * max(0.0, boxes[j][3] - boxes[j][1])
            union = ai + aj - inter
            if union > 0 and inter / union > thr:
                ok = False
                break
        if ok:
            kept.append(i)
    return kept


box = st.tuples(st.integers(0, 40), st.integers(0, 40), st.integers(1, 30), st.integers(1, 30)).map(
    lambda t: [float(t[0]), float(t[1]), float(t[0] + t[2]), float(t[1] + t[3])]
)


@settings(max_examples=300, deadline=None)
@given(
    data=st.lists(st.tuples(box, st.integers(0, 1000), st.integers(0, 2)), min_size=0, max_size=25),
    thr=st.sampled_from([0.0, 0.3, 0.5, 0.7, 1.0]),
    max_det=st.integers(1, 30),
    class_aware=st.booleans(),
)
def test_nms_matches_brute_force(data, thr, max_det, class_aware) -> None:
    boxes = [d[0] for d in data]
    scores = [d[1] / 1000 for d in data]
    classes = [d[2] for d in data] if class_aware else None
    got = nms(
        np.array(boxes, float).reshape(-1, 4),
        np.array(scores, np.float32),
        thr,
        max_det,
        None if classes is None else np.array(classes),
    ).tolist()
    scores32 = np.array(scores, np.float32).tolist()  # nms compares scores as float32
    assert got == brute_force_nms(boxes, scores32, thr, max_det, classes)
