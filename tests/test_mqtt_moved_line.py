"""A line moved by a reload (new `points` under the same `[lines.NAME]`) starts counting from 0:
/healthz and /metrics said so, but MQTT kept the old totals retained (`<prefix>/line/NAME/in`
4 where /healthz had 0), and only a crossing of the moved line made it jump to 1. Found by
moving a line with a real mosquitto watching. The real service on photos of the astronaut
walking to and fro across the middle of the picture.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np
from conftest import skimage_bgr
from test_service import broker  # noqa: F401 - a fixture: mosquitto on a free port
from test_service_support import RunningService, poll, service_config, to_toml
from test_service_zones import _retained

MIDDLE = [[0.5, 0.0], [0.5, 1.0]]
EDGE = [[0.97, 0.0], [0.97, 1.0]]  # right of where the walker's feet ever are


def walking(root: Path) -> Path:
    """Frames of the astronaut stepping right across the picture and back (32 px a frame)."""
    d = root / "walk"
    d.mkdir()
    person = cv2.resize(skimage_bgr("astronaut"), (256, 256))
    xs = list(range(0, 768 - 256 + 1, 32))
    for i, x in enumerate(xs + xs[-2:0:-1]):
        frame = np.full((256, 768, 3), 90, np.uint8)
        frame[:, x : x + 256] = person
        cv2.imwrite(str(d / f"f{i:03d}.jpg"), frame)
    return d


def test_a_moved_line_restarts_its_mqtt_totals_as_in_healthz(
    tmp_path: Path,
    broker: int,  # noqa: F811
) -> None:
    mqtt = {"enabled": True, "host": "127.0.0.1", "port": broker, "topic_prefix": "edl"}
    sections: dict[str, dict[str, Any]] = {
        "source": {"spec": f"dir:{walking(tmp_path)}"},
        "mqtt": mqtt,
        "lines.door": {"points": MIDDLE},
    }
    cfg = tmp_path / "config.toml"
    cfg.write_text(to_toml(service_config(tmp_path, **sections)))
    topics = ("edl/line/door/in", "edl/line/door/out")
    with RunningService(cfg) as rs:
        crossed = lambda: rs.svc.health()[1]["lines"]["door"]  # noqa: E731
        assert poll(lambda: min(crossed().values()) >= 1, 60), crossed()
        assert poll(lambda: _retained(broker, ("edl",), 0.2).get(topics[1], b"0") != b"0", 20)
        sections["lines.door"] = {"points": EDGE}
        cfg.write_text(to_toml(service_config(tmp_path, **sections)))
        rs.svc.request_reload()
        assert poll(lambda: rs.svc.reloads == 1, 20), rs.svc.last_reload_error
        assert poll(lambda: crossed() == {"in": 0, "out": 0}, 20), crossed()

        def zeros() -> bool:
            got = _retained(broker, ("edl",), 0.2)
            return all(got.get(t) == b"0" for t in topics)

        poll(zeros, 20)
        got = _retained(broker, ("edl",))
        assert crossed() == {"in": 0, "out": 0}, "the walker never reaches the moved line"
    assert {t: got.get(t) for t in topics} == dict.fromkeys(topics, b"0")
