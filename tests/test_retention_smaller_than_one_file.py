"""`[clips] max_mb` (or `[snapshots] max_mb`) smaller than one file: the retention deleted each
new file right after it was saved, so the folder stayed empty while the log said "saved" and
every event's clip or snapshot was gone. Now the newest file (the one just written) is never
deleted, the limit holds for the others, and one warning (not one per file) says what to raise."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import pytest
from test_clip_recorder import FPS, NO_DETS, frame

from edgedetect.service.clip_recorder import ClipRecorder
from edgedetect.service.retention import CLIPS, SNAPSHOTS, FolderRetention
from edgedetect.service.snapshots import SnapshotStore

WALL0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "smaller than one" in r.getMessage()]


def test_the_file_just_written_is_kept_and_the_limit_holds_for_the_others(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    kept = FolderRetention(tmp_path, CLIPS, max_bytes=1000, max_files=100)
    kept.scan()
    paths = [tmp_path / CLIPS.name(WALL0 + 60 * i) for i in range(3)]
    with caplog.at_level(logging.WARNING, logger="edgedetect.retention"):
        for p in paths:
            p.write_bytes(b"\0" * 5000)
            kept.add(p, 5000)
            assert p.exists(), f"{p.name} was deleted right after it was saved"
    assert [p.exists() for p in paths] == [False, False, True]
    assert len(kept) == 1 and kept.total_bytes == 5000 and kept.deleted == 2
    (line,) = _warnings(caplog)  # once, not once per file
    assert "[clips] max_mb" in line and "raise [clips] max_mb" in line, line


def test_a_restart_keeps_the_newest_file_too(tmp_path: Path) -> None:
    old, new = (tmp_path / CLIPS.name(WALL0 + 60 * i) for i in range(2))
    for i, p in enumerate((old, new)):
        p.write_bytes(b"\0" * 5000)
        os.utime(p, (WALL0 + i, WALL0 + i))
    kept = FolderRetention(tmp_path, CLIPS, max_bytes=1000, max_files=100)
    kept.scan()
    assert not old.exists() and new.exists() and len(kept) == 1


def test_snapshots_max_mb_below_one_snapshot_keeps_the_newest(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    rng = np.random.default_rng(0)  # noise: a JPEG far above the 1 kB limit
    store = SnapshotStore(tmp_path, max_bytes=1024, max_files=1000)
    with caplog.at_level(logging.WARNING, logger="edgedetect.retention"):
        saved = [
            store.save(rng.integers(0, 255, (120, 160, 3), dtype=np.uint8), WALL0 + i, i)
            for i in range(3)
        ]
    assert saved[-1].stat().st_size > 1024
    assert [p.exists() for p in saved] == [False, False, True]
    (line,) = _warnings(caplog)
    assert "[snapshots] max_mb" in line, line
    assert sorted(SNAPSHOTS.owns(p.name) for p in tmp_path.iterdir()) == [True]


def test_a_clip_larger_than_clips_max_mb_is_kept(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    rec = ClipRecorder(
        tmp_path,
        pre_s=0.5,
        post_s=0.5,
        max_s=60.0,
        fps=FPS,
        width=160,
        annotated=False,
        max_bytes=1,  # far below one clip (the config's floor, 1 MiB, is below a long one)
        max_files=100,
        queue_frames=1000,
    )
    with caplog.at_level(logging.WARNING, logger="edgedetect.retention"):
        names = [
            rec.push(frame(i), NO_DETS, n) for i, n in enumerate([0] * 5 + [1] * 10 + [0] * 10)
        ]
        rec.close(timeout=30)
    assert rec.saved == 1 and rec.failed == 0
    assert (tmp_path / names[5]).is_file(), "the clip was deleted right after it was saved"
    (line,) = _warnings(caplog)
    assert "[clips] max_mb" in line, line
