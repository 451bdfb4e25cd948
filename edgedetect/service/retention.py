"""Size and count retention for one output folder (snapshots, clips): oldest file deleted first.

One implementation for every folder the service fills, so the rules (what counts, what is
deleted first, what happens to leftovers of a crash) are the same everywhere. Not thread-safe:
the owner (SnapshotStore, ClipRecorder's encoder) serialises calls.

A folder may be shared with other files (the user's photos, another program's videos): only the
names the service itself gives its files (`OwnFiles`, which the writers use to name them) are
counted, and only those are ever deleted.
"""

from __future__ import annotations

import logging
import os
import re
from collections import deque
from dataclasses import dataclass
from pathlib import Path

from edgedetect.service.events import STAMP_PATTERN, utc_stamp

log = logging.getLogger("edgedetect.retention")


@dataclass(frozen=True)
class OwnFiles:
    """The names one writer gives its files, `<utc_stamp>_<label>[<number>]<suffix>`, each
    written first to the hidden `.<name><temp>`: the writer names files with `name()`, the
    retention counts and deletes only what `owns()` (and, after a crash, `is_leftover()`)."""

    label: str
    suffix: str
    temp: str
    numbered: bool = False

    def name(self, wall_time: float, number: int | None = None) -> str:
        """The file name for a file made at `wall_time` (`number`: the track id, if numbered)."""
        if self.numbered != (number is not None):
            raise ValueError(
                f"{self.label} file names {'need a' if self.numbered else 'take no'} number"
            )
        n = "" if number is None else str(int(number))
        return f"{utc_stamp(wall_time)}_{self.label}{n}{self.suffix}"

    def owns(self, filename: str) -> bool:
        """Whether `filename` is one `name()` gives (so the retention may count and delete it)."""
        n = r"\d+" if self.numbered else ""
        pattern = f"{STAMP_PATTERN}_{re.escape(self.label)}{n}{re.escape(self.suffix)}"
        return re.fullmatch(pattern, filename) is not None

    def temp_path(self, final: Path) -> Path:
        """The hidden file that becomes `final` once complete."""
        return final.with_name(f".{final.name}{self.temp}")

    def is_leftover(self, filename: str) -> bool:
        """Whether `filename` is the hidden temporary file of one of our names."""
        if not (filename.startswith(".") and filename.endswith(self.temp)):
            return False
        return self.owns(filename[1 : len(filename) - len(self.temp)])


# 20260101T120000.123Z_person3.jpg (track 3), written via .20260101T120000.123Z_person3.jpg.tmp
SNAPSHOTS = OwnFiles("person", ".jpg", temp=".tmp", numbered=True)
# 20260101T120000.123Z_clip.mp4, written via .20260101T120000.123Z_clip.mp4.part.mp4 (OpenCV and
# PyAV pick the container from the extension, hence `.part.mp4` rather than `.mp4.part`)
CLIPS = OwnFiles("clip", ".mp4", temp=".part.mp4")


class FolderRetention:
    """Index of the service's own files (`files`) in `directory`, kept under the limits.

    Files of other names in the folder are neither counted nor deleted. The first `scan()`
    removes our hidden temporary files (`files.temp`), leftovers of a crash: no writer of this
    process can still be writing them.
    """

    def __init__(
        self,
        directory: str | Path,
        files: OwnFiles,
        max_bytes: int,
        max_files: int,
    ) -> None:
        self.dir = Path(directory)
        self.files = files
        self.max_bytes = max_bytes
        self.max_files = max_files
        self.deleted = 0
        self.scanned = False
        self._files: deque[tuple[Path, int]] = deque()
        self._total = 0

    def scan(self) -> None:
        """Create the folder, index our files of earlier runs oldest first, drop leftovers,
        enforce."""
        self.dir.mkdir(parents=True, exist_ok=True)
        entries = []
        leftovers = []
        with os.scandir(self.dir) as it:
            for e in it:
                if self.files.is_leftover(e.name):
                    leftovers.append(Path(e.path))
                    continue
                if not self.files.owns(e.name):
                    continue
                try:
                    st = e.stat()
                except OSError:
                    continue
                entries.append((st.st_mtime, e.name, Path(e.path), st.st_size))
        entries.sort()
        self._files = deque((p, size) for _, _, p, size in entries)
        self._total = sum(size for _, size in self._files)
        for tmp in leftovers:
            tmp.unlink(missing_ok=True)
        self.scanned = True
        self.enforce()

    def ensure_dir(self) -> None:
        """Before each write: the first call scans; a folder deleted since is made again (and
        indexed afresh, its old files being gone). Failing to create it raises OSError."""
        if self.scanned:
            if self.dir.is_dir():
                return
            log.warning("folder %s has gone; creating it again", self.dir)
        self.scan()

    def add(self, path: Path, size: int) -> None:
        """Count a file just written, then delete the oldest beyond the limits."""
        if not self.files.owns(path.name):
            raise ValueError(f"{path.name} is not a name the service gives its files")
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
