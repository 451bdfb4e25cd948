"""The ``edgedetect`` command: ``detect``, ``run``, ``bench``, ``check-config``.

Every error a user can cause ends as one line ``edgedetect: error: ...`` on stderr and exit code
2 (never a traceback); Ctrl-C stops the pipeline cleanly and exits 130.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import shlex
import signal
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgedetect import __version__
from edgedetect.errors import ConfigError, EdgeDetectError, ImageError

if TYPE_CHECKING:
    from typing import TypeAlias

    import numpy as np

    from edgedetect.detections import Detections
    from edgedetect.sources import FrameSource

    # What ``ArgumentParser.add_subparsers`` returns; argparse keeps the class private.
    Subparsers: TypeAlias = argparse._SubParsersAction[argparse.ArgumentParser]

log = logging.getLogger("edgedetect")

EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130


class _NotGiven:
    """The default of a ``run`` option the user did not give (see ``RUN_DEFAULTS``)."""

    def __repr__(self) -> str:
        return "<not given>"


NOT_GIVEN: Any = _NotGiven()
# `run` options whose defaults are filled in only without --config (the service reads the file)
RUN_DEFAULTS: dict[str, Any] = {"threshold": 0.5, "classes": ("person",), "tiles": "off"}


# ----------------------------------------------------------------------------- argument types
# (threshold and positive_int are the host tools' argument types too: host_tools/_cli.py)
def threshold(text: str) -> float:
    """A score threshold in 0..1."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number (use e.g. 0.5)") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{text} is outside 0..1 (use e.g. 0.5)")
    return value


def whole_number(text: str) -> int:
    """``text`` as an int, or the argparse error every whole-number option gives."""
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None


def positive_int(text: str) -> int:
    """A whole number >= 1 (``--frames``, ``--steps``, ``--batch-size`` ...)."""
    value = whole_number(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} must be at least 1")
    return value


def path_arg(text: str) -> str:
    """A file or folder path: not empty (an unset variable in a script would otherwise read as
    the option left out, or as the current folder)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("empty path: name a file or folder")
    return text


def _bench_frames(text: str) -> int:
    """``bench --frames``: at least 10, the bench's own minimum (edgedetect.bench)."""
    value = whole_number(text)
    if value < 10:
        raise argparse.ArgumentTypeError(
            f"{text} is too few: must be at least 10 for percentiles to mean anything"
        )
    return value


def thread_count(text: str) -> int:
    """Interpreter threads, bounded like the service's `[model] threads` (1..2 x CPU count)."""
    value = positive_int(text)
    limit = (os.cpu_count() or 1) * 2
    if value > limit:
        raise argparse.ArgumentTypeError(
            f"{text} is too many: must be between 1 and {limit} (2 x CPU count)"
        )
    return value


def _classes(text: str) -> tuple[str, ...] | None:
    names = tuple(c.strip() for c in text.split(",") if c.strip())
    if not names:
        raise argparse.ArgumentTypeError("empty class list (use e.g. person,car or all)")
    return None if names == ("all",) else names


def _add_model_args(p: argparse.ArgumentParser, *, threads_default: str) -> None:
    p.add_argument(
        "--model",
        type=path_arg,
        metavar="M",
        default=None,
        help="TFLite model (default: models/person_ssdlite_int8.tflite)",
    )
    p.add_argument(
        "--labels",
        type=path_arg,
        metavar="L",
        default=None,
        help="label file (default: the one beside the model, or its metadata)",
    )
    p.add_argument(
        "--threshold",
        metavar="T",
        type=threshold,
        default=0.5,
        help="minimum score, 0..1 (default 0.5)",
    )
    p.add_argument(
        "--classes",
        metavar="C",
        type=_classes,
        default=("person",),
        help="comma-separated labels to keep, or 'all' (default: person)",
    )
    p.add_argument(
        "--threads",
        metavar="N",
        type=thread_count,
        default=None,
        help=f"interpreter threads (default: {threads_default})",
    )


def _tiles(text: str) -> str:
    from edgedetect.tiling import parse_tiles  # noqa: PLC0415

    try:
        parse_tiles(text)
    except EdgeDetectError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return text


