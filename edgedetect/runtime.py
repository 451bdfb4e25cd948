"""Finding and loading a TFLite interpreter.

Order of preference: ``ai_edge_litert`` (the maintained LiteRT wheel, on PyPI for the Pi's
aarch64 and for x86-64), then the legacy ``tflite_runtime``, then ``tensorflow.lite`` (on a host
that has TensorFlow anyway). TensorFlow is only ever imported as the last resort.

Native libraries talk on their own: OpenCV (``[ WARN:0@...]``), FFmpeg (``[mov,mp4 @ 0x...]``),
libjpeg/libpng and LiteRT (``INFO: Created TensorFlow Lite XNNPACK delegate``). They are quiet
unless edgedetect logs at INFO or below (the CLI's ``-v``, the service's ``log_level``) or
``EDGEDETECT_NATIVE_LOGS=1``: the one-line errors are the whole story otherwise.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import re
import sys
import tempfile
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from edgedetect.errors import ModelError
from edgedetect.linefile import file_kind

_CANDIDATES = (
    ("ai_edge_litert.interpreter", "ai-edge-litert"),
    ("tflite_runtime.interpreter", "tflite-runtime"),
)


def interpreter_class() -> tuple[type, str]:
    """The first importable ``Interpreter`` class and the name of the package it came from."""
    forced = os.environ.get("EDGEDETECT_RUNTIME", "")
    for module, package in _CANDIDATES:
        if forced and forced != package:
            continue
        try:
            return importlib.import_module(module).Interpreter, package
        except ImportError:
            continue
    if not forced or forced == "tensorflow":
        try:
            tf = importlib.import_module("tensorflow")
            return tf.lite.Interpreter, "tensorflow"
        except ImportError:
            pass
    raise ModelError(
        "no TFLite runtime is installed: run `pip install ai-edge-litert` "
        "(or tflite-runtime on an old Pi OS)"
        + (f"; EDGEDETECT_RUNTIME={forced!r} was requested" if forced else "")
    )


# What native code prints that is chatter, not news: dropped from fd 2 when quiet.
_CHATTER = re.compile(
    rb"^(INFO: |WARNING: |\[ ?(WARN|INFO|ERROR)[:\]]|\[[\w,]+ @ 0x|\[OPENCV:FFMPEG:|libpng |"
    rb"Premature end of JPEG|Corrupt JPEG|Invalid SOS|Not a JPEG|Bogus )"
)
_fd_locks = {1: threading.Lock(), 2: threading.Lock()}
_USER_LEVELS = {
    k for k in ("OPENCV_FFMPEG_LOGLEVEL", "OPENCV_LOG_LEVEL") if k in os.environ
}  # theirs


_native_level = logging.INFO  # edgedetect's log level from which native libs may print


def native_logs_from(level: int) -> None:
    """Native libs print once edgedetect logs at `level`: the CLI's ``-v`` (INFO) by default; the
    service, whose everyday level is INFO, sets DEBUG, so the journal gets no FFmpeg chatter."""
    global _native_level
    _native_level = level


def native_verbose() -> bool:
    """Whether native libs may print: edgedetect logs at the level of :func:`native_logs_from`
    (``-v``), or EDGEDETECT_NATIVE_LOGS=1."""
    forced = os.environ.get("EDGEDETECT_NATIVE_LOGS", "")
    if forced:
        return forced not in ("0", "false", "no")
    return logging.getLogger("edgedetect").isEnabledFor(_native_level)


def quiet_opencv() -> None:
    """Set OpenCV's and FFmpeg's log levels from :func:`native_verbose` (cheap; call before use).

    FFmpeg reads ``OPENCV_FFMPEG_LOGLEVEL`` once, when OpenCV opens its first capture, so this
    must run before that; a level the user exported is left alone.
    """
    import cv2

    verbose = native_verbose()
    if "OPENCV_FFMPEG_LOGLEVEL" not in _USER_LEVELS:
        os.environ["OPENCV_FFMPEG_LOGLEVEL"] = (
            "16" if verbose else "-8"
        )  # AV_LOG_ERROR / AV_LOG_QUIET
    if "OPENCV_LOG_LEVEL" not in _USER_LEVELS:
        # cv2.utils.logging is not in some wheels (the aarch64 opencv-python-headless 4.11 a Pi
        # gets); cv2.setLogLevel takes the same numbers (0 = silent, 3 = warning) where it exists.
        levels = getattr(getattr(cv2, "utils", None), "logging", None)
        if levels is not None:
            levels.setLogLevel(levels.LOG_LEVEL_WARNING if verbose else levels.LOG_LEVEL_SILENT)
        elif hasattr(cv2, "setLogLevel"):
            cv2.setLogLevel(3 if verbose else 0)


@contextlib.contextmanager
def opencv_silenced() -> Iterator[None]:
    """OpenCV's and FFmpeg's messages dropped inside the block, even when verbose: for probes
    that are expected to fail, such as asking a build for an encoder it may not have.

    FFmpeg's level is fixed at OpenCV's first capture and OpenCV prints its lines on stdout,
    so they are caught on file descriptors 1 and 2."""
    import cv2

    levels = getattr(getattr(cv2, "utils", None), "logging", None)
    before = levels.getLogLevel() if levels is not None else None
    if levels is not None:
        levels.setLogLevel(levels.LOG_LEVEL_SILENT)
    try:
        with _native_output_dropped(1), _native_output_dropped(2):
            yield
    finally:
        if levels is not None:
            levels.setLogLevel(before)


@contextlib.contextmanager
def quiet_stderr() -> Iterator[None]:
    """Drop native chatter written to file descriptor 2 inside the block, unless verbose.

    LiteRT's delegate line and libjpeg's warnings are printed by C/C++ straight to fd 2, where
    no Python setting reaches them.
    """
    if native_verbose():
        yield
        return
    with _native_output_dropped(2):
        yield


@contextlib.contextmanager
def _native_output_dropped(fd: int) -> Iterator[None]:
    """`fd` goes to a temp file for the block (one block per fd at a time in the process);
    afterwards lines that are not chatter (another thread's log, say) are written back, so
    nothing else is lost, only delayed."""
    stream = sys.stdout if fd == 1 else sys.stderr
    with _fd_locks[fd], tempfile.TemporaryFile() as tmp:
        with contextlib.suppress(Exception):
            stream.flush()
        saved = os.dup(fd)
        os.dup2(tmp.fileno(), fd)
        try:
            yield
        finally:
            with contextlib.suppress(Exception):
                stream.flush()
            os.dup2(saved, fd)
            os.close(saved)
            tmp.seek(0)
            kept = [ln for ln in tmp.read().splitlines(keepends=True) if not _CHATTER.match(ln)]
            if kept:
                os.write(fd, b"".join(kept))


def class_count(interpreter: Any) -> int | None:
    """Classes an SSD model scores (without background), read from the model; None if unknown.

    With ``TFLite_Detection_PostProcess`` the op's class-score input is [1, N, C + 1]; a raw SSD
    has that tensor as an output.
    """
    try:
        ops = interpreter._get_ops_details()
        tensors = {d["index"]: d for d in interpreter.get_tensor_details()}
    except (AttributeError, RuntimeError, ValueError):
        return None
    for op in ops:
        if op.get("op_name") == "TFLite_Detection_PostProcess" and len(op["inputs"]) >= 2:
            shape = tensors.get(int(op["inputs"][1]), {}).get("shape")
            return int(shape[-1]) - 1 if shape is not None and len(shape) == 3 else None
    shapes = [tuple(d["shape"]) for d in interpreter.get_output_details()]
    boxes = [s for s in shapes if len(s) == 3 and s[2] == 4]
    scores = [s for s in shapes if len(s) == 3 and s[2] != 4 and boxes and s[1] == boxes[0][1]]
    return int(scores[0][2]) - 1 if len(boxes) == 1 and len(scores) == 1 else None


def load_interpreter(
    model_path: str | Path, num_threads: int | None = None, *, preserve_all_tensors: bool = False
) -> tuple[Any, str]:
    """Load and allocate a model; every failure becomes a :class:`ModelError` naming the file.

    Returns the interpreter and the runtime package name. ``preserve_all_tensors`` keeps every
    intermediate tensor readable after ``invoke`` (the host tools read a model's raw outputs).
    """
    path = Path(model_path)
    content = _read_model_file(path)
    cls, package = interpreter_class()
    kwargs: dict[str, Any] = {"model_content": content}
    if num_threads is not None:
        if num_threads < 1:
            raise ModelError(f"num_threads must be >= 1, got {num_threads}")
        kwargs["num_threads"] = int(num_threads)
    if preserve_all_tensors:
        kwargs["experimental_preserve_all_tensors"] = True
    try:
        # LiteRT prints "INFO: Created TensorFlow Lite XNNPACK delegate" here, and warns that
        # keeping all tensors is meant for debugging (which is what it is asked for then).
        with quiet_stderr(), warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*experimental_preserve_all_tensors")
            interpreter = cls(**kwargs)
            interpreter.allocate_tensors()
    except (ValueError, RuntimeError) as err:
        detail = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        other = _other_model_format(path, content)
        if other:
            raise ModelError(f"cannot load model {path}: {other}") from None
        raise ModelError(
            f"cannot load model {path}: {detail}. Is it a complete .tflite file? "
            "Re-download or re-export it."
        ) from None
    return interpreter, package


_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"


def _other_model_format(path: Path, content: bytes) -> str | None:
    """What a file that failed to load is instead of TFLite, with the conversion, if it is known.

    A frozen graph or Keras weights given as ``--model`` was told to be re-downloaded as if it were
    a broken .tflite, which sends the user after the wrong fix.
    """
    if content[4:8] == b"TFL3":  # a TFLite file after all (cut short or damaged)
        return None
    if content.startswith(_HDF5_MAGIC):
        return (
            "it is Keras weights (HDF5), not a TFLite model; convert it with "
            f"python -m host_tools.export --weights {path} --out MODEL.tflite"
        )
    if path.suffix.lower() == ".pb":
        return (
            "it is a TensorFlow graph (.pb), not a TFLite model; an OD-API SSD graph converts "
            f"with python -m host_tools.import_weights --pb {path} --config NAME "
            "--out W.weights.h5, then python -m host_tools.export --weights W.weights.h5 "
            "--out MODEL.tflite (docs/training.md)"
        )
    return None


def _read_model_file(path: Path) -> bytes:
    """The model file's bytes, or a :class:`ModelError` saying what the path is instead."""
    if path.is_dir():
        if (path / "saved_model.pb").is_file():
            raise ModelError(
                f"model {path} is a TensorFlow SavedModel folder, not a .tflite file; the runtime "
                "reads TFLite: write one with python -m host_tools.export --weights W --out "
                "MODEL.tflite (the command that wrote this --saved-model writes both)"
            )
        inside = sorted(p.name for p in path.glob("*.tflite"))[:3]
        raise ModelError(
            f"model {path} is a directory, not a .tflite file; pass the model file itself"
            + (f" (it holds {', '.join(inside)})" if inside else "")
        )
    if path.exists() and not path.is_file():  # /dev/zero, a FIFO: never read (it could block)
        raise ModelError(
            f"model {path} is {file_kind(path.stat().st_mode)}, not a .tflite file; "
            "pass the model file itself"
        )
    if not path.is_file():
        raise ModelError(
            f"model not found: {path} (pass --model PATH, or run from a checkout that has models/)"
        )
    try:
        # The interpreter gets its own copy of the file, not a memory map of it: a model file
        # rewritten in place while the service runs (`cp new.tflite model.tflite`, then a
        # reload) would otherwise change under the running model, and the truncation kills the
        # process with SIGBUS at the next inference.
        content = path.read_bytes()
    except OSError as err:
        raise ModelError(f"cannot read model {path}: {err.strerror or err}") from None
    if not content:
        raise ModelError(f"model {path} is empty (0 bytes); re-download or re-export it")
    return content
