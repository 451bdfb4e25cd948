"""The page's events list was empty after every restart (a reboot, a power cut, an upgrade)
although events.jsonl held the last run's events: the list lived in memory only. At start the
service now reads the newest events of the file back, skipping lines that are not events."""

from __future__ import annotations

import json
from pathlib import Path

from test_service_support import RunningService, poll, service_config, to_toml

from edgedetect.service.events import Event, JsonlWriter, last_events
from edgedetect.service.recent import RecentEvents

TOKEN = "resume-s3cret"


def _event(i: int, kind: str = "person_entered", snapshot: str = "") -> Event:
    return Event(
        type=kind,
        time=f"2026-01-01T00:00:{i:02d}.000Z",
        timestamp=1767225600.0 + i,
        track_id=i,
        box=[1.0, 2.0, 3.0, 4.0],
        score=0.9,
        count=1,
        frame_id=10 * i,
        snapshot=snapshot,
    )


def test_last_events_reads_the_tail_and_skips_what_is_not_an_event(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    writer = JsonlWriter(path)
    for i in range(30):
        writer.send(_event(i, snapshot=f"/snaps/s{i}.jpg") if i % 3 else _event(i, "count_changed"))
    writer.close()
    with path.open("ab") as f:
        f.write(b'{"type": "person_left", "time": 5}\n')  # wrong type of a field
        f.write(b'["not", "an", "event"]\n\xff\xfe\n{"type": "person_ent')  # cut by a power cut
    got = last_events(path, 8)
    assert [e.frame_id for e in got] == [10 * i for i in range(22, 30)]
    assert got[-1].snapshot == "/snaps/s29.jpg" and got[-3].type == "count_changed"
    assert [e.to_dict() for e in got] == [
        json.loads(line) for line in path.read_bytes().split(b"\n")[22:30]
    ]
    # a tail shorter than the file: the line its start cuts is not read as an event
    short = last_events(path, 100, tail_bytes=1000)
    assert 0 < len(short) < 30 and short[-1].frame_id == 290
    assert last_events(tmp_path / "none.jsonl", 8) == [] and last_events(path, 0) == []


def test_resume_puts_the_file_before_the_new_events_within_the_size(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    writer = JsonlWriter(path)
    for i in range(10):
        writer.send(_event(i))
    writer.close()
    recent = RecentEvents(size=6)
    recent.send(_event(50))  # this run's first event, in already
    assert recent.resume(str(path)) == 6
    assert [e["track_id"] for e in recent.latest(10)] == [50, 9, 8, 7, 6, 5]
    assert RecentEvents().resume("") == 0


def test_the_page_shows_the_last_runs_events_after_a_restart(tmp_path: Path) -> None:
    cfg = tmp_path / "config.toml"
    sections = service_config(tmp_path, http={"token": TOKEN}, tracker={"enter_frames": 1})
    cfg.write_text(to_toml(sections))

    def events(rs: RunningService) -> list[dict]:
        return json.loads(rs.get("/api/events?limit=200", token=TOKEN)[2])["events"]

    with RunningService(cfg) as rs:
        first = poll(lambda: [e for e in events(rs) if e.get("snapshot_url")], 30)
        assert first, "no event with a snapshot"
        run = rs.svc.run_id
    with RunningService(cfg) as rs:
        assert rs.svc.run_id != run
        before = [e for e in events(rs) if e.get("run_id") == run]
        assert before, "the last run's events are not on the page"
        assert {e["time"] for e in first} <= {e["time"] for e in before}
        url = next(e["snapshot_url"] for e in before if e.get("snapshot_url"))
        status, _, body = rs.get(url, token=TOKEN)
        assert status == 200 and body[:2] == b"\xff\xd8"
