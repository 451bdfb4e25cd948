"""Resolving the image an annotation refers to, and reading annotation text in any line ending."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path, PurePosixPath, PureWindowsPath

from host_tools.datasets.types import DatasetError


def read_text_lines(path: Path) -> list[str]:
    """Lines of a text annotation, CRLF/LF/CR alike.

    Falls back to Latin-1 because old datasets are not UTF-8.
    """
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DatasetError(f"cannot read annotation {path}: {exc.strerror or exc}") from exc
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = data.decode("latin-1")
    return text.splitlines()


def _ref_parts(ref: str) -> tuple[str, ...]:
    parts = PureWindowsPath(ref).parts if "\\" in ref else PurePosixPath(ref).parts
    return tuple(p for p in parts if p not in ("/", "\\", ".", ""))


def resolve_image(
    ref: str, bases: Iterable[Path], fallback_dirs: Iterable[Path] = ()
) -> Path | None:
    """Find the file an annotation's image reference means.

    References are relative to some dataset root that may or may not be the one the user gave
    (INRIA: ``Test/pos/x.png`` against the root; Penn-Fudan: ``PennFudanPed/PNGImages/x.png``
    against the root's parent), so each base is tried with the full reference and then with leading
    parts dropped; last, the bare file name in ``fallback_dirs``.
    """
    parts = _ref_parts(ref)
    if not parts:
        return None
    for base in bases:
        for i in range(len(parts)):
            cand = base.joinpath(*parts[i:])
            if cand.is_file():
                return cand
    for d in fallback_dirs:
        cand = d / parts[-1]
        if cand.is_file():
            return cand
    return None
