"""User-facing errors.

Every error a user can cause (a bad path, a corrupt model, a wrong config key) is raised as an
:class:`EdgeDetectError` whose message names the file or value *and* the fix. The CLI prints the
message on one line and exits with code 2; it never shows a traceback for these.
"""

from __future__ import annotations

import difflib


class EdgeDetectError(Exception):
    """Base class of errors caused by input the user can fix; ``str(err)`` is the whole message."""

    exit_code = 2


class ModelError(EdgeDetectError):
    """Missing, corrupt or unsupported model file, or no TFLite runtime installed."""


class LabelsError(EdgeDetectError):
    """Missing or malformed label file, or a requested class the labels do not have."""


class SourceError(EdgeDetectError):
    """Unknown source spec, or a source that cannot be opened.

    ``hint`` (the list of accepted specs, for a spec that cannot be parsed) ends ``str(err)`` in
    parentheses; ``reason`` is the message without it, for a source that opened before and fails
    to reopen, where that list is only noise.
    """

    def __init__(self, message: str = "", *, hint: str = "") -> None:
        super().__init__(f"{message} ({hint})" if hint else message)
        self.reason = message


class SourceLost(SourceError):
    """A source that was working stopped delivering (camera unplugged, stream dropped).

    Distinct from end-of-stream so that the service can reconnect with back-off.
    """


class ImageError(EdgeDetectError):
    """An image file that is missing or cannot be decoded."""


class ConfigError(EdgeDetectError):
    """A configuration file or key that is missing, unknown, of the wrong type or out of range."""


def closest(name: str, choices: list[str]) -> str | None:
    """The one of ``choices`` that ``name`` is most likely a typo of, if any is close."""
    close = difflib.get_close_matches(name, choices, n=1, cutoff=0.6)
    return close[0] if close else None


def did_you_mean(name: str, choices: list[str]) -> str:
    """The end of an unknown-name message: the closest of ``choices`` (a typo is the usual
    cause), else all of them; the service's and the training configs' messages alike."""
    close = closest(name, choices)
    return f"; did you mean {close!r}?" if close else f"; valid: {', '.join(choices)}"
