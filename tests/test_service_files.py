"""The files the service writes while it runs, against real folders in tmp_path: retention touches
only the service's own snapshots and clips, a deleted folder is made again, an events file that is
deleted or moved away is written anew, and a FIFO at the events path is refused without blocking.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest
from test_clip_recorder import NO_DETS, frame, recorder
from test_service_support import poll

from edgedetect.service.clip_recorder import ClipRecorder
from edgedetect.service.events import Event, JsonlWriter, make_event
from edgedetect.service.retention import CLIPS, SNAPSHOTS, FolderRetention
from edgedetect.service.snapshots import SnapshotStore
from edgedetect.service.tracker import TrackEvent

WALL0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z
# the user's own files, in the folder the config names; a few look almost like the service's
USER_FILES = (
    "astronaut.jpg",
    "camera.jpg",
    "notes.mp4",
    "holiday_person1.jpg",
    "20260101_clip.mp4",
    ".notes.mp4.part.mp4",
    ".camera.jpg.tmp",
)


def event(i: int) -> Event:
    te = TrackEvent("person_entered", i, (10.0, 20.0, 110.0, 220.0), 0.81, 1)
    return make_event(te, WALL0 + i, frame_id=i)


def user_folder(d: Path) -> dict[str, bytes]:
    d.mkdir(parents=True, exist_ok=True)
    contents = {}
    for i, name in enumerate(USER_FILES):
        data = f"the user's {name}, not the service's".encode() * (i + 1)
        (d / name).write_bytes(data)
        old = WALL0 - 86400 * (10 - i)  # older than anything the service writes
        os.utime(d / name, (old, old))
        contents[name] = data
    return contents


def user_files_intact(d: Path, contents: dict[str, bytes]) -> bool:
    return all((d / n).exists() and (d / n).read_bytes() == b for n, b in contents.items())


def snap_image() -> np.ndarray:
    return np.full((48, 64, 3), 128, np.uint8)


def episodes(n: int) -> list[int]:
    """People per frame: `n` short episodes of one person, then an empty scene."""
    return ([0] * 5 + [1] * 5) * n + [0] * 10


def play(rec: ClipRecorder, people: list[int], start: int = 0) -> list[str]:
    names = [rec.push(frame(start + i), NO_DETS, p) for i, p in enumerate(people)]
    return [n for n in dict.fromkeys(names) if n]


# ----------------------------------------------------------------------------- 1: own files only
def test_names_the_writers_give_are_the_names_retention_owns(tmp_path: Path) -> None:
    snap = SNAPSHOTS.name(WALL0 + 0.25, 12)
    clip = CLIPS.name(WALL0 + 0.25)
    assert (snap, clip) == ("20260101T000000.250Z_person12.jpg", "20260101T000000.250Z_clip.mp4")
    assert SNAPSHOTS.owns(snap) and CLIPS.owns(clip)
    assert not SNAPSHOTS.owns(clip) and not CLIPS.owns(snap)
    assert not any(SNAPSHOTS.owns(n) or CLIPS.owns(n) for n in USER_FILES)
    assert SNAPSHOTS.is_leftover(SNAPSHOTS.temp_path(tmp_path / snap).name)
    assert CLIPS.is_leftover(CLIPS.temp_path(tmp_path / clip).name)
    # what the writers really produce
    store = SnapshotStore(tmp_path / "s", max_bytes=10**9, max_files=10)
    assert SNAPSHOTS.owns(store.save(snap_image(), WALL0, 3).name)
    rec = recorder(tmp_path / "c", pre_s=0.0, post_s=0.0)
    names = play(rec, episodes(1))
    rec.close()
    assert names and all(CLIPS.owns(n) for n in names)
    assert [p.name for p in (tmp_path / "c").iterdir()] == names


def test_snapshot_retention_never_deletes_the_users_files(tmp_path: Path) -> None:
    d = tmp_path / "shared"
    user = user_folder(d)
    store = SnapshotStore(d, max_bytes=10**9, max_files=2)
    saved = [store.save(snap_image(), WALL0 + i, i) for i in range(4)]
    assert user_files_intact(d, user)
    assert sorted(p.name for p in d.iterdir()) == sorted(
        [*USER_FILES, *(p.name for p in saved[-2:])]
    )
    assert len(store) == 2 and store.deleted == 2
    # a later start indexes the folder again: still only its own files count
    store = SnapshotStore(d, max_bytes=10**9, max_files=1)
    store.save(snap_image(), WALL0 + 10, 10)
    assert user_files_intact(d, user) and len(store) == 1


def test_clip_retention_never_deletes_the_users_files(tmp_path: Path) -> None:
    d = tmp_path / "shared"
    user = user_folder(d)
    rec = recorder(d, max_files=1, pre_s=0.0, post_s=0.0)
    names = play(rec, episodes(3))
    rec.close()
    assert len(names) == 3 and rec.saved == 3
    assert user_files_intact(d, user)
    assert sorted(p.name for p in d.iterdir()) == sorted([*USER_FILES, names[-1]])


def test_snapshots_and_clips_sharing_the_users_folder(tmp_path: Path) -> None:
    d = tmp_path / "shared"
    user = user_folder(d)
    store = SnapshotStore(d, max_bytes=10**9, max_files=2)
    rec = recorder(d, max_files=1, pre_s=0.0, post_s=0.0)
    snaps = [store.save(snap_image(), WALL0 + i, i) for i in range(3)]
    names = play(rec, episodes(2))
    rec.close()
    assert user_files_intact(d, user)
    ours = {p.name for p in d.iterdir()} - set(USER_FILES)
    assert ours == {snaps[1].name, snaps[2].name, names[-1]}  # each keeps its own, by its limits


def test_retention_only_counts_and_deletes_its_own_names(tmp_path: Path) -> None:
    user = user_folder(tmp_path)
    kept = FolderRetention(tmp_path, SNAPSHOTS, max_bytes=1, max_files=0)
    kept.scan()  # limits that allow nothing: still nothing of the user's goes
    assert len(kept) == 0 and kept.deleted == 0 and user_files_intact(tmp_path, user)
    with pytest.raises(ValueError):
        kept.add(tmp_path / "camera.jpg", 10)
    assert (tmp_path / "camera.jpg").exists()


# ----------------------------------------------------------------------------- 3: folder deleted
def test_deleted_snapshot_folder_is_made_again(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    d = tmp_path / "var" / "snaps"
    store = SnapshotStore(d, max_bytes=10**9, max_files=10)
    store.save(snap_image(), WALL0, 1)
    shutil.rmtree(tmp_path / "var")
    with caplog.at_level(logging.WARNING, logger="edgedetect.retention"):
        p = store.save(snap_image(), WALL0 + 1, 2)
    assert p.exists() and p.parent == d
    assert [x.name for x in d.iterdir()] == [p.name] and len(store) == 1
    assert f"folder {d} has gone" in caplog.text
    # a real failure is still an error: a file where the folder should be
    shutil.rmtree(d)
    d.write_text("not a folder")
    with pytest.raises(OSError):
        store.save(snap_image(), WALL0 + 2, 3)
    d.unlink()
    assert store.save(snap_image(), WALL0 + 3, 4).exists()


def test_deleted_clips_folder_is_made_again(tmp_path: Path) -> None:
    d = tmp_path / "var" / "clips"
    rec = recorder(d, pre_s=0.0, post_s=0.0)
    try:
        first = play(rec, episodes(1))
        assert poll(lambda: rec.saved == 1, 20) and (d / first[0]).exists()
        shutil.rmtree(tmp_path / "var")  # while the recorder runs
        later = play(rec, episodes(2), start=100)
    finally:
        rec.close(10.0)
    assert rec.failed == 0 and rec.saved == 3
    assert sorted(p.name for p in d.iterdir()) == later


# ----------------------------------------------------------------------------- 2: events file gone
@pytest.mark.parametrize("how", ["deleted", "renamed"])
def test_events_file_deleted_or_moved_away_is_written_anew(
    tmp_path: Path, how: str, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "events.jsonl"
    w = JsonlWriter(path, max_bytes=10**7, backups=2)
    w.send(event(1))
    w.send(event(2))
    moved = tmp_path / "events.jsonl.old"
    if how == "deleted":
        path.unlink()
    else:
        path.rename(moved)  # logrotate without copytruncate
    with caplog.at_level(logging.INFO, logger="edgedetect.linefile"):
        for i in (3, 4, 5):
            w.send(event(i))
    w.close()
    assert [json.loads(x)["track_id"] for x in path.read_text().splitlines()] == [3, 4, 5]
    if how == "renamed":
        assert [json.loads(x)["track_id"] for x in moved.read_text().splitlines()] == [1, 2]
    assert w.lost == 0
    assert caplog.text.count("was deleted or moved away") == 1  # logged once, not per event


def test_events_file_replaced_by_another_file_is_followed(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    w = JsonlWriter(path, max_bytes=10**7, backups=2)
    w.send(event(1))
    tmp = tmp_path / "new"
    tmp.write_text("")
    os.replace(tmp, path)
    w.send(event(2))
    w.close()
    assert [json.loads(x)["track_id"] for x in path.read_text().splitlines()] == [2]


# ----------------------------------------------------------------------------- 4: FIFO
def send_in_thread(w: JsonlWriter, timeout: float = 5.0) -> BaseException | None:
    """Send one event from another thread; fail the test if it does not return in time."""
    out: list[BaseException | None] = []

    def run() -> None:
        try:
            w.send(event(1))
            out.append(None)
        except BaseException as e:
            out.append(e)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(timeout)
    if t.is_alive():
        # let the stuck open() finish (a reader appears) so the thread does not outlive the test
        fd = os.open(w.path, os.O_RDONLY | os.O_NONBLOCK)
        t.join(5)
        os.close(fd)
        pytest.fail(f"sending an event to {w.path} blocked for {timeout} s")
    return out[0]


def test_fifo_without_reader_is_refused_without_blocking(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    os.mkfifo(path)
    w = JsonlWriter(path)
    err = send_in_thread(w)
    assert isinstance(err, OSError)
    assert str(err) == (
        f"events file {path} is not a regular file (a FIFO); point [events] jsonl at a file"
    )
    assert w.lost == 1
    path.unlink()  # fixed: a file there now
    assert send_in_thread(w) is None
    assert json.loads(path.read_text())["track_id"] == 1


def test_fifo_with_a_reader_is_refused_too(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    os.mkfifo(path)
    reader = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        err = send_in_thread(JsonlWriter(path))
        assert isinstance(err, OSError) and "is not a regular file (a FIFO)" in str(err)
        assert os.read(reader, 100) == b""  # nothing was written into the pipe
    finally:
        os.close(reader)


def test_events_folder_replaced_by_a_file_is_named_once_with_the_fix(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The events folder replaced by a regular file logged "jsonl output failed for ...: [Errno
    17] File exists: '.../state'" for each event: no word that a file is in the folder's place or
    what to do. Now one line per spell names both, and the first event after the fix is written."""
    from edgedetect.service.config import load_config
    from edgedetect.service.metrics import ServiceMetrics
    from edgedetect.service.outputset import Outputs

    state = tmp_path / "state"
    path = state / "events.jsonl"
    config = tmp_path / "config.toml"
    config.write_text(f'[events]\njsonl = "{path}"\nlog = false\n[snapshots]\nenabled = false\n')
    metrics = ServiceMetrics()
    outputs = Outputs.from_config(load_config(config, check_files=False), metrics)
    outputs.dispatch(event(1))
    shutil.rmtree(state)
    state.write_text("not a folder\n")
    with caplog.at_level(logging.INFO):
        for i in (2, 3, 4):
            outputs.dispatch(event(i))
        errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
        assert errors == [
            f"jsonl output: events file {path}: {state} is a file, not a folder; move that file "
            "away (the folder is made again) or point [events] jsonl at another folder; events "
            "are lost until then (counted)"
        ]
        state.unlink()
        outputs.dispatch(event(5))
    outputs.close()
    assert [json.loads(x)["track_id"] for x in path.read_text().splitlines()] == [5]
    assert "jsonl output works again" in caplog.text
    assert 'edgedetect_output_dropped_total{output="jsonl"} 3.0' in metrics.render().decode()
