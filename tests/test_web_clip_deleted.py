"""A clip that was saved and later deleted by the retention (`[clips] max_files`, `max_mb`): the
page said "clip not saved (see the log)" of it, while the log said "clips: saved ..." and the
README promises such a file is marked deleted. Found by running the service for a while with
`max_files = 3`: every older event said its clip was not saved. /api/events now marks it
`clip_deleted` (the page: "clip deleted"); a clip the recorder lost keeps `clip_missing` alone
("not saved"). The real service on data/sample.mp4 looped (a person in two episodes of each
pass), clips kept to one file.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_service_support import RunningService, poll, write_config
from test_service_zones import DEFAULT_MODEL, SAMPLE

from edgedetect.service.clip_recorder import publish
from edgedetect.service.retention import CLIPS, FolderRetention


def test_a_clip_the_retention_deleted_is_marked_deleted_not_unsaved(tmp_path: Path) -> None:
    if not DEFAULT_MODEL.exists():
        pytest.skip(f"project model {DEFAULT_MODEL} not built yet")
    clips = tmp_path / "clips"
    cfg = write_config(
        tmp_path,
        source={"spec": f"file:{SAMPLE}", "loop": True},
        model={"path": "", "labels": ""},
        snapshots={"enabled": False},
        clips={
            "enabled": True,
            "dir": str(clips),
            "max_files": 1,
            "min_free_mb": 0,
            "pre_s": 0.5,
            "post_s": 0.5,
        },
    )
    with RunningService(cfg) as rs:

        def named() -> list[str]:
            events = json.loads(rs.get("/api/events?limit=200")[2])["events"]
            return sorted({e["clip"] for e in events if e.get("clip")})

        # two clips named by events, the first of them gone from the folder (max_files 1)
        assert poll(lambda: len(named()) >= 2 and not (clips / named()[0]).exists(), 90)
        first = named()[0]
        events = json.loads(rs.get("/api/events?limit=200")[2])["events"]
    of_first = [e for e in events if e.get("clip") == first]
    assert of_first and all(e["clip_url"] == "" for e in of_first)
    assert all(e.get("clip_deleted") is True for e in of_first), of_first[0]


def test_a_clip_the_recorder_lost_is_still_said_not_saved(tmp_path: Path) -> None:
    """The other side: a clip that never made it (here: a part file with no frames) is not
    called deleted."""
    from edgedetect.service.webapp import HttpApp

    folder = tmp_path / "clips"
    folder.mkdir()
    name = CLIPS.name(1_800_000_000.0)
    publish(FolderRetention(folder, CLIPS, 1 << 30, 10), name, "", lambda kind: None, str)
    event = {"type": "person_entered", "clip": name, "clip_url": "/clips/" + name}
    app = HttpApp(
        lambda: (True, {}),
        lambda: b"",
        lambda: None,
        events=lambda limit: [dict(event)],
        folders=lambda: {"clips": [str(folder)]},
    )
    (got,) = json.loads(app.respond("/api/events").body)["events"]
    assert got["clip_missing"] is True and "clip_deleted" not in got
