"""Size and count retention for one output folder (snapshots, clips): oldest file deleted first.

One implementation for every folder the service fills, so the rules (what counts, what is
deleted first, what happens to leftovers of a crash) are the same everywhere. Writers whose
lives overlap on one folder (a reload's new clip recorder while the old one finishes its clip)
share that folder's index (`FolderRetention.shared`): a second scan would delete the first
writer's clip in progress as a crash's leftover, and a clip published into an index nobody
uses would never be deleted. Calls are serialised by the index's lock.

A folder may be shared with other files (the user's photos, another program's videos): only the
names the service itself gives its files (`OwnFiles`, which the writers use to name them) are
counted, and only those are ever deleted.
"""

from __future__ import annotations

import logging
import math
import os
import re
import threading
import weakref
from collections import deque
from dataclasses import dataclass
from pathlib import Path

from edgedetect.images import free_bytes
from edgedetect.service.config import MIB
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
    section: str = ""  # the config section that sets the folder's limits, for messages

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
SNAPSHOTS = OwnFiles("person", ".jpg", temp=".tmp", numbered=True, section="snapshots")
# 20260101T120000.123Z_clip.mp4, written via .20260101T120000.123Z_clip.mp4.part.mp4 (OpenCV and
# PyAV pick the container from the extension, hence `.part.mp4` rather than `.mp4.part`)
CLIPS = OwnFiles("clip", ".mp4", temp=".part.mp4", section="clips")


_WRITING: set[str] = set()  # hidden temp files a writer of this process has open now
_WRITING_LOCK = threading.Lock()


def writing(temp: Path) -> None:
    """A writer opens its hidden temp file `temp`; until `done_writing(temp)` the file is being
    written (the page's clip "recording" while its encoder finishes it)."""
    with _WRITING_LOCK:
        _WRITING.add(os.path.abspath(temp))


def done_writing(temp: Path) -> None:
    """The writer of `temp` renamed it into view, removed it, or gave up on it (a folder turned
    read-only keeps the file, which will never become the final one)."""
    with _WRITING_LOCK:
        _WRITING.discard(os.path.abspath(temp))


def being_written(temp: Path) -> bool:
    """Whether a writer of this process has `temp` open. A temp file no writer holds is a
    leftover: of a writer that gave up on it, or of an earlier run (a crash, or a read-only
    folder where nothing could remove it), and will never become the final file."""
    with _WRITING_LOCK:
        return os.path.abspath(temp) in _WRITING


_LOST: deque[str] = deque(maxlen=1000)  # final paths of files their writer gave up on


def gave_up(final: Path) -> None:
    """The writer lost `final` (a clip that could not be written): it never existed, as opposed
    to a file the retention (or a person) deleted since, which the page calls deleted."""
    with _WRITING_LOCK:
        _LOST.append(os.path.abspath(final))


def was_lost(final: Path) -> bool:
    """Whether a writer of this process gave up on `final` (`gave_up`); bounded memory."""
    with _WRITING_LOCK:
        return os.path.abspath(final) in _LOST


