"""Finding the files the project ships (default model, sample clip) in a checkout or an install.

A checkout keeps them in ``models/`` and ``data/``; ``pip install .`` puts them under
``<prefix>/share/edgedetect/`` (see ``[tool.setuptools.data-files]`` in ``pyproject.toml``); a
distribution package may put them under ``/usr/share`` or ``/usr/local/share``. One lookup, so the
model and the sample are searched the same way.
"""

from __future__ import annotations

import sys
from pathlib import Path

CHECKOUT = Path(__file__).resolve().parent.parent
SHARE_DIRS = (Path(sys.prefix) / "share", Path("/usr/share"), Path("/usr/local/share"))


def shipped_file_candidates(in_checkout: str, installed: tuple[str, ...]) -> list[Path]:
    """Where a shipped file may be, in order: checkout, then each share dir's installed names."""
    return [CHECKOUT / in_checkout] + [
        d / "edgedetect" / rel for d in SHARE_DIRS for rel in installed
    ]


def find_shipped_file(in_checkout: str, installed: tuple[str, ...]) -> Path | None:
    """The first existing candidate (see :func:`shipped_file_candidates`), or None."""
    return next((p for p in shipped_file_candidates(in_checkout, installed) if p.is_file()), None)
