"""A folder read slowly on purpose (`[source] image_fps = 0.1`, a photo every 10 s): a person in
the first photo entered one photo late. With fewer than two frames seen, the service took any
silence of 1 s for a camera gone mid-visit and dropped the person's candidate track, so
`enter_frames` started counting again at the second photo. Found by running the service on a
folder at image_fps 0.1 (person_entered at the fourth photo, enter_frames 3). The silence
allowed before the second frame is now the source's own pace. The real service on a folder of
astronaut photos, one every 4 s, enter_frames 2.
"""

from __future__ import annotations

import json
from pathlib import Path

from test_service_support import RunningService, image_dir, metric, poll, write_config


def test_a_person_in_the_first_slow_photo_enters_on_the_second(tmp_path: Path) -> None:
    (tmp_path / "people").mkdir()
    astronaut = image_dir(tmp_path / "people", people=3, empty=0)
    cfg = write_config(
        tmp_path,
        source={"spec": f"dir:{astronaut}", "image_fps": 0.25},
        service={"stall_timeout_s": 10.0},
        tracker={"enter_frames": 2, "leave_frames": 3},
    )
    events = tmp_path / "events.jsonl"

    def entered() -> bool:
        return events.exists() and any(
            json.loads(line)["type"] == "person_entered" for line in events.read_text().splitlines()
        )

    with RunningService(cfg) as rs:
        assert poll(entered, 60), "nobody entered"
        frames = metric(rs.metrics(), "edgedetect_frames_total")
    assert frames == 2, f"person_entered after {frames:.0f} frames (enter_frames 2)"
