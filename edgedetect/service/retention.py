"""Size and count retention for one output folder (snapshots, clips): oldest file deleted first.

One implementation for every folder the service fills, so the rules (what counts, what is
deleted first, what happens to leftovers of a crash) are the same everywhere. Not thread-safe:
the owner (SnapshotStore, ClipRecorder's encoder) serialises calls.
"""

from __future__ import annotations

import logging
from collections import deque
from pathlib import Path

log = logging.getLogger("edgedetect.retention")


class FolderRetention:
    """Index of `*<suffix>` files in `directory` (hidden names excluded), kept under the limits.

    `leftovers` is a glob of temporary files a crash may have left; the first `scan()` removes
    them, because no writer of this process can still be writing them.
    """

    def __init__(
        self,
        directory: str | Path,
        suffix: str,
        max_bytes: int,
        max_files: int,
        leftovers: str = "",
    ) -> None:
        self.dir = Path(directory)
        self.suffix = suffix
        self.max_bytes = max_bytes
        self.max_files = max_files
        self.leftovers = leftovers
        self.deleted = 0
        self.scanned = False
        self._files: deque[tuple[Path, int]] = deque()
        self._total = 0

    def scan(self) -> None:
        """Create the folder, index files of earlier runs oldest first, drop leftovers, enforce."""
        self.dir.mkdir(parents=True, exist_ok=True)
        entries = []
        for p in self.dir.glob(f"*{self.suffix}"):
            if p.name.startswith("."):
                continue
            try:
                st = p.stat()
            except OSError:
                continue
            entries.append((st.st_mtime, p.name, p, st.st_size))
        entries.sort()
        self._files = deque((p, size) for _, _, p, size in entries)
        self._total = sum(size for _, size in self._files)
        if self.leftovers:
            for tmp in self.dir.glob(self.leftovers):
                tmp.unlink(missing_ok=True)
        self.scanned = True
        self.enforce()

    def add(self, path: Path, size: int) -> None:
        """Count a file just written, then delete the oldest beyond the limits."""
        self._files.append((path, size))
        self._total += size
        self.enforce()

    def free(self, nbytes: int) -> None:
        """Delete own oldest files until `nbytes` are freed (a full disk: new files win)."""
        freed = 0
        while freed < nbytes and self._files:
            freed += self._files[0][1]
            self.delete_oldest()

    def delete_oldest(self) -> bool:
        if not self._files:
            return False
        p, size = self._files.popleft()
        self._total -= size
        try:
            p.unlink()
        except FileNotFoundError:
            pass
        except OSError as e:
            log.warning("cannot delete old file %s: %s", p, e)
        self.deleted += 1
        return True

    def enforce(self) -> None:
        while self._files and (self._total > self.max_bytes or len(self._files) > self.max_files):
            self.delete_oldest()

    @property
    def total_bytes(self) -> int:
        return self._total

    def __len__(self) -> int:
        return len(self._files)
