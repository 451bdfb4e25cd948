"""Annotated JPEG snapshots with retention by total size and file count (oldest deleted first).

Files are written to a temporary name and renamed, so a crash or a full disk never leaves a
truncated JPEG behind. On ENOSPC the store frees its own oldest files once and retries, so
new events win over old ones; if that still fails the error propagates to be logged and
counted by the caller while detection carries on.
"""

from __future__ import annotations

import errno
import logging
import os
import threading
from collections import deque
from pathlib import Path
from typing import Any

import cv2
import numpy as np

log = logging.getLogger("edgedetect.snapshots")


class SnapshotStore:
    """Keeps `dir` under `max_bytes` and `max_files`; names sort by time."""

    def __init__(self, directory: str | Path, max_bytes: int, max_files: int, quality: int = 85) -> None:
        self.dir = Path(directory)
        self.max_bytes = max_bytes
        self.max_files = max_files
        self.quality = quality
        self.deleted = 0
        self._lock = threading.Lock()
        self._files: deque[tuple[Path, int]] = deque()
        self._total = 0
        self._scanned = False
        self.latest: Path | None = None

    @classmethod
    def from_config(cls, section: Any) -> SnapshotStore:
        """From a validated `[snapshots]` section."""
        return cls(section.dir, int(section.max_mb * 1024 * 1024), section.max_files, section.quality)

    def _scan(self) -> None:
        """Index existing snapshots once, oldest first, so retention covers earlier runs too."""
        self.dir.mkdir(parents=True, exist_ok=True)
        entries = []
        for p in self.dir.glob("*.jpg"):
            try:
                st = p.stat()
            except OSError:
                continue
            entries.append((st.st_mtime, p.name, p, st.st_size))
        entries.sort()
        self._files = deque((p, size) for _, _, p, size in entries)
        self._total = sum(size for _, size in self._files)
        for tmp in self.dir.glob(".*.jpg.tmp"):
            tmp.unlink(missing_ok=True)
        self._scanned = True
        self._enforce()

    def _delete_oldest(self) -> bool:
        if not self._files:
            return False
        p, size = self._files.popleft()
        self._total -= size
        try:
            p.unlink()
        except FileNotFoundError:
            pass
        except OSError as e:
            log.warning("cannot delete old snapshot %s: %s", p, e)
        self.deleted += 1
        return True

    def _enforce(self) -> None:
        while self._files and (self._total > self.max_bytes or len(self._files) > self.max_files):
            self._delete_oldest()

    def save(self, image_bgr: np.ndarray, name: str) -> Path:
        """Encode and store `image_bgr` as `<name>.jpg`; returns the path."""
        ok, buf = cv2.imencode(".jpg", image_bgr, [cv2.IMWRITE_JPEG_QUALITY, int(self.quality)])
        if not ok:
            raise ValueError(f"JPEG encoding failed for snapshot {name}")
        data = buf.tobytes()
        with self._lock:
            if not self._scanned:
                self._scan()
            path = self.dir / f"{name}.jpg"
            try:
                self._write(path, data)
            except OSError as e:
                if e.errno != errno.ENOSPC or not self._files:
                    raise
                # Disk full: make room from our own oldest files (up to the new file's size) once.
                freed = 0
                while freed < 2 * len(data) and self._files:
                    freed += self._files[0][1]
                    self._delete_oldest()
                self._write(path, data)
            self._files.append((path, len(data)))
            self._total += len(data)
            self._enforce()
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
        return self._total

    def __len__(self) -> int:
        return len(self._files)
