"""A file of whole lines that a long run appends to: ``run --events`` and the service's events.

Each line is one ``os.write`` to an O_APPEND file; a write that fails or comes up short (a full
disk, a file size limit) is cut back off the file, so a failure loses lines, never the line
structure (a buffered text file would leave half a line at the end).

The file may be deleted or moved away (logrotate) while a run goes on: before each line the
writer checks that the path still names the file it holds open, like
`logging.handlers.WatchedFileHandler`, and otherwise opens a new one there. Only a regular file
is written: a FIFO (or any other special file) could block the writing thread on open or write,
so it is refused with an error that names the path and the setting to change.
"""

from __future__ import annotations

import errno
import logging
import os
import stat
from pathlib import Path

log = logging.getLogger("edgedetect.linefile")


class NotARegularFile(OSError):
    """The path names a FIFO, a device, a folder...: never opened for writing."""


class FolderIsAFile(OSError):
    """A file stands where the file's folder should be: mkdir said only "File exists: 'F'".

    The same every time until the user moves it, so the service logs it once per spell."""

    once_per_spell = True


def file_in_folders_place(path: Path) -> Path | None:
    """The first of ``path``'s folders that exists but is no folder (a file put in its place)."""
    for folder in reversed(path.parents):
        if not folder.is_dir():
            return folder if folder.exists() else None
    return None


def file_kind(mode: int) -> str:
    """What a path that is not a regular file is, for a message: 'a FIFO', 'a folder', ...

    The one naming of special files for every message that refuses one (a model, a source, a
    label file, a config, an events file, run's --output): each place had its own table, and the
    same FIFO was 'a FIFO' in one error and 'a named pipe (FIFO)' in the next."""
    for test, what in (
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISDIR, "a folder"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    ):
        if test(mode):
            return what
    return "a special file"


class LineFile:
    """Appends whole lines to ``path``; ``setting`` names where the user chose the path."""

    def __init__(self, path: str | Path, setting: str, what: str = "events file") -> None:
        self.path = Path(path)
        self.setting = setting
        self.what = what
        self._fd: int | None = None
        self._id = (0, 0)  # (st_dev, st_ino) of the open file

    def size(self) -> int:
        """The size of the file the next line goes to: opened (created) or reopened if need be."""
        fd = self._open()
        st = os.fstat(fd)
        if self._replaced(st):
            log.info("%s %s was deleted or moved away; writing a new one", self.what, self.path)
            self.release()
            st = os.fstat(self._open())
        return st.st_size

    def append(self, data: bytes, size: int) -> None:
        """Write ``data`` whole or not at all: a short or failed write is cut back to ``size``
        (what :meth:`size` returned just before)."""
        fd = self._open()
        try:
            written = os.write(fd, data)
            if written == len(data):
                return
            err = OSError(
                errno.ENOSPC, f"short write ({written} of {len(data)} bytes)", str(self.path)
            )
        except OSError as e:  # os.write's error names no file: name it (a full disk, EPERM)
            err = e if e.filename else OSError(e.errno, e.strerror or str(e), str(self.path))
        try:
            os.ftruncate(fd, size)
        except OSError as e:
            log.error("cannot cut a partial line off %s: %s", self.path, e)
        self.release()  # reopened for the next line (the file may have been moved meanwhile)
        raise err

    def release(self) -> None:
        """Close the handle (before the file is rotated away); the next line reopens it."""
        fd, self._fd = self._fd, None
        if fd is not None:
            try:
                os.close(fd)
            except OSError:
                pass

    def flush(self) -> None:
        if self._fd is not None:
            os.fsync(self._fd)

    def close(self) -> None:
        if self._fd is not None:
            try:
                self.flush()
            finally:
                self.release()

    def _refuse(self, mode: int) -> NotARegularFile:
        return NotARegularFile(
            f"{self.what} {self.path} is not a regular file ({file_kind(mode)}); "
            f"point {self.setting} at a file"
        )

    def _open(self) -> int:
        """The open file, opened (created) if need be; never blocks, never a special file."""
        if self._fd is None:
            self._make_folder()
            try:
                mode = os.stat(self.path).st_mode
            except FileNotFoundError:
                pass
            else:
                if not stat.S_ISREG(mode):  # opening a FIFO with no reader would block
                    raise self._refuse(mode)
            # O_NONBLOCK: a FIFO put there since the check fails (ENXIO) instead of waiting
            flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC | os.O_NONBLOCK
            fd = os.open(self.path, flags, 0o644)
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                os.close(fd)
                raise self._refuse(st.st_mode)
            self._fd, self._id = fd, (st.st_dev, st.st_ino)
        return self._fd

    def _make_folder(self) -> None:
        """Make the file's folder if it is gone; a file in its place is named, with the fix."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError) as e:
            blocker = file_in_folders_place(self.path)
            if blocker is None:
                raise
            raise FolderIsAFile(
                f"{self.what} {self.path}: {blocker} is a file, not a folder; move that file "
                f"away (the folder is made again) or point {self.setting} at another folder"
            ) from e

    def _replaced(self, st: os.stat_result) -> bool:
        """Whether the path no longer names the open file (`st`): deleted, moved or replaced."""
        if st.st_nlink == 0:
            return True
        try:
            now = os.stat(self.path)
        except (FileNotFoundError, NotADirectoryError):
            return True
        except OSError:
            return False  # cannot tell: keep writing where we are
        return (now.st_dev, now.st_ino) != self._id
