"""One way for every host tool to turn user errors into one line and exit code 2.

A bad dataset path, a missing model, a corrupt checkpoint or a full disk is something the user
fixes: they get ``<tool>: error: <message naming the file and the fix>`` and exit code 2, never a
traceback. Programming errors still raise, so they are not hidden.

TensorFlow reports file trouble with its own exceptions, not ``OSError``: ``tf.saved_model.save``
into a path that is a regular file (``FailedPreconditionError``), a ``TFRecordWriter`` or a
checkpoint in a read-only folder (``PermissionDeniedError``), a missing file (``NotFoundError``).
Those kinds (:data:`TF_FILE_ERRORS`) are user errors too. TensorFlow is looked up only if a tool
has already imported it, so this module never loads it (the runtime does not have it).

The argument types below refuse what a tool cannot use (``--steps 0``, ``--threshold 1.5``) with
argparse's usual usage line and one error line, exit code 2.
"""

from __future__ import annotations

import argparse
import functools
import math
import re
import sys
from collections.abc import Callable
from pathlib import Path

from edgedetect.cli import EXIT_INTERRUPTED, path_arg, thread_count, whole_number
from edgedetect.errors import EdgeDetectError
from host_tools._deps import missing_host_package

# tf.errors classes that mean a file or folder the user named cannot be written or read, or the
# machine ran out of room (memory or disk). InvalidArgumentError and the rest stay tracebacks:
# inside TensorFlow they are usually a bug of ours (a shape mismatch), not the user's input.
TF_FILE_ERRORS = (
    "NotFoundError",
    "AlreadyExistsError",
    "PermissionDeniedError",
    "FailedPreconditionError",
    "ResourceExhaustedError",
    "DataLossError",
    "UnavailableError",
)


def tf_file_error(exc: BaseException) -> str | None:
    """The one-line message of a TensorFlow file error, or None for anything else."""
    tf = sys.modules.get("tensorflow")
    errors = getattr(tf, "errors", None)
    if errors is None:
        return None
    kinds = tuple(getattr(errors, name) for name in TF_FILE_ERRORS if hasattr(errors, name))
    if not isinstance(exc, kinds):
        return None
    message = str(getattr(exc, "message", "") or exc)
    # An op's error carries its graph node and op name around the message: {{function_node
    # __wrapped__SaveV2...}} /run/checkpoints/ckpt-3_temp; Permission denied [Op:SaveV2]
    message = re.sub(r"\{\{[^}]*\}\}", "", message)
    message = re.sub(r"\[Op:[^\]]*\]", "", message).strip()
    first = message.splitlines()[0].strip() if message else type(exc).__name__
    return f"{first} ({type(exc).__name__})"


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (TensorFlow's often run on with advice that
    does not fit), or its type name when it has none."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def cli_errors(prog: str) -> Callable[[Callable[..., int]], Callable[..., int]]:
    """Decorate a tool's ``main``: ``EdgeDetectError``, ``OSError``, TensorFlow's file errors and
    a missing package of the ``[host]`` extra (``host_tools._deps``) become one line and 2;
    Ctrl-C is ``<tool>: interrupted`` and 130, as in ``edgedetect``."""

    def wrap(main: Callable[..., int]) -> Callable[..., int]:
        @functools.wraps(main)
        def run(*args: object, **kwargs: object) -> int:
            try:
                return main(*args, **kwargs)
            except (EdgeDetectError, OSError) as exc:
                print(f"{prog}: error: {exc}", file=sys.stderr)
                return 2
            except KeyboardInterrupt:
                print(f"{prog}: interrupted", file=sys.stderr)
                return EXIT_INTERRUPTED
            except Exception as exc:
                message = tf_file_error(exc) or missing_host_package(exc)
                if message is None:
                    raise
                print(f"{prog}: error: {message}", file=sys.stderr)
                return 2

        return run

    return wrap


# ----------------------------------------------------------------------------- argument types
def path_option(text: str) -> Path:
    """A file or folder path that is not empty (``edgedetect.cli.path_arg``): ``--run-dir "$RUN"``
    with ``RUN`` unset would otherwise be the current folder, and the tool would write its
    checkpoints, report or model there (``path_arg`` for options kept as text)."""
    return Path(path_arg(text))


def output_file(path: Path, option: str, example: str, suffix: str = "") -> Path:
    """Refuse, before the work, an output file that cannot be written where it is named (its
    parent folder is created): a tool that imports, converts or scans a dataset for minutes only
    met it at the end, and said ``[Errno 21] Is a directory`` or ``[Errno 17] File exists`` on a
    parent. ``suffix``: the name must end with it (a weights file without ``.h5`` is written by
    Keras as TensorFlow checkpoint files, not the file named). ``example``: a file name for the
    message."""
    if path.is_dir():
        raise EdgeDetectError(
            f"{option} {path} is a folder; name the file to write, e.g. {path / example}"
        )
    if suffix and not path.name.endswith(suffix):
        raise EdgeDetectError(
            f"{option} {path} must end with {suffix}, e.g. {path.with_name(path.name + suffix)}"
        )
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        file = next((p for p in path.parents if p.is_file()), None)
        why = f"{file} is a file, not a folder" if file else exc.strerror
        raise EdgeDetectError(f"cannot write {option} {path}: {why}; pick another path") from None
    return path


def folder_not_file(path: Path, option: str) -> Path:
    """Refuse, before the work and without creating anything, a folder path that is a file or lies
    under one: ``train --run-dir`` read its data (minutes) and then said ``[Errno 17] File
    exists`` or ``[Errno 20] Not a directory``."""
    file = next((p for p in (path, *path.parents) if p.exists() and not p.is_dir()), None)
    if file is not None:
        raise EdgeDetectError(
            f"cannot use {option} {path}: {file} is a file, not a folder; pick another path"
        )
    return path


def seed(text: str) -> int:
    """A random seed: a whole number in NumPy's range 0 .. 2**32 - 1."""
    value = whole_number(text)
    if not 0 <= value < 2**32:
        raise argparse.ArgumentTypeError(f"{text} is outside 0..{2**32 - 1}")
    return value


def non_negative_int(text: str) -> int:
    """A whole number >= 0 (``--qat-delay``: 0 means none)."""
    value = whole_number(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text} must be at least 0")
    return value


def positive_float(text: str) -> float:
    """A finite number > 0 (``--lr``)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"{text} must be a number > 0")
    return value


def threads(text: str) -> int:
    """Interpreter threads (``--threads``): 1..2 x CPU count, the bound of ``edgedetect detect``,
    ``run`` and ``bench`` and of the service's ``[model] threads``."""
    return thread_count(text)
