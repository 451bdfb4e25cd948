"""Entry points the `edgedetect` CLI wires up: `run --config FILE` and `check-config FILE`.

Both return a process exit code: 0 fine, 1 runtime failure (systemd restarts us), 2 a problem the
user must fix (config, model, source spec), reported as one `edgedetect: error: ...` line.
Also runnable as `python -m edgedetect.service run|check-config ...`.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from edgedetect.errors import EdgeDetectError

log = logging.getLogger("edgedetect.service")


def _error(msg: str) -> int:
    from edgedetect.service.config import redact

    print(f"edgedetect: error: {redact(msg)}", file=sys.stderr)
    return 2


class RedactingFilter(logging.Filter):
    """Hides URL passwords in every log record, from whichever module (sources, pipeline, ...)."""

    def filter(self, record: logging.LogRecord) -> bool:
        from edgedetect.service.config import redact

        message = record.getMessage()
        shown = redact(message)
        if shown != message:
            record.msg, record.args = shown, None
        return True


def setup_logging(level: str = "info") -> None:
    """Log to stderr; under systemd (JOURNAL_STREAM set) journald adds the timestamps itself."""
    fmt = "%(levelname)s %(name)s: %(message)s"
    if not os.environ.get("JOURNAL_STREAM"):
        fmt = "%(asctime)s " + fmt
    logging.basicConfig(level=level.upper(), format=fmt, stream=sys.stderr, force=True)
    for handler in logging.getLogger().handlers:
        handler.addFilter(RedactingFilter())


class _SignalsWhileLoading:
    """Keeps a SIGTERM, SIGINT or SIGHUP that arrives while the service loads (imports, config,
    model: a second or more on a Pi), which would otherwise kill it uncleanly (SIGHUP's default
    is to terminate), and hands them on once the service has its own handlers."""

    def __init__(self) -> None:
        self.stop = self.reload = False
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                signal.signal(sig, self._caught)

    def _caught(self, signum: int, frame: object) -> None:
        if signum == signal.SIGHUP:
            self.reload = True
        else:
            self.stop = True

    def hand_on(self, service: Any) -> None:
        if self.stop:
            log.info("a stop signal came while starting; stopping")
            service.request_stop()
        if self.reload:
            service.request_reload()


def run_service(
    config_path: str | None = None,
    *,
    source: str | None = None,
    model: str | None = None,
    labels: str | None = None,
    threshold: float | None = None,
    preview: bool | None = None,
    listen: str | None = None,
    log_level: str | None = None,
) -> int:
    """Run the daemon until SIGTERM/SIGINT (0), a fatal runtime failure (1) or a user error (2).

    Keyword overrides take precedence over the file (same validation as the file's keys).
    """
    early = _SignalsWhileLoading()  # before the imports below, which take a while on a Pi
    from edgedetect.runtime import native_logs_from
    from edgedetect.service.daemon import make_service

    overrides: dict[str, Any] = {
        "source.spec": source,
        "model.path": model,
        "model.labels": labels,
        "model.threshold": threshold,
        "preview.enabled": preview,
        "http.listen": listen,
        "service.log_level": log_level,
    }
    setup_logging(log_level or "info")
    native_logs_from(logging.DEBUG)  # "info" is the service's everyday level
    try:
        service = make_service(config_path, overrides)
        service.start()  # installs the service's own handlers first
    except EdgeDetectError as e:
        return _error(str(e))
    early.hand_on(service)
    try:
        code = service.run()
    except EdgeDetectError as e:  # e.g. a reload that cannot bind; still stop cleanly
        service.shutdown()
        return _error(str(e))
    return _error(service.fatal) if service.fatal else code  # e.g. a file it cannot read


def check_config(path: str) -> int:
    """A dry run of the service's start, short of opening a camera or binding a port; 0 or 2.

    Checks keys, types and ranges, the source spec (files and folders are opened, cameras and
    streams only parsed), the model, its labels and the class names, and that the events file
    and snapshot folder can be written or created (nothing is created). Errors are the service's
    own one-line messages.
    """
    from edgedetect.service.config import (
        exposed_without_token,
        left_off_warnings,
        load_config,
        redact,
    )
    from edgedetect.service.config_files import check_output_paths

    try:
        cfg = load_config(path)
        _check_source(cfg)
        _check_model(cfg)
        check_output_paths(cfg)
    except EdgeDetectError as e:
        return _error(str(e))
    if exposed_without_token(cfg):
        print(
            f"edgedetect: warning: {path}: [http] listen = {cfg.http.listen!r} without a token "
            "(allow_unauthenticated = true)",
            file=sys.stderr,
        )
    for line in left_off_warnings(cfg):
        print(f"edgedetect: warning: {path}: {line}", file=sys.stderr)
    print(
        f"{path}: OK (source {redact(cfg.source.spec)!r}, model "
        f"{cfg.model.path or 'default'}, http {cfg.http.listen if cfg.http.enabled else 'off'})"
    )
    return 0


def _check_source(cfg: Any) -> None:
    """Parse the spec as `open_source` would; open files and folders and decode a frame, never
    open a camera or a stream."""
    from edgedetect.errors import SourceError
    from edgedetect.sources import SPEC_HELP, STREAM_SCHEMES, check_stream_url, parse_size

    spec = cfg.source.spec.strip()
    low = spec.lower()
    try:
        if low.startswith("picam:"):
            parse_size(spec[6:], f"source {spec!r}")
        elif low.startswith("usb:"):
            if not spec[4:].isdigit():
                raise SourceError(f"bad USB camera spec {spec!r}: write usb:N, e.g. usb:0")
        elif low.startswith(STREAM_SCHEMES):
            check_stream_url(spec)
        elif "://" in spec:
            raise SourceError(f"unknown source spec {spec!r}", hint=SPEC_HELP)
        elif low != "picam":
            _check_file_source(spec, cfg.source.loop, cfg.where)
    except EdgeDetectError as e:
        raise type(e)(f"{cfg.where}: [source] spec: {e}") from None


# check-config decodes at most this many images of a folder looking for one that reads: enough
# to catch a folder of wrong files, bounded for a folder of thousands.
CHECK_IMAGES_MAX = 20


def _check_file_source(spec: str, loop: bool, where: str) -> None:
    """Open a file or folder source and decode from it, as the service's first read would: an
    image or video that cannot be decoded fails here, not in a retry loop at run time."""
    from edgedetect.sources import ImageFilesSource, open_source

    source = open_source(spec, loop=loop, lores_size=None)
    try:
        if isinstance(source, ImageFilesSource):
            _check_some_image_reads(spec, source.paths, where)
        else:
            source.read()  # a video's first frame: raises if it cannot be decoded
    finally:
        source.close()


def _check_some_image_reads(spec: str, paths: list[Path], where: str) -> None:
    """ImageError unless one of the first `CHECK_IMAGES_MAX` images decodes (one image: its own
    reason); when none of those does but more are left, a warning (the service skips them)."""
    from edgedetect.errors import ImageError
    from edgedetect.images import read_bgr
    from edgedetect.sources import first_names, no_readable_image

    if len(paths) == 1:
        read_bgr(paths[0])
        return
    tried = paths[:CHECK_IMAGES_MAX]
    for path in tried:
        try:
            read_bgr(path)
            return
        except ImageError:
            continue
    if len(paths) == len(tried):
        raise no_readable_image(spec, tried)
    print(
        f"edgedetect: warning: {where}: [source] spec {spec!r}: the first {len(tried)} of "
        f"{len(paths)} images ({first_names(tried)}) could not be decoded; the service skips "
        "unreadable ones",
        file=sys.stderr,
    )


def _check_model(cfg: Any) -> None:
    """Load the model and labels and resolve the class names, as the service's start does."""
    from edgedetect.service.daemon import build_config_detector

    build_config_detector(cfg)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m edgedetect.service")
    sub = parser.add_subparsers(dest="cmd", required=True)
    run = sub.add_parser("run", help="run the service")
    run.add_argument(
        "--config", default=None, help="TOML config (default /etc/edgedetect/config.toml)"
    )
    run.add_argument("--source", default=None)
    run.add_argument("--model", default=None)
    run.add_argument("--labels", default=None)
    run.add_argument("--threshold", type=float, default=None)
    run.add_argument(
        "--no-preview", dest="preview", action="store_const", const=False, default=None
    )
    run.add_argument("--listen", default=None)
    run.add_argument("--log-level", default=None)
    chk = sub.add_parser("check-config", help="validate a config file")
    chk.add_argument("path")
    args = parser.parse_args(argv)
    if args.cmd == "check-config":
        return check_config(args.path)
    return run_service(
        args.config,
        source=args.source,
        model=args.model,
        labels=args.labels,
        threshold=args.threshold,
        preview=args.preview,
        listen=args.listen,
        log_level=args.log_level,
    )


if __name__ == "__main__":
    sys.exit(main())
