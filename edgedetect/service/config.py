"""Service configuration: one TOML file, every key defaulted, every error one precise line.

The schema below is the single source of truth: `load_config` validates against it, and
`systemd/config.example.toml` documents the same keys (a test keeps the two in sync).
Validation is hand-written (a few dozen lines) rather than pulling in pydantic/jsonschema:
the Pi image stays small and the messages can name the file, the section and the key.
"""

from __future__ import annotations

import copy
import difflib
import math
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgedetect.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

DEFAULT_CONFIG_PATH = "/etc/edgedetect/config.toml"


@dataclass(frozen=True)
class Key:
    """One config key: its default, accepted types and an optional value check."""

    default: Any
    types: tuple[type, ...]
    check: Callable[[Any], str | None] | None = None  # returns an error text or None
    doc: str = ""


def _positive(v: Any) -> str | None:
    return None if v > 0 else "must be > 0"


def _non_negative(v: Any) -> str | None:
    return None if v >= 0 else "must be >= 0"


def _fraction(v: Any) -> str | None:
    return None if 0.0 <= v <= 1.0 else "must be between 0 and 1"


def _port(v: Any) -> str | None:
    return None if 1 <= v <= 65535 else "must be a port number 1..65535"


def _quality(v: Any) -> str | None:
    return None if 1 <= v <= 100 else "must be a JPEG quality 1..100"


def _one_of(*choices: str) -> Callable[[Any], str | None]:
    def check(v: Any) -> str | None:
        return None if v in choices else f"must be one of {', '.join(map(repr, choices))}"

    return check


def _listen(v: Any) -> str | None:
    try:
        parse_listen(v)
    except ValueError as e:
        return str(e)
    return None


def _str_list(v: Any) -> str | None:
    return None if all(isinstance(x, str) and x for x in v) else "must be a list of non-empty strings"


def _event_list(v: Any) -> str | None:
    bad = [x for x in v if x not in EVENT_TYPES]
    return None if not bad else f"unknown event type {bad[0]!r}; use {', '.join(EVENT_TYPES)}"


def _str_table(v: Any) -> str | None:
    ok = all(isinstance(k, str) and isinstance(x, str) for k, x in v.items())
    return None if ok else "must be a table of string values"


EVENT_TYPES = ("person_entered", "person_left", "count_changed")
NUM = (int, float)

SCHEMA: dict[str, dict[str, Key]] = {
    "service": {
        "log_level": Key("info", (str,), _one_of("debug", "info", "warning", "error")),
        "stall_timeout_s": Key(10.0, NUM, _positive),
    },
    "source": {
        "spec": Key("picam", (str,), lambda v: None if v.strip() else "must not be empty"),
        "loop": Key(False, (bool,)),
        "reconnect_max_s": Key(30.0, NUM, _positive),
    },
    "model": {
        "path": Key("", (str,)),
        "labels": Key("", (str,)),
        "threshold": Key(0.5, NUM, _fraction),
        "classes": Key(["person"], (list,), _str_list),
        "threads": Key(2, (int,), _positive),
    },
    "preview": {
        "enabled": Key(True, (bool,)),
        "backend": Key("auto", (str,), _one_of("auto", "drm", "qt", "opencv")),
    },
    "tracker": {
        "iou_threshold": Key(0.3, NUM, _fraction),
        "max_center_distance": Key(0.75, NUM, _non_negative),
        "enter_frames": Key(3, (int,), _positive),
        "leave_frames": Key(15, (int,), _positive),
    },
    "events": {
        "jsonl": Key("/var/lib/edgedetect/events.jsonl", (str,)),
        "max_mb": Key(10.0, NUM, _positive),
        "backups": Key(5, (int,), _non_negative),
        "log": Key(True, (bool,)),
    },
    "mqtt": {
        "enabled": Key(False, (bool,)),
        "host": Key("localhost", (str,)),
        "port": Key(1883, (int,), _port),
        "username": Key("", (str,)),
        "password": Key("", (str,)),
        "topic_prefix": Key("edgedetect", (str,), lambda v: None if v.strip("/") else "must not be empty"),
        "client_id": Key("", (str,)),
        "keepalive_s": Key(60, (int,), _positive),
        "queue": Key(1000, (int,), _positive),
        "discovery": Key(True, (bool,)),
        "discovery_prefix": Key("homeassistant", (str,)),
        "device_name": Key("edgedetect", (str,)),
    },
    "webhook": {
        "url": Key("", (str,), lambda v: None if v == "" or v.startswith(("http://", "https://"))
                   else "must start with http:// or https:// (or be empty to disable)"),
        "events": Key(list(EVENT_TYPES), (list,), _event_list),
        "timeout_s": Key(5.0, NUM, _positive),
        "retries": Key(3, (int,), _non_negative),
        "queue": Key(100, (int,), _positive),
        "headers": Key({}, (dict,), _str_table),
    },
    "snapshots": {
        "enabled": Key(True, (bool,)),
        "dir": Key("/var/lib/edgedetect/snapshots", (str,)),
        "max_mb": Key(200.0, NUM, _positive),
        "max_files": Key(1000, (int,), _positive),
        "quality": Key(85, (int,), _quality),
    },
    "http": {
        "enabled": Key(True, (bool,)),
        "listen": Key("127.0.0.1:8080", (str,), _listen),
        "token": Key("", (str,)),
        "stream_fps": Key(5.0, NUM, _positive),
        "jpeg_quality": Key(75, (int,), _quality),
        "threads": Key(4, (int,), _positive),
    },
    "motion": {
        "enabled": Key(True, (bool,)),
        "pixel_delta": Key(25, (int,), lambda v: None if 1 <= v <= 255 else "must be 1..255"),
        "min_area": Key(0.002, NUM, _fraction),
        "max_interval_s": Key(2.0, NUM, _positive),
        "hold_s": Key(1.0, NUM, _non_negative),
        "width": Key(160, (int,), lambda v: None if 16 <= v <= 1024 else "must be 16..1024"),
    },
}


