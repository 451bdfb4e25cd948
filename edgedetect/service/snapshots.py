"""Annotated JPEG snapshots with retention by total size and file count (oldest deleted first).

Files are written to a temporary name and renamed, so a crash or a full disk never leaves a
truncated JPEG behind. Before each one the oldest are deleted while the disk has less than
`min_free_bytes` free. On ENOSPC the store frees its own oldest files once and retries, so
new events win over old ones; if that still fails the error propagates to be logged and
counted by the caller while detection carries on.

Files are named `<utc_stamp>_person<track id>.jpg` by `retention.SNAPSHOTS`, the same naming the
retention counts and deletes by: other files in the folder are never touched. A folder deleted
while the service runs is created again by the next snapshot.
"""

from __future__ import annotations

import errno
import threading
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from edgedetect.images import write_whole
from edgedetect.service.config import mb_to_bytes
from edgedetect.service.retention import SNAPSHOTS, FolderRetention


class SnapshotStore:
    """Keeps `dir` under `max_bytes` and `max_files`; names sort by time."""

    def __init__(
        self,
        directory: str | Path,
        max_bytes: int,
        max_files: int,
        quality: int = 85,
        min_free_bytes: int = 0,
    ) -> None:
        self.dir = Path(directory)
        self.quality = quality
        self.retention = FolderRetention(
            self.dir, SNAPSHOTS, max_bytes, max_files, min_free_bytes=min_free_bytes
        )
        self._lock = threading.Lock()
        self.latest: Path | None = None

    @classmethod
    def from_config(cls, section: Any) -> SnapshotStore:
        """From a validated `[snapshots]` section."""
        return cls(
            section.dir,
            mb_to_bytes(section.max_mb),
            section.max_files,
            section.quality,
            mb_to_bytes(section.min_free_mb),
        )

    @property
    def deleted(self) -> int:
        return self.retention.deleted

    def save(self, image_bgr: np.ndarray, wall_time: float, track_id: int) -> Path:
        """Encode and store `image_bgr` as the snapshot of track `track_id` at `wall_time`
        (`<utc_stamp>_person<track_id>.jpg`); returns the path."""
        name = SNAPSHOTS.name(wall_time, track_id)
        ok, buf = cv2.imencode(".jpg", image_bgr, [cv2.IMWRITE_JPEG_QUALITY, int(self.quality)])
        if not ok:
            raise ValueError(f"JPEG encoding failed for snapshot {name}")
        data = buf.tobytes()
        with self._lock:
            kept = self.retention
            kept.ensure_dir()  # scans the first time; makes the folder again if it was deleted
            kept.make_room(len(data))  # min_free_mb: the oldest go before the disk runs low
            path = self.dir / name
            try:
                self._write(path, data)
            except OSError as e:
                if e.errno != errno.ENOSPC or not len(kept):
                    raise
                kept.free(2 * len(data))  # disk full: make room from our own oldest files once
                self._write(path, data)
            kept.add(path, len(data))
            self.latest = path
            return path

    @staticmethod
    def _write(path: Path, data: bytes) -> None:
        write_whole(path, data, SNAPSHOTS.temp_path(path))

    @property
    def total_bytes(self) -> int:
        return self.retention.total_bytes

    def __len__(self) -> int:
        return len(self.retention)
