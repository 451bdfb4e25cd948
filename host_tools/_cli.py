"""One way for every host tool to turn user errors into one line and exit code 2.

A bad dataset path, a missing model, a corrupt checkpoint or a full disk is something the user
fixes: they get ``<tool>: error: <message naming the file and the fix>`` and exit code 2, never a
traceback. Programming errors still raise, so they are not hidden.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable

from edgedetect.errors import EdgeDetectError


def cli_errors(prog: str) -> Callable[[Callable[..., int]], Callable[..., int]]:
    """Decorate a tool's ``main``: ``EdgeDetectError`` and ``OSError`` become one line and 2."""

    def wrap(main: Callable[..., int]) -> Callable[..., int]:
        @functools.wraps(main)
        def run(*args: object, **kwargs: object) -> int:
            try:
                return main(*args, **kwargs)
            except (EdgeDetectError, OSError) as exc:
                print(f"{prog}: error: {exc}", file=sys.stderr)
                return 2

        return run

    return wrap
