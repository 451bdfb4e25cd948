"""Annotated JPEG snapshots with retention by total size and file count (oldest deleted first).

Files are written to a temporary name and renamed, so a crash or a full disk never leaves a
truncated JPEG behind. On ENOSPC the store frees its own oldest files once and retries, so
new events win over old ones; if that still fails the error propagates to be logged and
counted by the caller while detection carries on.
"""

from __future__ import annotations

import errno
import os
import threading
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from edgedetect.service.retention import FolderRetention


class SnapshotStore:
    """Keeps `dir` under `max_bytes` and `max_files`; names sort by time."""

    def __init__(
        self, directory: str | Path, max_bytes: int, max_files: int, quality: int = 85
    ) -> None:
        self.dir = Path(directory)
        self.quality = quality
        self.retention = FolderRetention(
            self.dir, ".jpg", max_bytes, max_files, leftovers=".*.jpg.tmp"
        )
        self._lock = threading.Lock()
        self.latest: Path | None = None

    @classmethod
    def from_config(cls, section: Any) -> SnapshotStore:
        """From a validated `[snapshots]` section."""
        return cls(
            section.dir, int(section.max_mb * 1024 * 1024), section.max_files, section.quality
        )

    @property
    def deleted(self) -> int:
        return self.retention.deleted

    def save(self, image_bgr: np.ndarray, name: str) -> Path:
        """Encode and store `image_bgr` as `<name>.jpg`; returns the path."""
        ok, buf = cv2.imencode(".jpg", image_bgr, [cv2.IMWRITE_JPEG_QUALITY, int(self.quality)])
        if not ok:
            raise ValueError(f"JPEG encoding failed for snapshot {name}")
        data = buf.tobytes()
        with self._lock:
            kept = self.retention
            if not kept.scanned:
                kept.scan()
            path = self.dir / f"{name}.jpg"
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
        tmp = path.with_name(f".{path.name}.tmp")
        try:
            with open(tmp, "wb") as fh:
                fh.write(data)
            os.replace(tmp, path)
        except OSError:
            tmp.unlink(missing_ok=True)
            raise

    @property
    def total_bytes(self) -> int:
        return self.retention.total_bytes

    def __len__(self) -> int:
        return len(self.retention)
