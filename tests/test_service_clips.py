"""[clips] end to end: the real service (real model and pipeline) on data/sample.mp4 writes an
MP4 per episode of people, and the event that brings the count back to 0 names it."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
from test_service_support import RunningService, metric, poll, write_config

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "sample.mp4"  # people in 2 of 4 parts


def test_sample_video_makes_clips_named_by_the_events(tmp_path: Path) -> None:
    clips = tmp_path / "clips"
    cfg = write_config(
        tmp_path,
        source={"spec": str(SAMPLE), "loop": False},
        clips={
            "enabled": True,
            "dir": str(clips),
            "pre_s": 1.0,
            "post_s": 0.5,
            "fps": 5.0,
            "width": 320,
            "annotated": True,
        },
    )
    with RunningService(cfg) as rs:
        assert poll(lambda: rs.exit_code is not None, 60), "the service did not end with its file"
        assert rs.exit_code == 0
    files = sorted(clips.glob("*.mp4"))
    assert files, "no clip written"
    assert not [p for p in clips.iterdir() if ".part" in p.name]
    for f in files:
        cap = cv2.VideoCapture(str(f))
        ok, img = cap.read()
        frames = cap.get(cv2.CAP_PROP_FRAME_COUNT)
        cap.release()
        assert ok and frames >= 1 and img.shape[1] == 320, f
    events = [json.loads(line) for line in (tmp_path / "events.jsonl").read_text().splitlines()]
    back_to_0 = [e for e in events if e["type"] == "count_changed" and e["count"] == 0]
    assert back_to_0 and all(e.get("clip") for e in back_to_0), back_to_0
    assert {e["clip"] for e in back_to_0} <= {f.name for f in files}
    entered = [e for e in events if e["type"] == "person_entered"]
    assert entered and all(e.get("clip") in {f.name for f in files} for e in entered)
    text = rs.svc.metrics.render().decode()
    assert metric(text, "edgedetect_clips_total") == len(files)
    assert metric(text, "edgedetect_clips_failed_total") == 0