@dataclass
class Config:
    """Validated config: `cfg.section("model")["threshold"]`, plus where it came from."""

    data: dict[str, dict[str, Any]]
    path: str | None = None
    base_dir: Path = field(default_factory=Path.cwd)

    def section(self, name: str) -> dict[str, Any]:
        return self.data[name]

    def __getitem__(self, name: str) -> dict[str, Any]:
        return self.data[name]


def parse_listen(value: str) -> tuple[str, int]:
    """'127.0.0.1:8080' / '[::1]:8080' / ':8080' -> (host, port); ValueError on junk."""
    host, sep, port_s = value.rpartition(":")
    if not sep or not port_s.isdigit():
        raise ValueError(f"must be HOST:PORT (e.g. 127.0.0.1:8080), got {value!r}")
    port = int(port_s)
    if not 0 <= port <= 65535:
        raise ValueError(f"port {port} out of range 0..65535")
    host = host.strip("[]") or "127.0.0.1"
    return host, port


def defaults() -> dict[str, dict[str, Any]]:
    return {s: {k: copy.deepcopy(key.default) for k, key in keys.items()} for s, keys in SCHEMA.items()}


def _suggest(name: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(name, choices, n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else f"; valid: {', '.join(choices)}"


def _type_name(types: tuple[type, ...]) -> str:
    names = {int: "an integer", float: "a number", str: "a string", bool: "true or false",
             list: "a list", dict: "a table"}
    if types == NUM:
        return "a number"
    return " or ".join(names.get(t, t.__name__) for t in types)


def _type_ok(value: Any, types: tuple[type, ...]) -> bool:
    # bool is an int subclass in Python; TOML keeps them apart, so must we.
    if isinstance(value, bool):
        return bool in types
    if isinstance(value, float) and not math.isfinite(value):
        return False
    return isinstance(value, types)


def validate(raw: dict[str, Any], where: str, base_dir: Path | None = None,
             check_files: bool = True) -> Config:
    """Merge `raw` over the defaults; raise ConfigError naming `where` and the key on any problem."""
    base = base_dir or Path.cwd()
    data = defaults()
    for section, values in raw.items():
        if section not in SCHEMA:
            raise ConfigError(f"{where}: unknown section [{section}]{_suggest(section, list(SCHEMA))}")
        if not isinstance(values, dict):
            raise ConfigError(f"{where}: [{section}] must be a table, got {type(values).__name__}")
        keys = SCHEMA[section]
        for name, value in values.items():
            if name not in keys:
                raise ConfigError(f"{where}: [{section}] unknown key {name!r}{_suggest(name, list(keys))}")
            key = keys[name]
            if not _type_ok(value, key.types):
                raise ConfigError(f"{where}: [{section}] {name} must be {_type_name(key.types)}, "
                                  f"got {value!r}")
            if key.types == NUM:
                value = float(value)
            if key.check is not None:
                problem = key.check(value)
                if problem:
                    raise ConfigError(f"{where}: [{section}] {name} = {value!r}: {problem}")
            data[section][name] = value
    if check_files:
        for section, name in (("model", "path"), ("model", "labels")):
            value = data[section][name]
            if value:
                p = Path(value).expanduser()
                if not p.is_absolute():
                    p = base / p
                if not p.is_file():
                    raise ConfigError(f"{where}: [{section}] {name} = {value!r}: file not found ({p})")
                data[section][name] = str(p)
    return Config(data=data, base_dir=base)


def load_config(path: str | Path | None = None, check_files: bool = True) -> Config:
    """Read and validate a TOML file. `None` means the default path, or defaults if that is absent."""
    if path is None:
        if not Path(DEFAULT_CONFIG_PATH).is_file():
            cfg = validate({}, "<defaults>", check_files=check_files)
            return cfg
        path = DEFAULT_CONFIG_PATH
    p = Path(path).expanduser()
    if not p.is_file():
        raise ConfigError(f"{p}: config file not found; pass --config FILE "
                          f"(an example is in systemd/config.example.toml)")
    try:
        raw = tomllib.loads(p.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{p}: invalid TOML: {e}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{p}: cannot read config: {e}") from None
    cfg = validate(raw, str(p), base_dir=p.resolve().parent, check_files=check_files)
    cfg.path = str(p)
    return cfg


def apply_overrides(cfg: Config, overrides: dict[str, Any]) -> Config:
    """Apply 'section.key' -> value overrides (from the command line) with the same validation."""
    raw: dict[str, dict[str, Any]] = {}
    for dotted, value in overrides.items():
        if value is None:
            continue
        section, _, key = dotted.partition(".")
        raw.setdefault(section, {})[key] = value
    if not raw:
        return cfg
    merged: dict[str, dict[str, Any]] = copy.deepcopy(cfg.data)
    for section, values in raw.items():
        merged.setdefault(section, {}).update(values)
    new = validate(merged, cfg.path or "<command line>", base_dir=cfg.base_dir)
    new.path = cfg.path
    return new
