"""`[snapshots]` and `[clips] min_free_mb`: the service's own oldest files go before their disk
runs low, so a small SD card never fills up under the rest of the system (journald, apt, the
events file). Before, they were deleted only once a write had already failed for want of space
(ENOSPC), i.e. after the card was full. The disk is a stand-in here (`free_bytes` of the
retention module reports what the test says); the files, the retention and the stores are real.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
from test_clip_recorder import FPS, NO_DETS, frame

from edgedetect.errors import ConfigError
from edgedetect.service import retention
from edgedetect.service.clip_recorder import ClipRecorder
from edgedetect.service.config import MIN_FREE_MB, validate
from edgedetect.service.retention import CLIPS, FolderRetention
from edgedetect.service.snapshots import SnapshotStore

MB = 1 << 20
WALL0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z


class Disk:
    """A disk with `free` bytes besides the files of `folder`: deleting them frees their size."""

    def __init__(self, folder: Path, free: int) -> None:
        self.folder, self.free = folder, free
        self.start = self._ours()

    def _ours(self) -> int:
        return sum(p.stat().st_size for p in self.folder.iterdir() if p.is_file())

    def __call__(self, directory: Path) -> int:
        return self.free + self.start - self._ours()


def _low(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "min_free_mb" in r.getMessage()]


def test_the_oldest_files_go_until_the_disk_has_min_free_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    paths = [tmp_path / CLIPS.name(WALL0 + 60 * i) for i in range(5)]
    for p in paths:
        p.write_bytes(b"\0" * MB)
    monkeypatch.setattr(retention, "free_bytes", Disk(tmp_path, 10 * MB))
    kept = FolderRetention(tmp_path, CLIPS, 10**12, 1000, min_free_bytes=13 * MB)
    kept.scan()
    with caplog.at_level(logging.WARNING, logger="edgedetect.retention"):
        kept.make_room()
        kept.make_room()  # room again: nothing more goes, nothing more is said
    assert [p.exists() for p in paths] == [False, False, False, True, True]
    (line,) = _low(caplog)
    assert f"{tmp_path}" in line and "[clips] min_free_mb = 13" in line and "3 oldest" in line


def test_a_snapshot_makes_room_before_it_is_written_and_is_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = SnapshotStore(tmp_path, 10**12, 1000, min_free_bytes=MB)
    image = np.random.default_rng(0).integers(0, 255, (240, 320, 3), np.uint8)
    old = [store.save(image, WALL0 + i, i) for i in range(4)]
    size = old[0].stat().st_size
    monkeypatch.setattr(retention, "free_bytes", Disk(tmp_path, MB - 2 * size))
    new = store.save(image, WALL0 + 10, 10)
    assert new.exists() and [p.exists() for p in old] == [False, False, True, True]


def test_a_disk_filled_by_others_keeps_the_newest_file_and_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    store = SnapshotStore(tmp_path, 10**12, 1000, min_free_bytes=100 * MB)
    image = np.zeros((120, 160, 3), np.uint8)
    first = store.save(image, WALL0, 1)
    monkeypatch.setattr(retention, "free_bytes", lambda directory: 5 * MB)  # never enough
    with caplog.at_level(logging.WARNING, logger="edgedetect.retention"):
        second = store.save(image, WALL0 + 1, 2)
        third = store.save(image, WALL0 + 2, 3)
    assert not first.exists() and not second.exists() and third.exists()
    (line,) = _low(caplog)
    assert "none of them is left (other files fill it)" in line and "[snapshots]" in line


def test_a_clip_opening_on_a_low_disk_deletes_the_oldest_clip(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    d = tmp_path / "clips"
    d.mkdir()
    old = d / CLIPS.name(WALL0 - 3600)
    old.write_bytes(b"\0" * MB)
    monkeypatch.setattr(retention, "free_bytes", Disk(d, int(MIN_FREE_MB * MB) - MB // 2))
    section = {"dir": str(d), "pre_s": 0.5, "post_s": 0.5, "fps": FPS, "width": 160}
    rec = ClipRecorder.from_config(validate({"clips": section}, "<test>").clips)
    for i, people in enumerate([0] * 5 + [1] * 10 + [0] * 15):
        rec.push(frame(i), NO_DETS, people)
    rec.close(timeout=30)
    assert rec.saved == 1 and not old.exists()


def test_min_free_mb_is_checked_and_defaults_to_256() -> None:
    cfg = validate({}, "<test>")
    assert cfg.snapshots.min_free_mb == cfg.clips.min_free_mb == MIN_FREE_MB == 256
    assert validate({"clips": {"min_free_mb": 0}}, "<test>").clips.min_free_mb == 0
    with pytest.raises(ConfigError, match=r"\[snapshots\] min_free_mb"):
        validate({"snapshots": {"min_free_mb": -1}}, "<test>")
