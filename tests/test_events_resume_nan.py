"""An events file with a line whose numbers are NaN or Infinity (another program, or a person,
wrote it; Python's json writes them unless told not to): at start the line was read back as an
event, and /api/events then answered with `NaN` in it, which is not JSON, so the page's events
list failed for as long as the line stayed among the newest. Found by appending such a line and
restarting. Lines with numbers that are not finite are skipped like any other that is not an
event. The real service on the file.
"""

from __future__ import annotations

import json
from pathlib import Path

from test_events_resume import _event
from test_service_support import RunningService, service_config, to_toml

from edgedetect.service.events import JsonlWriter


def _strict(text: str) -> object:
    def refuse(name: str) -> object:
        raise ValueError(f"{name} is not JSON")

    return json.loads(text, parse_constant=refuse)


def test_a_line_with_nan_does_not_break_the_pages_events(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    writer = JsonlWriter(path)
    writer.send(_event(1))
    writer.close()
    with path.open("a") as f:
        f.write('{"type":"person_entered","time":"t","timestamp":NaN,"count":1,"frame_id":2}\n')
        f.write(
            '{"type":"person_left","time":"t","timestamp":1.0,"count":0,"frame_id":3,'
            '"score":Infinity,"track_id":2}\n'
        )
    cfg = tmp_path / "config.toml"
    cfg.write_text(to_toml(service_config(tmp_path, events={"jsonl": str(path)})))
    with RunningService(cfg) as rs:
        status, _, body = rs.get("/api/events?limit=200")
    assert status == 200
    events = _strict(body.decode())["events"]  # type: ignore[index]
    assert [e["frame_id"] for e in events if e.get("run_id") != rs.svc.run_id] == [10]
