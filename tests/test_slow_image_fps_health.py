"""A folder read slowly on purpose (`[source] image_fps = 0.1`: a camera that drops a photo into
a folder every 10 s, a slideshow) with a frame interval longer than `[service]
stall_timeout_s`: /healthz turned 503 between every two photos, the log said "no frame for
5.1 s (stall_timeout_s 5.0): camera stalled or gone" then "frames flowing again" at each one,
and with an interval over a minute the systemd watchdog (pinged only while healthy) would have
restarted the service. Found by running the service on a folder at image_fps 0.1. A paced
source is now given twice its frame interval before it counts as stalled. The real service
on a folder of photos, one every 4 s, stall_timeout_s 2.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from test_service_support import RunningService, metric, poll, write_config


def test_a_folder_paced_slower_than_the_stall_timeout_stays_healthy(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cfg = write_config(tmp_path, source={"image_fps": 0.25}, service={"stall_timeout_s": 2.0})
    seen: list[int] = []
    with caplog.at_level(logging.INFO, logger="edgedetect.service"), RunningService(cfg) as rs:

        def frames() -> float:
            seen.append(rs.get("/healthz")[0])
            return metric(rs.metrics(), "edgedetect_frames_total")

        assert poll(lambda: frames() >= 1, 30)
        seen.clear()  # from the first frame on: two intervals of 4 s between frames 1 and 3
        assert poll(lambda: frames() >= 3, 60, every=0.1)
    assert seen and set(seen) == {200}, f"/healthz between slow frames: {seen}"
    stalls = [r.getMessage() for r in caplog.records if "no frame for" in r.getMessage()]
    assert not stalls, stalls
