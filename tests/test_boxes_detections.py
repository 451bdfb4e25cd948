"""Box coder round trip and the Detections container."""

from __future__ import annotations

import json

import numpy as np
import pytest

from edgedetect.boxes import decode_center_size, encode_center_size
from edgedetect.detections import Detections


def test_box_coder_round_trip_and_known_value() -> None:
    rng = np.random.default_rng(0)
    yx = rng.uniform(0, 0.6, (50, 2))
    hw = rng.uniform(0.05, 0.4, (50, 2))
    boxes = np.concatenate([yx, yx + hw], axis=1).astype(np.float32)
    anchors = np.concatenate([rng.uniform(0.1, 0.9, (50, 2)), rng.uniform(0.05, 0.5, (50, 2))], 1)
    codes = encode_center_size(boxes, anchors)
    np.testing.assert_allclose(decode_center_size(codes, anchors), boxes, atol=1e-5)
    # zero code -> the anchor itself
    anchor = np.array([[0.5, 0.5, 0.2, 0.4]])
    np.testing.assert_allclose(
        decode_center_size(np.zeros((1, 4)), anchor), [[0.4, 0.3, 0.6, 0.7]], atol=1e-6
    )
    # ty = 10 moves the centre by one anchor height (scale 10)
    np.testing.assert_allclose(
        decode_center_size(np.array([[10, 0, 0, 0]]), anchor)[0, [0, 2]], [0.6, 0.8], atol=1e-6
    )


def test_detections_indexing_filter_json() -> None:
    d = Detections(
        np.array([[0, 0, 10, 20], [5, 5, 6, 6.25]]),
        np.array([0.9, 0.3]),
        np.array([0, 2]),
        {0: "person", 2: "car"},
    )
    assert len(d) == 2
    assert d.labels == ["person", "car"]
    np.testing.assert_allclose(d.area, [200.0, 1.25])
    kept = d.filter(min_score=0.5)
    assert len(kept) == 1 and kept.labels == ["person"]
    assert len(d.filter(class_ids={2})) == 1 and d.filter(class_ids={2}).labels == ["car"]
    assert len(d[np.array([False, False])]) == 0
    out = json.loads(json.dumps(d.to_json()))
    assert out[0] == {"label": "person", "score": 0.9, "box": [0.0, 0.0, 10.0, 20.0]}
    assert out[1]["box"] == [5.0, 5.0, 6.0, 6.2]
    tracked = d.with_tracker_ids(np.array([7, 8]))
    assert [o["track_id"] for o in tracked.to_json()] == [7, 8]
    assert Detections.empty({0: "person"}).to_json() == []


def test_detections_rejects_mismatched_lengths() -> None:
    with pytest.raises(ValueError, match="differ in length"):
        Detections(np.array([[0, 0, 1, 1]]), np.array([0.5, 0.6]), np.array([0]))