def _add_tiles_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--tiles",
        metavar="RxC",
        type=_tiles,
        default="off",
        help="also detect on RxC overlapping tiles, for small far-away people "
        "(e.g. 2x2: about 5x the inference time; default off)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="edgedetect",
        description="Real-time person detection with TFLite SSD models on the Raspberry Pi.",
    )
    parser.add_argument("--version", action="version", version=f"edgedetect {__version__}")
    parser.add_argument(
        "-v", "--verbose", action="count", default=0, help="more logging (-v info, -vv debug)"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    _add_detect_parser(sub)
    _add_run_parser(sub)
    _add_bench_parser(sub)
    p = sub.add_parser("check-config", help="validate a service config file")
    p.add_argument("file", metavar="FILE")
    return parser


def _add_detect_parser(sub: Subparsers) -> None:
    p = sub.add_parser("detect", help="detect objects in image files")
    p.add_argument("images", nargs="+", metavar="IMAGE", type=path_arg)
    _add_model_args(p, threads_default="all CPUs")
    _add_tiles_arg(p)
    p.add_argument("--json", action="store_true", help="one JSON object per image on stdout")
    p.add_argument(
        "--save-dir",
        type=path_arg,
        metavar="D",
        default=None,
        help="write each image with its boxes drawn to D/<name>.detections.jpg",
    )


def _add_run_parser(sub: Subparsers) -> None:
    p = sub.add_parser("run", help="run the live pipeline on a camera, stream, video or folder")
    p.add_argument(
        "--source",
        metavar="S",
        default=None,
        help="picam, usb:N, file:PATH, dir:PATH, rtsp://..., a glob or a path "
        "(default: picam on a Pi with a camera, else the bundled sample)",
    )
    _add_model_args(p, threads_default="CPUs - 1, leaving a core to capture and draw")
    _add_tiles_arg(p)
    _add_run_output_args(p)
    _add_run_pacing_args(p)
    p.add_argument(
        "--config",
        metavar="FILE",
        default=None,
        help="run the service with this config file instead (see check-config)",
    )
    # The service takes these from its config file: unset unless given, so that `run --config`
    # can refuse them instead of ignoring them; `run` without --config fills in RUN_DEFAULTS.
    p.set_defaults(**dict.fromkeys(RUN_DEFAULTS, NOT_GIVEN))


def _add_run_output_args(p: argparse.ArgumentParser) -> None:
    """When `run` stops and what it writes besides the preview window."""
    p.add_argument(
        "--max-frames",
        metavar="N",
        type=positive_int,
        default=None,
        help="stop after N captured frames",
    )
    p.add_argument(
        "--output",
        type=path_arg,
        metavar="FILE",
        default=None,
        help="write the annotated video (.mp4, .avi)",
    )
    p.add_argument(
        "--events",
        type=path_arg,
        metavar="FILE",
        default=None,
        help="append one JSON line per frame with detections",
    )
    p.add_argument("--no-preview", action="store_true", help="never open a window")


def _add_run_pacing_args(p: argparse.ArgumentParser) -> None:
    """How `run` paces files and opens cameras: the options that only some sources read."""
    mode = p.add_mutually_exclusive_group()
    mode.add_argument(
        "--every-frame",
        action="store_true",
        help="files/folders: process every frame as fast as possible "
        "(default when there is no preview window)",
    )
    mode.add_argument(
        "--realtime",
        action="store_true",
        help="files/folders: play at the file's fps and drop frames the detector "
        "cannot keep up with, like a camera (default with a preview window)",
    )
    p.add_argument(
        "--size",
        metavar="WxH",
        default=None,
        help="camera capture size for picam/usb, e.g. 1280x720",
    )
    p.add_argument(
        "--wait-for-source",
        action="store_true",
        help="cameras/streams: if the source cannot be opened at start, keep retrying "
        "with backoff instead of exiting (a dropped source is always reopened)",
    )


def _add_bench_parser(sub: Subparsers) -> None:
    p = sub.add_parser("bench", help="benchmark bare interpreter vs. pipeline vs. naive loop")
    _add_model_args(p, threads_default="CPUs - 1")
    p.add_argument(
        "--source",
        metavar="S",
        default=None,
        help="a video file or folder (default: a clip rendered from scikit-image "
        "photos; without scikit-image, as on a Pi, the bundled sample data/sample.mp4)",
    )
    p.add_argument(
        "--frames",
        metavar="N",
        type=_bench_frames,
        default=200,
        help="frames per measurement (default 200)",
    )
    p.add_argument(
        "--rounds",
        metavar="R",
        type=positive_int,
        default=3,
        help="interleave the methods in R rounds, so load changes hit all alike",
    )
    p.add_argument(
        "--no-camera",
        action="store_true",
        help="skip the simulated-camera scenario (frames arriving at 30 fps)",
    )
    p.add_argument("--json", action="store_true", help="print the JSON report")


def _setup_logging(verbose: int) -> None:
    level = logging.WARNING if verbose <= 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(
        level=level, format="edgedetect: %(levelname)s: %(message)s", stream=sys.stderr
    )


def _detector(args: argparse.Namespace, *, pipeline: bool, **overrides: Any) -> Any:
    """The detector the options ask for. Threads default to every CPU for one-shot ``detect``
    and to one fewer for the pipeline, whose capture and output threads need a core too."""
    from edgedetect.detector import Detector  # noqa: PLC0415 - `--help` must not load LiteRT

    cpus = os.cpu_count() or 2
    threads = args.threads or (max(1, cpus - 1) if pipeline else cpus)
    kwargs: dict[str, Any] = {
        "model_path": args.model,
        "labels": args.labels,
        "threshold": args.threshold,
        "classes": args.classes,
        "num_threads": threads,
    }
    kwargs.update(overrides)
    from edgedetect.tiling import with_tiles  # noqa: PLC0415

    return with_tiles(Detector(**kwargs), getattr(args, "tiles", "off"))


# ----------------------------------------------------------------------------- detect
def make_folder(folder: Path, option: str) -> None:
    """Create an output folder (and its parents), or one line naming the file in the way."""
    from edgedetect.linefile import file_kind  # noqa: PLC0415

    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        # EEXIST / ENOTDIR: the folder or one above it is a file (or a device, a FIFO ...)
        file = next((p for p in (folder, *folder.parents) if p.exists() and not p.is_dir()), None)
        if file is None:
            why = f"{exc.strerror}; pick a folder you can write"
        elif file.is_file():
            why = f"{file} is a file, not a folder"
        else:
            why = f"{file} is {file_kind(file.stat().st_mode)}, not a folder; name a folder"
        raise EdgeDetectError(f"cannot create {option} {folder}: {why}") from None
    _check_folder_writable(folder, option)


def _check_folder_writable(folder: Path, option: str) -> None:
    """Write and remove a probe file in ``folder``, so that a read-only folder (or file system)
    is said before the model loads and before any result is printed, not at the first save."""
    import tempfile  # noqa: PLC0415

    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        raise EdgeDetectError(
            f"cannot write to {option} {folder}: {exc.strerror or exc}; pick a writable folder"
        ) from None


def cmd_detect(args: argparse.Namespace) -> int:
    from edgedetect.images import read_bgr  # noqa: PLC0415

    paths = _detect_paths(args.images)
    save_dir = Path(args.save_dir) if args.save_dir else None
    if save_dir is not None:
        make_folder(save_dir, "--save-dir")
    detector = _detector(args, pipeline=False)
    detector.warm_up()  # the first invoke() sets up XNNPACK and would inflate the first latency_ms
    used_names: set[str] = set()
    for path in paths:
        image = read_bgr(path)
        t0 = time.perf_counter()
        detections = detector.detect(image)
        latency_ms = (time.perf_counter() - t0) * 1000.0
        saved = None  # written before the line is printed, so the line names a whole file
        if save_dir is not None:
            saved = save_dir / _saved_name(path, used_names)
            _save_drawn(saved, save_dir, image, detections)
        _print_detections(path, image, latency_ms, detections, as_json=args.json, saved=saved)
    return 0


def _detect_paths(images: Sequence[str]) -> list[Path]:
    """The image paths, checked before the model loads or anything is printed."""
    from edgedetect.images import check_file  # noqa: PLC0415
    from edgedetect.sources import STREAM_SCHEMES, redact  # noqa: PLC0415

    for text in images:  # Path() would fold rtsp://h/s into rtsp:/h/s: "not found"
        if text.strip().lower().startswith(STREAM_SCHEMES):
            raise ImageError(
                f"detect reads image files, not a stream: {redact(text)!r}; for a stream run "
                f"edgedetect run --source '{redact(text)}'"
            )
    paths = [Path(p) for p in images]
    for p in paths:  # fail before loading the model or printing anything
        if not p.exists() and any(c in str(p) for c in "*?["):  # quoted: no shell expanded it
            raise ImageError(
                f"image not found: {p} (a pattern no shell expanded); leave it unquoted "
                f"(edgedetect detect {p}), or run on the matches with "
                f"edgedetect run --source '{p}'"
            )
        check_file(p, "image")  # "not found" or "is a directory", naming the path
    return paths


def _print_detections(
    path: Path,
    image: np.ndarray,
    latency_ms: float,
    detections: Detections,
    as_json: bool,
    saved: Path | None = None,
) -> None:
    """One line an image on stdout: a JSON object with --json, else a readable summary.

    ``saved``: the --save-dir file of this image, in the JSON (numbered names like x-2 could not
    be told apart from the line otherwise)."""
    h, w = image.shape[:2]
    if as_json:
        obj: dict[str, object] = {
            "image": str(path),
            "width": w,
            "height": h,
            "latency_ms": round(latency_ms, 2),
            "detections": detections.to_json(),
        }
        if saved is not None:
            obj["saved"] = str(saved)
        print(json.dumps(obj), flush=True)
        return
    items = ", ".join(
        f"{d['label']} {d['score']:.2f} [{', '.join(f'{v:.0f}' for v in d['box'])}]"
        for d in detections.to_json()
    )
    print(
        f"{path}: {w}x{h}, {latency_ms:.1f} ms, {len(detections)} detection"
        f"{'' if len(detections) == 1 else 's'}{': ' + items if items else ''}",
        flush=True,
    )


def _saved_name(path: Path, used_names: set[str]) -> str:
    """The --save-dir file name of an image: two images of the same name from two folders are
    numbered, the later ones, instead of overwriting each other."""
    name, n = f"{path.stem}.detections.jpg", 1
    while name in used_names:
        n += 1
        name = f"{path.stem}-{n}.detections.jpg"
    used_names.add(name)
    return name


def _save_drawn(out: Path, save_dir: Path, image: np.ndarray, detections: Detections) -> None:
    """Write the image with its boxes drawn, whole or not at all, or one line saying why not."""
    import cv2  # noqa: PLC0415

    from edgedetect.images import write_whole  # noqa: PLC0415
    from edgedetect.overlay import draw_detections  # noqa: PLC0415

    # encoded here and written by Python: cv2.imwrite crashes on a name that is not UTF-8
    ok, jpeg = cv2.imencode(".jpg", draw_detections(image, detections))
    try:
        if not ok:
            raise OSError("JPEG encoding failed")
        write_whole(out, jpeg.tobytes())  # never half a JPEG under its name
    except OSError as exc:
        raise EdgeDetectError(
            f"cannot write {out}: {exc.strerror or exc}; check that {save_dir} is "
            "writable and its disk has room"
        ) from None


# ----------------------------------------------------------------------------- run
def _run_service(args: argparse.Namespace) -> int:
    if not args.config.strip():
        raise ConfigError(
            "--config is empty: give the path of the service's TOML file "
            "(e.g. /etc/edgedetect/config.toml), or leave --config out to run the pipeline alone"
        )
    clashing = [
        f"--{name.replace('_', '-')}"
        for name in (
            "source",
            "model",
            "labels",
            "threads",
            "max_frames",
            "output",
            "events",
            "size",
        )
        if getattr(args, name) is not None
    ]
    clashing += [f"--{name}" for name in RUN_DEFAULTS if getattr(args, name) is not NOT_GIVEN]
    for flag in ("wait_for_source", "every_frame", "realtime"):
        if getattr(args, flag):
            clashing.append(f"--{flag.replace('_', '-')}")
    if clashing:
        raise ConfigError(
            f"--config runs the service, which takes its settings from {args.config}; "
            f"remove {', '.join(clashing)} (or set them in the file)"
        )
    run_service = _service_function("run_service")
    return int(run_service(args.config, preview=False if args.no_preview else None))


def _service_function(name: str) -> Any:
    try:
        from edgedetect.service import cli as service_cli  # noqa: PLC0415 - optional part
    except ImportError as exc:
        raise EdgeDetectError(
            f"the edgedetect service is not available in this install ({exc}); "
            "install the full package to use run --config and check-config"
        ) from None
    return getattr(service_cli, name)


def _choose_mode(args: argparse.Namespace, source: Any, preview: bool) -> tuple[bool, float | None]:
    """(every_frame, pace) for a source: what a user expects from each kind (docs/pipeline.md)."""
    if source.live:
        from edgedetect.sources import redact  # noqa: PLC0415

        if args.every_frame:  # said, not silently dropped: the user asked for every frame
            log.warning(
                "--every-frame is ignored for the live source %s: a camera or stream cannot "
                "wait for the detector, so the newest frame wins (it applies to files and folders)",
                redact(source.spec),
            )
        return False, None  # cameras and streams: newest frame wins, the device sets the pace
    realtime = args.realtime or (preview and not args.every_frame)
    if realtime:
        return False, source.fps or 2.0  # still images: 2 per second, so each can be seen
    return True, None


def _open_run_source(spec: str, opener: Callable[[str], FrameSource], *, wait: bool) -> FrameSource:
    """The source of ``run``: a live one wrapped so that it is reopened when it drops.

    Fails fast (the opener's error, exit 2) when the source cannot be opened now, unless
    ``wait``. Files and folders are read directly: they end rather than drop, and the wrapper's
    reader thread would only make their frames wait.
    """
    from edgedetect.resilient import ResilientSource  # noqa: PLC0415

    wrapped = ResilientSource(spec, opener, reconnect_max_s=10.0)
    try:
        wrapped.open(wait=wait)
    except BaseException:
        wrapped.close()
        raise
    return wrapped if wrapped.live else wrapped.detach()


def _sigterm_as_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def cmd_run(args: argparse.Namespace) -> int:
    """``edgedetect run``: the service with ``--config``, else one pipeline on one source."""
    if args.config is not None:  # "" too: an unset variable, never the plain pipeline
        return _run_service(args)
    for name, value in RUN_DEFAULTS.items():
        if getattr(args, name) is NOT_GIVEN:
            setattr(args, name, value)
    # SIGTERM (systemd, kill) becomes an interrupt from here on, as Ctrl-C: while the model loads
    # or --wait-for-source waits, too, not only once frames flow (it killed the process there).
    previous = signal.signal(signal.SIGTERM, _sigterm_as_interrupt)
    try:
        return _run_pipeline(args)
    finally:
        signal.signal(signal.SIGTERM, previous)


def _run_pipeline(args: argparse.Namespace) -> int:
    """``edgedetect run`` without ``--config``: one pipeline on one source."""
    from edgedetect.pipeline import Pipeline  # noqa: PLC0415
    from edgedetect.preview import PreviewSink  # noqa: PLC0415
    from edgedetect.sources import redact  # noqa: PLC0415

    spec, detector, source = _open_run(args)
    try:
        preview = _wants_preview(args)
        every_frame, pace = _choose_mode(args, source, preview)
        sinks = _run_sinks(args, source.fps or pace or 10.0, realtime=not every_frame)
        persons = _PersonFrames()
        viewer = PreviewSink() if preview else None
        pipeline = Pipeline(
            source,
            detector,
            [*sinks, persons, *([viewer] if viewer else [])],
            every_frame=every_frame,
            pace=pace,
            max_frames=args.max_frames,
        )
    except BaseException:  # a SIGTERM too: the source is closed before the one line
        source.close()
        raise
    log.info(
        "source %s (%s), mode %s%s, model %s",
        redact(spec),
        "live" if source.live else "offline",
        "every-frame" if every_frame else "latest",
        f", paced at {pace:g} fps" if pace else "",
        detector.model_path,
    )
    t0 = time.monotonic()
    interrupted = _drive(pipeline, source, viewer)
    stats = pipeline.stats()
    if pipeline.error is not None and not interrupted:
        raise pipeline.error
    _print_summary(stats, time.monotonic() - t0, persons.frames, interrupted)
    if stats["sink_errors"]:
        log.warning("%d sink errors: %s", stats["sink_errors"], stats["sink_errors_by_sink"])
    if interrupted:
        return EXIT_INTERRUPTED
    return _sink_failure_code(sinks, stats["sink_errors_by_sink"])


def _open_run(args: argparse.Namespace) -> tuple[str, Any, FrameSource]:
    """Check ``run``'s options, then load the model and open the source (model first: a bad
    model is reported before a camera is claimed). Returns (spec, detector, source)."""
    from edgedetect.sources import default_source_spec, open_source, parse_size  # noqa: PLC0415
    from edgedetect.tiling import lores_size  # noqa: PLC0415

    size = parse_size(args.size, "--size") if args.size else None
    if args.source is not None and not args.source.strip():
        raise ConfigError(
            "--source is empty: name a camera, file or folder (e.g. --source usb:0), "
            "or leave the option out for the default"
        )
    if args.output:
        _check_writable(Path(args.output), "--output")
        if args.events and os.path.realpath(args.output) == os.path.realpath(args.events):
            raise ConfigError(
                f"--output and --events name the same file {args.output}: the video would "
                "replace the events; give each its own (e.g. --events events.jsonl)"
            )
    spec = args.source or default_source_spec()
    if size:
        _warn_size_ignored(spec)
    detector = _detector(args, pipeline=True)
    lores = lores_size(detector)
    source = _open_run_source(
        spec, lambda s: open_source(s, size=size, lores_size=lores), wait=args.wait_for_source
    )
    try:
        _refuse_writing_over_input(source, {"--output": args.output, "--events": args.events})
    except BaseException:
        source.close()
        raise
    return spec, detector, source


def _warn_size_ignored(spec: str) -> None:
    """``--size`` sets a camera's capture size only; a file, folder or stream kept its own size
    without a word, so a user asking for 320x240 frames believed they got them."""
    low = spec.strip().lower()
    if low == "picam" or low.startswith("usb:"):
        return
    if low.startswith("picam:"):
        why = "the size in the spec wins"
    else:
        why = "it is read at its own size"
    log.warning(
        "--size is ignored for source %r: it sets the capture size of picam and usb:N only; %s",
        spec,
        why,
    )


def _refuse_writing_over_input(source: FrameSource, outputs: dict[str, str | None]) -> None:
    """``--output in.mp4 --source in.mp4`` would destroy the input it is reading."""
    inputs = [p for p in source.input_files() if p.exists()]
    for option, out in outputs.items():
        if out and Path(out).exists() and any(os.path.samefile(out, p) for p in inputs):
            raise ConfigError(
                f"{option} {out} is the file the source reads: writing it would destroy the "
                "input; name another file"
            )


def _wants_preview(args: argparse.Namespace) -> bool:
    """A preview unless ``--no-preview``; where no display can show one, say so and run headless."""
    if args.no_preview:
        return False
    from edgedetect.preview import display_available  # noqa: PLC0415

    preview, why = display_available()
    if not preview:
        print(
            f"edgedetect: {why}: running headless (pass --no-preview to silence this)",
            file=sys.stderr,
        )
    return preview


def _run_sinks(args: argparse.Namespace, fps: float, *, realtime: bool) -> list[_CountedSink]:
    """The files ``run`` was asked to write (``--output`` video, ``--events`` JSONL)."""
    from edgedetect.writers import JsonlSink, VideoWriterSink  # noqa: PLC0415

    sinks = []
    if args.output:
        sinks.append(_CountedSink(VideoWriterSink(args.output, fps, realtime=realtime)))
    if args.events:
        sinks.append(_CountedSink(JsonlSink(args.events)))
    return sinks


class _PersonFrames:
    """A sink that counts the frames with at least one detection, for the closing summary."""

    def __init__(self) -> None:
        self.frames = 0

    def __call__(self, result: Any) -> None:
        if len(result.detections):
            self.frames += 1


def _drive(pipeline: Any, source: FrameSource, viewer: Any) -> bool:
    """Run the pipeline to its end, a quit key in the preview, Ctrl-C or SIGTERM; True if
    interrupted. SIGTERM (systemd, kill) is an interrupt here (``cmd_run`` makes it one), so that
    files are closed cleanly."""
    from edgedetect.preview import show_until_done  # noqa: PLC0415

    interrupted = False
    try:
        pipeline.start()
        quit_by_user = False
        if viewer is not None:
            quit_by_user = show_until_done(viewer, lambda: not pipeline.wait(0), pipeline.stop)
        while not quit_by_user and not pipeline.wait(0.2):  # short waits: Ctrl-C seen promptly
            pass
    except KeyboardInterrupt:
        interrupted = True
    finally:
        if source.live:  # the reconnecting wrapper: its close() ends a read waiting for a reopen
            source.close()
        pipeline.stop()
    return interrupted


def _print_summary(
    stats: dict[str, Any], elapsed: float, person_frames: int, interrupted: bool
) -> None:
    """The run's last line; a frame or result in flight at the stop is said too, so that the
    inferred ones add up (an interrupted run printed "66 frames ..., inferred 67")."""
    fps = stats["output"] / elapsed if elapsed > 0 else 0
    at_stop = stats.get("discarded_at_stop", 0)
    print(
        f"edgedetect: {stats['output']} frames in {elapsed:.1f} s "
        f"({fps:.1f} fps), inferred {stats['inferred']}, "
        f"dropped {sum(stats['dropped'].values())}"
        + (f" (+{at_stop} in flight at the stop)" if at_stop else "")
        + f"; detections in {person_frames} frames"
        + (" (interrupted)" if interrupted else ""),
        file=sys.stderr,
    )


class _CountedSink:
    """An output sink of ``run`` (video, events) whose failures are counted here, one log line each
    time the count reaches 1, 10, 100, ... (a disk that is full stays full: no traceback per frame),
    so that the command can exit non-zero when nothing it was asked to write got written."""

    def __init__(self, sink: Any) -> None:
        self.sink = sink
        self.name = getattr(sink, "name", type(sink).__name__)
        self.ok = 0
        self.failed = 0

    def __call__(self, result: Any) -> None:
        try:
            self.sink(result)
        except Exception as exc:  # noqa: BLE001 - reported below and by the exit code
            self.failed += 1
            if math.log10(self.failed).is_integer():
                log.error(
                    "%s output failed on frame %d (%d so far): %s",
                    self.name,
                    result.frame.id,
                    self.failed,
                    exc,
                )
            return
        self.ok += 1

    def close(self) -> None:
        close = getattr(self.sink, "close", None)
        if callable(close):
            close()


def _sink_failure_code(sinks: list[Any], close_errors: dict[str, int]) -> int:
    """1 when an output file lost anything: frames its sink failed on, or a failed close (a
    video without its index); the file is incomplete, so the command must not exit 0."""
    for sink in sinks:
        if not isinstance(sink, _CountedSink):
            continue
        closed_badly = close_errors.get(sink.name, 0) > 0  # per-frame errors are counted here
        if sink.failed and not sink.ok:
            why = f"failed on every frame ({sink.failed})"
        elif sink.failed:
            why = f"failed on {sink.failed} of {sink.failed + sink.ok} frames"
        elif closed_badly:
            why = "failed to finish its file"
        else:
            continue
        print(
            f"edgedetect: error: the {sink.name} sink {why}; see the log above",
            file=sys.stderr,
        )
        return 1
    return 0


def _check_writable(path: Path, option: str) -> None:
    """Fail before any frame if `path` cannot be created (missing folder, /proc, read-only)."""
    existed = path.exists()
    if path.is_dir():
        raise ConfigError(f"{option} {path} is a folder: name a file, e.g. {path / 'out.mp4'}")
    if existed and not path.is_file():  # opening a FIFO to write would wait for a reader
        from edgedetect.linefile import file_kind  # noqa: PLC0415

        raise ConfigError(
            f"{option} {path} is not a regular file ({file_kind(path.stat().st_mode)}); name a file"
        )
    from edgedetect.writers import check_parent_folder  # noqa: PLC0415

    check_parent_folder(path, option)
    try:
        with open(path, "ab"):
            pass
    except OSError as exc:
        raise ConfigError(
            f"cannot write {option} {path}: {exc.strerror}; pick a writable folder"
        ) from None
    if not existed:
        path.unlink(missing_ok=True)


# ----------------------------------------------------------------------------- bench, config
def cmd_bench(args: argparse.Namespace) -> int:
    from edgedetect.bench import format_report, run_benchmark  # noqa: PLC0415

    report = run_benchmark(
        args.model,
        args.labels,
        args.source,
        args.frames,
        args.threads,
        camera=not args.no_camera,
        rounds=args.rounds,
        threshold=args.threshold,
        classes=args.classes,
    )
    print(json.dumps(report, indent=2) if args.json else format_report(report), flush=True)
    return 0


def cmd_check_config(args: argparse.Namespace) -> int:
    return int(_service_function("check_config")(args.file))


COMMANDS = {
    "detect": cmd_detect,
    "run": cmd_run,
    "bench": cmd_bench,
    "check-config": cmd_check_config,
}


def _printable_stdout() -> None:
    """Let stdout print any file name. Python holds a name that is not UTF-8 (Latin-1 bytes from
    an old camera or a Windows zip) as lone surrogates; in a UTF-8 locale such as a Pi's
    en_GB.UTF-8, stdout refuses them (stderr escapes them), so printing the result line for such
    an image crashed after the work was done. They are printed escaped, as errors print them."""
    reconfigure = getattr(sys.stdout, "reconfigure", None)
    if callable(reconfigure) and getattr(sys.stdout, "errors", None) == "strict":
        reconfigure(errors="backslashreplace")


def _shell_expanded_source(args: argparse.Namespace, extra: list[str]) -> str | None:
    """The message for ``--source imgs/*.jpg`` left unquoted, which the shell expands into
    many files: argparse would only call the second and later files unrecognized arguments.
    None when ``extra`` is not that (argparse's own message then)."""
    source = getattr(args, "source", None)
    if args.command not in ("run", "bench") or not source or source.startswith("-"):
        return None
    paths = [Path(source), *(Path(e) for e in extra)]
    if any(e.startswith("-") for e in extra) or not all(os.path.lexists(p) for p in paths):
        return None
    folders = {str(p.parent) for p in paths}
    folder = folders.pop() if len(folders) == 1 else "FOLDER"
    suffixes = {p.suffix for p in paths}
    pattern = f"{folder}/*{suffixes.pop() if len(suffixes) == 1 else ''}"
    return (
        f"--source takes one source, but {len(paths)} files were given ({source}, "
        f"{extra[0]}{', ...' if len(extra) > 1 else ''}), as when the shell expands an "
        f"unquoted pattern; quote it (--source {shlex.quote(pattern)}) or pass the folder "
        f"(--source {shlex.quote(folder)})"
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``edgedetect`` console script; returns the exit code."""
    _printable_stdout()
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:
        expanded = _shell_expanded_source(args, extra)
        if expanded is None:
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
        print(f"edgedetect: error: {expanded}", file=sys.stderr)
        return EXIT_USER_ERROR
    _setup_logging(args.verbose)
    try:
        return COMMANDS[args.command](args)
    except EdgeDetectError as exc:
        print(f"edgedetect: error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("edgedetect: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # `edgedetect detect ... | head`
        return 0
    except Exception as exc:  # a bug, not bad input: one line, traceback only with -v
        if args.verbose:
            log.exception("internal error")
        print(
            f"edgedetect: internal error: {type(exc).__name__}: {exc} (run with -v for the "
            "traceback)",
            file=sys.stderr,
        )
        return 1


if __name__ == "__main__":
    sys.exit(main())