class _Index:
    """What this process knows of one folder's own files, oldest first (shared, see above)."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.files: deque[tuple[Path, int]] = deque()
        self.total = 0
        self.scanned = False


_SHARED: weakref.WeakValueDictionary[tuple[str, OwnFiles], _Index] = weakref.WeakValueDictionary()
_SHARED_LOCK = threading.Lock()


class FolderRetention:
    """Index of the service's own files (`files`) in `directory`, kept under the limits.

    Files of other names in the folder are neither counted nor deleted. The first `scan()`
    removes our hidden temporary files (`files.temp`), leftovers of a crash: no writer of this
    process can still be writing them (writers that overlap share one index, scanned once).
    """

    def __init__(
        self,
        directory: str | Path,
        files: OwnFiles,
        max_bytes: int,
        max_files: int,
        index: _Index | None = None,
        min_free_bytes: int = 0,
    ) -> None:
        self.dir = Path(directory)
        self.files = files
        self.max_bytes = max_bytes
        self.max_files = max_files
        self.min_free_bytes = min_free_bytes
        self.deleted = 0
        self._index = index or _Index()
        self._said_too_small = False  # the limit is below one file: said once, not per file
        self._said_low = False  # under min_free_bytes: said once until there is room again

    @classmethod
    def shared(
        cls,
        directory: str | Path,
        files: OwnFiles,
        max_bytes: int,
        max_files: int,
        min_free_bytes: int = 0,
    ) -> FolderRetention:
        """Retention with this owner's limits over the index every living owner of the same
        folder and names shares (a new one scans the folder)."""
        key = (os.path.abspath(directory), files)
        with _SHARED_LOCK:
            index = _SHARED.get(key)
            if index is None:
                index = _SHARED[key] = _Index()
        return cls(directory, files, max_bytes, max_files, index, min_free_bytes)

    @property
    def scanned(self) -> bool:
        return self._index.scanned

    def scan(self) -> None:
        """Create the folder, index our files of earlier runs oldest first, drop leftovers,
        enforce."""
        with self._index.lock:
            self._scan()

    def _scan(self) -> None:
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
        idx = self._index
        idx.files = deque((p, size) for _, _, p, size in entries)
        idx.total = sum(size for _, size in idx.files)
        for tmp in leftovers:
            tmp.unlink(missing_ok=True)
        idx.scanned = True
        self.enforce()

    def ensure_dir(self) -> None:
        """Before each write: the first call scans; a folder deleted since is made again (and
        indexed afresh, its old files being gone). Failing to create it raises OSError."""
        with self._index.lock:
            if self._index.scanned:
                if self.dir.is_dir():
                    return
                log.warning("folder %s has gone; creating it again", self.dir)
            self._scan()

    def add(self, path: Path, size: int) -> None:
        """Count a file just written, then delete the oldest beyond the limits."""
        if not self.files.owns(path.name):
            raise ValueError(f"{path.name} is not a name the service gives its files")
        with self._index.lock:
            self._index.files.append((path, size))
            self._index.total += size
            self.enforce()

    def free(self, nbytes: int) -> None:
        """Delete own oldest files until `nbytes` are freed (a full disk: new files win)."""
        with self._index.lock:
            freed = 0
            while freed < nbytes and self._index.files:
                freed += self._index.files[0][1]
                self.delete_oldest()

    def make_room(self, nbytes: int | None = None) -> None:
        """Before a write: delete own oldest files while the folder's file system has less than
        `nbytes` free (default twice the mean size of own files) or less than `min_free_bytes`,
        so on a full disk new files win over old ones, as within the limits (else every later
        file fails for good), and the disk keeps room for the rest of the system."""
        with self._index.lock:
            idx = self._index
            if nbytes is None:
                nbytes = 2 * idx.total // max(1, len(idx.files))
            need, deleted, free = max(nbytes, self.min_free_bytes), 0, free_bytes(self.dir)
            while idx.files and free < need:
                self.delete_oldest()
                deleted, free = deleted + 1, free_bytes(self.dir)
            self._say_low(deleted, need, free)

    def _say_low(self, deleted: int, need: int, free: int) -> None:
        """One warning when `min_free_bytes` starts deleting (or finds nothing of ours left to
        delete), again only after the disk had room."""
        low = need == self.min_free_bytes > 0 and (deleted > 0 or free < need)
        if not low:
            self._said_low = False
            return
        if self._said_low:
            return
        self._said_low = True
        section = self.files.section or self.dir.name
        log.warning(
            "the disk of %s has less than [%s] min_free_mb = %g free: deleted the %d oldest "
            "%s file(s)%s; free space on it, or lower min_free_mb",
            self.dir,
            section,
            self.min_free_bytes / MIB,
            deleted,
            section,
            "" if self._index.files else ", and none of them is left (other files fill it)",
        )

    def delete_oldest(self) -> bool:
        with self._index.lock:
            idx = self._index
            if not idx.files:
                return False
            p, size = idx.files.popleft()
            idx.total -= size
            try:
                p.unlink()
            except FileNotFoundError:
                pass
            except OSError as e:
                log.warning("cannot delete old file %s: %s", p, e)
            self.deleted += 1
            return True

    def enforce(self) -> None:
        """Delete the oldest files beyond the limits, never the newest (the file just written):
        a `max_bytes` smaller than one file then keeps that one file (deleting it would lose
        every file the moment it is saved), which is said once."""
        with self._index.lock:
            idx = self._index
            while len(idx.files) > 1 and (
                idx.total > self.max_bytes or len(idx.files) > self.max_files
            ):
                self.delete_oldest()
            if idx.files and idx.total > self.max_bytes and not self._said_too_small:
                self._said_too_small = True
                self._say_too_small(*idx.files[-1])

    def _say_too_small(self, newest: Path, size: int) -> None:
        section = self.files.section or self.dir.name
        kind = section.removesuffix("s")  # a snapshot, a clip
        log.warning(
            "[%s] max_mb = %g is smaller than one %s (%s is %.2f MB): only the newest %s is "
            "kept; raise [%s] max_mb (10 %ss of that size need %d)",
            section,
            self.max_bytes / MIB,
            kind,
            newest.name,
            size / MIB,
            kind,
            section,
            kind,
            math.ceil(10 * size / MIB),
        )

    @property
    def total_bytes(self) -> int:
        return self._index.total

    def __len__(self) -> int:
        return len(self._index.files)
