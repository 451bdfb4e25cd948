"""Entry points the `edgedetect` CLI wires up: `run --config FILE` and `check-config FILE`.

Both return a process exit code: 0 fine, 1 runtime failure (systemd restarts us), 2 a problem the
user must fix (config, model, source spec), reported as one `edgedetect: error: ...` line.
Also runnable as `python -m edgedetect.service run|check-config ...`.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import Any

from edgedetect.errors import EdgeDetectError


def _error(msg: str) -> int:
    print(f"edgedetect: error: {msg}", file=sys.stderr)
    return 2


def setup_logging(level: str = "info") -> None:
    """Log to stderr; under systemd (JOURNAL_STREAM set) journald adds the timestamps itself."""
    fmt = "%(levelname)s %(name)s: %(message)s"
    if not os.environ.get("JOURNAL_STREAM"):
        fmt = "%(asctime)s " + fmt
    logging.basicConfig(level=level.upper(), format=fmt, stream=sys.stderr, force=True)


def run_service(config_path: str | None = None, *, source: str | None = None, model: str | None = None,
                labels: str | None = None, threshold: float | None = None, preview: bool | None = None,
                listen: str | None = None, log_level: str | None = None) -> int:
    """Run the daemon until SIGTERM/SIGINT (0), a fatal runtime failure (1) or a user error (2).

    Keyword overrides take precedence over the file (same validation as the file's keys).
    """
    from edgedetect.service.daemon import make_service

    overrides: dict[str, Any] = {"source.spec": source, "model.path": model, "model.labels": labels,
                                 "model.threshold": threshold, "preview.enabled": preview,
                                 "http.listen": listen, "service.log_level": log_level}
    setup_logging(log_level or "info")
    try:
        service = make_service(config_path, overrides)
        service.start()
    except EdgeDetectError as e:
        return _error(str(e))
    try:
        return service.run()
    except EdgeDetectError as e:  # e.g. a reload that cannot bind; still stop cleanly
        service.shutdown()
        return _error(str(e))


def check_config(path: str) -> int:
    """Validate a config file (keys, types, values, files it names); print one line; 0 or 2."""
    from edgedetect.service.config import load_config

    try:
        cfg = load_config(path)
    except EdgeDetectError as e:
        return _error(str(e))
    print(f"{path}: OK (source {cfg['source']['spec']!r}, model "
          f"{cfg['model']['path'] or 'default'}, http {cfg['http']['listen'] if cfg['http']['enabled'] else 'off'})")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m edgedetect.service")
    sub = parser.add_subparsers(dest="cmd", required=True)
    run = sub.add_parser("run", help="run the service")
    run.add_argument("--config", default=None, help="TOML config (default /etc/edgedetect/config.toml)")
    run.add_argument("--source", default=None)
    run.add_argument("--model", default=None)
    run.add_argument("--labels", default=None)
    run.add_argument("--threshold", type=float, default=None)
    run.add_argument("--no-preview", dest="preview", action="store_const", const=False, default=None)
    run.add_argument("--listen", default=None)
    run.add_argument("--log-level", default=None)
    chk = sub.add_parser("check-config", help="validate a config file")
    chk.add_argument("path")
    args = parser.parse_args(argv)
    if args.cmd == "check-config":
        return check_config(args.path)
    return run_service(args.config, source=args.source, model=args.model, labels=args.labels,
                       threshold=args.threshold, preview=args.preview, listen=args.listen,
                       log_level=args.log_level)


if __name__ == "__main__":
    sys.exit(main())
