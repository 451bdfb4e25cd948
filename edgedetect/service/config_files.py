"""What a service config names on disk: secrets read from private files, and the folders and
files the outputs will write, probed before the service starts (or a reload swaps them in).

Kept apart from `config.py`, which validates the values themselves: these functions touch the
file system, those do not (except for the model files that must exist).
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgedetect.errors import ConfigError
from edgedetect.service.config_checks import http_token

if TYPE_CHECKING:
    from edgedetect.service.config import Config


def read_secret(path: str, where: str, section: str, name: str, given: str | None = None) -> str:
    """A password or token from an owner-only file (0600/0400, like systemd credentials)."""
    key = f"{where}: [{section}] {name} = {(given or path)!r}"
    try:
        st = os.stat(path)
        if not stat.S_ISREG(st.st_mode):
            raise ConfigError(f"{key}: {path} is not a regular file")
        mode = stat.S_IMODE(st.st_mode)
        if mode & 0o077:
            raise ConfigError(f"{key}: readable by others (mode {mode:04o}); run chmod 600 {path}")
        with open(path, encoding="utf-8") as fh:
            secret = fh.read().strip()
    except OSError as e:
        raise ConfigError(f"{key}: cannot read {path} ({e.strerror or e})") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{key}: {path} is not UTF-8 text") from None
    if not secret:
        raise ConfigError(f"{key}: {path} is empty")
    return secret


def _read_secrets(
    data: dict[str, dict[str, Any]],
    where: str,
    check_files: bool,
    given: dict[tuple[str, str], Any],
) -> None:
    for section, file_key, key in (
        ("http", "token_file", "token"),
        ("mqtt", "password_file", "password"),
    ):
        path = data[section][file_key]
        if not path:
            continue
        if data[section][key]:
            raise ConfigError(
                f"{where}: [{section}] {file_key} and {key} are both set; "
                f"use {file_key} or {key}, not both"
            )
        if not check_files:
            continue
        shown = given.get((section, file_key))
        secret = read_secret(path, where, section, file_key, shown)
        problem = http_token(secret) if section == "http" else None
        if problem:
            raise ConfigError(f"{where}: [{section}] {file_key} = {(shown or path)!r}: {problem}")
        data[section][key] = secret


def _probe_folder(folder: Path) -> str | None:
    """Why files cannot be created in `folder` (or in the folders that would be made), or None.

    Walks up to the nearest existing ancestor and creates (and removes) one temporary file
    there: `os.access` says yes to root even on /proc or a read-only mount.
    """
    import tempfile

    target = folder
    while not target.exists():
        if target.parent == target:
            return "no existing parent folder"
        target = target.parent
    if not target.is_dir():
        return f"{target} is not a folder"
    try:
        fd, tmp = tempfile.mkstemp(dir=target, prefix=".edgedetect-probe-")
        os.close(fd)
        os.unlink(tmp)
    except OSError as e:
        if e.errno in (errno.ENOSPC, errno.EDQUOT):
            return None  # writable, only full: the outputs count what they cannot write
        fs = _kernel_fs(target)
        if fs is not None:  # its errno (ENOENT on /proc) would mislead: say what the folder is
            return f"{target} is on the kernel's {fs} file system, not storage"
        return f"cannot create files in {target} ({e.strerror or e})"
    return None


KERNEL_FS = {"proc", "sysfs", "cgroup", "cgroup2", "debugfs", "tracefs", "securityfs", "configfs"}


def _kernel_fs(folder: Path) -> str | None:
    """The type of the kernel file system `folder` lies on (/proc, /sys), or None."""
    try:
        with open("/proc/self/mounts", encoding="utf-8") as fh:
            mounts = [line.split()[1:3] for line in fh if len(line.split()) > 2]
    except OSError:  # not Linux
        return None
    path = folder.resolve()
    best = max(
        (m for m in mounts if path.is_relative_to(m[0].replace("\\040", " "))),
        key=lambda m: len(m[0]),
        default=None,
    )
    return best[1] if best is not None and best[1] in KERNEL_FS else None


def check_output_paths(
    cfg: Config, sections: Iterable[str] = ("events", "snapshots", "clips")
) -> None:
    """The events file and snapshot/clip folders can be written (or created); nothing is created."""
    where = cfg.where
    jsonl = cfg.events.jsonl if "events" in sections else ""
    if jsonl:
        p = Path(jsonl)
        problem = f"{p} is a folder" if p.is_dir() else _probe_folder(p.parent)
        if problem is None and p.exists() and not os.access(p, os.W_OK):
            problem = f"{p} is not writable"
        fix = "pick a writable path"
        source = _source_file(cfg.source.spec)
        if problem is None and source is not None and p.exists() and os.path.samefile(p, source):
            problem = (
                f"it is the file the source reads ({cfg.source.spec!r}), which it would write into"
            )
            fix = "pick another file"
        if problem:
            raise ConfigError(
                f"{where}: [events] jsonl = {jsonl!r}: {problem}; {fix} "
                '(or "" to turn the file off)'
            )
    for name in ("snapshots", "clips"):  # folders of saved files
        folder = cfg[name]
        if not (folder.enabled and name in sections):
            continue
        d = Path(folder.dir)
        problem = f"{d} is a file" if d.exists() and not d.is_dir() else _probe_folder(d)
        fix = "pick a writable folder (or enabled = false)"
        read_from = _source_folder(cfg.source.spec) if name == "snapshots" else None
        if problem is None and read_from is not None and d.resolve().is_relative_to(read_from):
            problem = f"it is in the source folder {read_from}, which would read its snapshots back"
            fix = "pick a folder outside it (or enabled = false)"
        elif (
            problem is None and name == "snapshots" and _glob_matches_snapshots(cfg.source.spec, d)
        ):
            problem = (
                f"the source glob {cfg.source.spec!r} matches the snapshots saved there and "
                "would read them back"
            )
            fix = "pick a folder it does not match (or enabled = false)"
        if problem:
            raise ConfigError(f"{where}: [{name}] dir = {folder.dir!r}: {problem}; {fix}")


def _spec_path(spec: str) -> Path:
    """The path a file, folder or glob source names: the spec without ``file:``/``dir:``."""
    scheme, sep, rest = spec.strip().partition(":")
    return Path(rest if sep and scheme.lower() in ("file", "dir") else spec.strip()).expanduser()


def _source_folder(spec: str) -> Path | None:
    """The folder a folder source reads (``dir:F`` or a path to a folder), resolved; else None."""
    path = _spec_path(spec)
    try:
        return path.resolve() if path.is_dir() else None
    except OSError:
        return None


def _source_file(spec: str) -> Path | None:
    """The file a file source reads (``file:F`` or a path to a video or image), else None."""
    path = _spec_path(spec)
    try:
        return path if path.is_file() else None
    except OSError:
        return None


def _glob_matches_snapshots(spec: str, folder: Path) -> bool:
    """A glob source (``imgs/*.jpg``, matched again at each loop, as sources.open_source reads
    it) that would match a snapshot saved in `folder`."""
    from edgedetect.service.retention import SNAPSHOTS  # config -> here; retention -> config
    from edgedetect.sources import glob_matches

    pattern = _spec_path(spec)
    if not any(ch in str(pattern) for ch in "*?[") or pattern.exists():
        return False
    sample = Path(os.path.abspath(folder)) / SNAPSHOTS.name(0.0, 1)
    return glob_matches(str(sample), os.path.abspath(pattern))
