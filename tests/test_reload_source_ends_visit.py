"""A reload that points `[source] spec` at another camera ends the visit of the people in the
old camera's picture: they were kept (count, zones, an open clip) and the tracker could carry
a track of the old picture on with a person of the new one."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from test_service_outage import of_type, visit_begins
from test_service_support import RunningService, image_dir, poll, service_config, to_toml


def test_a_reload_to_another_source_ends_the_visit_at_once(tmp_path: Path) -> None:
    raw = service_config(tmp_path)
    (tmp_path / "a").mkdir()
    raw["source"]["spec"] = f"dir:{image_dir(tmp_path / 'a', people=6, empty=0)}"
    other = tmp_path / "b"
    other.mkdir()
    cv2.imwrite(str(other / "dark.png"), np.zeros((480, 640, 3), np.uint8))
    raw["source"]["image_fps"] = 0.2  # the new camera's first frame comes 5 s after it opens
    config = tmp_path / "config.toml"
    config.write_text(to_toml(raw))
    with RunningService(config) as rs:
        track = visit_begins(tmp_path)
        raw["source"]["spec"] = f"dir:{other}"
        config.write_text(to_toml(raw))
        rs.svc.request_reload()
        assert poll(lambda: rs.svc.reloads == 1, 30)
        assert poll(lambda: of_type(tmp_path, "person_left", track_id=track), 2)
        assert rs.svc.cfg.source.spec == f"dir:{other}"
