"""/api/events after a reload turned [clips] (or [snapshots]) off: a clip that was saved was
reported with "clip_missing", which the page shows as "clip not saved (see the log)" while the
log says it was saved; and snapshot links pointed at /snapshots/NAME, which answers 404 while
snapshots are off (a broken image on the page). With the folder off, the events now carry no
link to it and make no claim about the file."""

from __future__ import annotations

import json
from pathlib import Path

from test_http_hardening import _app, serving
from test_http_web import TOKEN, _auth, _event, files  # noqa: F401 - the fixture

from edgedetect.service.recent import RecentEvents


def test_events_of_a_folder_turned_off_claim_nothing(files: dict[str, Path]) -> None:  # noqa: F811
    recent = RecentEvents()
    recent.send(_event(1, snapshot=str(files["snapshots"] / "a.jpg"), clip="c.mp4"))
    folders: dict[str, list[str]] = {
        "snapshots": [str(files["snapshots"])],
        "clips": [str(files["clips"])],
    }
    app = _app(token=TOKEN, events=recent.latest, folders=lambda: folders, recording=lambda: "")
    with serving(app) as server:
        (on,) = json.loads(_auth(server, "/api/events")[2])["events"]
        assert on["clip_url"] == "/clips/c.mp4" and on["snapshot_url"] == "/snapshots/a.jpg"
        folders["clips"] = folders["snapshots"] = []  # a reload turned both off
        (off,) = json.loads(_auth(server, "/api/events")[2])["events"]
        assert off["clip_url"] == "" and "clip_missing" not in off and "clip_recording" not in off
        assert "snapshot_url" not in off and "snapshot_missing" not in off
        assert off["clip"] == "c.mp4"  # the event itself still names its clip
        assert _auth(server, "/clips/c.mp4")[0] == 404


def test_clips_and_snapshots_of_a_moved_folder_are_linked_and_served(
    files: dict[str, Path],  # noqa: F811
) -> None:
    """A reload moved both folders: the earlier events' files stay in the old ones, where the
    page's links must still lead; a file in neither is marked, not linked."""
    moved = files["root"] / "moved"
    moved.mkdir()
    recent = RecentEvents()
    recent.send(_event(1, snapshot=str(files["snapshots"] / "a.jpg"), clip="c.mp4"))
    recent.send(_event(2, snapshot=str(files["snapshots"] / "gone.jpg"), clip="gone.mp4"))
    folders = {
        "snapshots": [str(moved), str(files["snapshots"])],
        "clips": [str(moved), str(files["clips"])],
    }
    app = _app(token=TOKEN, events=recent.latest, folders=lambda: folders, recording=lambda: "")
    with serving(app) as server:
        gone, kept = json.loads(_auth(server, "/api/events")[2])["events"]
        assert kept["clip_url"] == "/clips/c.mp4" and kept["snapshot_url"] == "/snapshots/a.jpg"
        assert _auth(server, "/clips/c.mp4")[2] == (files["clips"] / "c.mp4").read_bytes()
        assert _auth(server, "/snapshots/a.jpg")[0] == 200
        assert gone["clip_url"] == "" and gone["clip_missing"] is True
        assert gone["snapshot_missing"] is True and "snapshot_url" not in gone
        (moved / "c.mp4").write_bytes(b"newer")  # the same name in the new folder comes first
        assert _auth(server, "/clips/c.mp4")[2] == b"newer"
