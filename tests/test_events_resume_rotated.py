"""A restart soon after the events file rotated (`[events] max_mb`): the page's list came back
with only the few events written since the rotation, the rest of the last run's being in
events.jsonl.1, which was never read. Found by restarting the service with a small `max_mb`.
At start the service now reads the newest backup too when the file holds fewer events than
the list keeps. The real service, the file and its backup as its own rotation leaves them.
"""

from __future__ import annotations

import json
from pathlib import Path

from test_events_resume import _event
from test_service_support import RunningService, service_config, to_toml

from edgedetect.service.events import JsonlWriter


def test_the_page_shows_the_events_before_a_rotation_after_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    writer = JsonlWriter(path, max_bytes=2500, backups=2)
    for i in range(20):
        writer.send(_event(i))
    writer.close()
    backup = path.with_name("events.jsonl.1")
    assert backup.exists(), "the writer did not rotate"
    in_file = len(path.read_text().splitlines())
    assert in_file < 20
    # a source with nobody in it: the list holds only what was read back
    cfg = tmp_path / "config.toml"
    sections = service_config(tmp_path, events={"jsonl": str(path), "max_mb": 100})
    (tmp_path / "coffee").mkdir()
    coffee = sorted((tmp_path / "imgs").glob("*.jpg"))[-1]
    (tmp_path / "coffee" / "c.jpg").write_bytes(coffee.read_bytes())
    sections["source"]["spec"] = f"dir:{tmp_path / 'coffee'}"
    cfg.write_text(to_toml(sections))
    with RunningService(cfg) as rs:
        got = json.loads(rs.get("/api/events?limit=200")[2])["events"]
    want = len(backup.read_text().splitlines()) + in_file
    assert len(got) == want > in_file, (len(got), want, in_file)
    assert [e["track_id"] for e in got] == list(range(19, 19 - want, -1))
