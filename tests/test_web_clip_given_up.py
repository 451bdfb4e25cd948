"""A clip whose final rename failed (the clips folder turned read-only mid-clip, as a file
system remounted read-only after an SD card error does): the recorder logged it lost and
counted it failed, but could not remove its hidden part file either, and /api/events marked the
clip "clip_recording" for as long as that part file stayed, so the page said "recording" for
ever. Once the recorder has given up on a clip, the page now says it was not saved."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_clip_recorder import NO_DETS, frame, recorder
from test_http_hardening import _app, serving
from test_http_web import TOKEN, _auth, _event

from edgedetect.service.recent import RecentEvents
from edgedetect.service.retention import CLIPS


@contextlib.contextmanager
def frozen(folder: Path) -> Iterator[None]:
    """No file can be created, renamed or removed in `folder` (open files still take writes):
    immutable for root, whom permissions do not stop; read-only for anyone else."""
    if os.geteuid() == 0:
        res = subprocess.run(["chattr", "+i", str(folder)], capture_output=True, text=True)
        if res.returncode != 0:
            pytest.skip(f"cannot make {folder} immutable here: {res.stderr.strip()}")
        undo = ["chattr", "-i", str(folder)]
    else:
        folder.chmod(0o555)
        undo = ["chmod", "755", str(folder)]
    try:
        yield
    finally:
        subprocess.run(undo, check=True)


def test_a_clip_the_recorder_gave_up_on_is_not_shown_as_recording(tmp_path: Path) -> None:
    d = tmp_path / "clips"
    rec = recorder(d, pre_s=0.5, post_s=0.5)
    names = [rec.push(frame(i), NO_DETS, n) for i, n in enumerate([0] * 5 + [1] * 10)]
    name = names[5]
    part = CLIPS.temp_path(d / name)
    deadline = time.monotonic() + 30  # the encoder thread opens the part file (upper bound)
    while not part.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert part.exists()
    recent = RecentEvents()
    recent.send(_event(1, clip=name))
    folders = {"snapshots": [str(tmp_path / "snaps")], "clips": [str(d)]}
    app = _app(
        token=TOKEN, events=recent.latest, folders=lambda: folders, recording=lambda: rec.clip
    )
    with serving(app) as server, frozen(d):
        (during,) = json.loads(_auth(server, "/api/events")[2])["events"]
        assert during["clip_recording"] is True and "clip_missing" not in during
        for i in range(15, 30):  # nobody: the episode ends, the encoder finishes the clip
            rec.push(frame(i), NO_DETS, 0)
        rec.close(timeout=30)
        assert (rec.saved, rec.failed) == (0, 1), "the rename did not fail"
        assert part.exists(), "the part file was removed: this is not the case under test"
        (after,) = json.loads(_auth(server, "/api/events")[2])["events"]
    assert after["clip_url"] == "" and after["clip_missing"] is True, after
    assert "clip_recording" not in after, after


def test_a_part_file_an_earlier_run_left_is_not_shown_as_recording(tmp_path: Path) -> None:
    """After a restart the page's events come back from events.jsonl; a part file the last run
    left in a read-only folder (nothing could rename or remove it) was taken for a clip being
    finished, because only this process's own give-ups were known: "recording" for ever."""
    d = tmp_path / "clips"
    d.mkdir()
    name = CLIPS.name(time.time() - 3600)
    CLIPS.temp_path(d / name).write_bytes(b"\0" * 1000)  # the last run's, never to be renamed
    recent = RecentEvents()
    recent.send(_event(1, clip=name))  # as read back from [events] jsonl at start
    folders = {"snapshots": [str(tmp_path / "snaps")], "clips": [str(d)]}
    app = _app(token=TOKEN, events=recent.latest, folders=lambda: folders, recording=lambda: "")
    with serving(app) as server:
        (event,) = json.loads(_auth(server, "/api/events")[2])["events"]
    assert event["clip_url"] == "" and event["clip_missing"] is True, event
    assert "clip_recording" not in event, event
