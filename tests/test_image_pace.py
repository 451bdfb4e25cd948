"""Image sources in the service are read at `[source] image_fps`: a looping folder of a few
pictures was read as fast as the detector went (467 fps on a whole core, re-detecting the same
photos), where a video file plays at its own rate. A paced source can only run slower than its
pace on a busy machine, so the bounds below are upper bounds that no load can break."""

from __future__ import annotations

import time
from pathlib import Path

from test_service_support import RunningService, metric, poll, service_config, to_toml


def frames_per_second(rs: RunningService, seconds: float) -> float:
    """Frames that reached the output stage per second, over `seconds` from the first frame."""
    assert poll(lambda: metric(rs.metrics(), "edgedetect_frames_total") >= 1, 15)
    t0, n0 = time.monotonic(), metric(rs.metrics(), "edgedetect_frames_total")
    time.sleep(seconds)
    n1 = metric(rs.metrics(), "edgedetect_frames_total")
    return (n1 - n0) / (time.monotonic() - t0)


def test_a_looping_image_folder_is_read_at_image_fps(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(to_toml(service_config(tmp_path, source={"image_fps": 4})))
    with RunningService(config) as rs:
        rate = frames_per_second(rs, 2.5)
    assert 0 < rate <= 4 * 1.25 + 0.5, f"{rate:.1f} frames/s at image_fps = 4"


def test_a_reload_that_changes_image_fps_paces_the_new_pipeline(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(to_toml(service_config(tmp_path, source={"image_fps": 0})))
    with RunningService(config) as rs:
        assert poll(lambda: metric(rs.metrics(), "edgedetect_frames_total") >= 1, 15)
        config.write_text(to_toml(service_config(tmp_path, source={"image_fps": 4})))
        rs.svc.request_reload()
        assert poll(lambda: rs.svc.reloads == 1, 10), rs.svc.last_reload_error
        assert rs.svc.cfg.source.image_fps == 4
        rate = frames_per_second(rs, 2.5)
    assert 0 < rate <= 4 * 1.25 + 0.5, f"{rate:.1f} frames/s after the reload to image_fps = 4"
