"""Service configuration: one TOML file, every key defaulted, every error one precise line.

The schema below is the single source of truth: `load_config` validates against it, and
`systemd/config.example.toml` documents the same keys (a test keeps the two in sync).
Validation is hand-written (a few dozen lines) rather than pulling in pydantic/jsonschema:
the Pi image stays small and the messages can name the file, the section and the key. The value
checks the schema names live in `config_checks.py`; what touches the disk (secret files, probing
the output folders) in `config_files.py`.
"""

from __future__ import annotations

import copy
import dataclasses
import ipaddress
import json
import math
import re
import stat
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgedetect.errors import ConfigError, did_you_mean
from edgedetect.linefile import file_kind
from edgedetect.service.config_checks import (  # noqa: F401 - max_threads, parse_listen: used from here
    EVENT_TYPES,
    HOUR,
    NUM,
    QUEUE_MAX,
    _between,
    _classes,
    _device_name,
    _event_list,
    _fraction,
    _headers,
    _line,
    _listen,
    _one_of,
    _parses,
    _point_problem,
    _polygon,
    _polygons,
    _port,
    _quality,
    _tiles,
    _topic,
    _topic_prefix,
    _type_ok,
    _webhook_url,
    http_token,
    max_threads,
    mqtt_host_problem,
    parse_listen,
    threads_problem,
)
from edgedetect.service.config_files import _read_secrets
from edgedetect.sources import redact as redact  # re-exported: the service names it from here

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

DEFAULT_CONFIG_PATH = "/etc/edgedetect/config.toml"
# Free space the snapshots and clips leave on their disk (MB): the oldest of them go first, so a
# small SD card never fills up under the system (journald, apt, the service's own events).
MIN_FREE_MB = 256.0


@dataclass(frozen=True)
class Key:
    """One config key: its default, accepted types and an optional value check."""

    default: Any
    types: tuple[type, ...]
    check: Callable[[Any], str | None] | None = None  # returns an error text or None
    doc: str = ""
    secret: bool = False  # never quoted in an error: errors reach the log and /healthz

    def shown(self, value: Any) -> str:
        """The value as an error quotes it: a secret's text masked, a table's names kept, a URL's
        password hidden."""
        if not self.secret:
            return repr(redact(value)) if isinstance(value, str) else repr(value)
        return repr({k: "***" for k in value}) if isinstance(value, dict) else "'***'"


SCHEMA: dict[str, dict[str, Key]] = {
    "service": {
        "log_level": Key("info", (str,), _one_of("debug", "info", "warning", "error")),
        "stall_timeout_s": Key(10.0, NUM, _between(0.5, HOUR)),
    },
    "source": {
        "spec": Key("picam", (str,), lambda v: None if v.strip() else "must not be empty"),
        "loop": Key(False, (bool,)),
        "reconnect_max_s": Key(30.0, NUM, _between(0.5, HOUR)),
        "image_fps": Key(5.0, NUM, _between(0, 120)),
    },
    "model": {
        "path": Key("", (str,)),
        "labels": Key("", (str,)),
        "threshold": Key(0.5, NUM, _fraction),
        "classes": Key(["person"], (list,), _classes),
        "threads": Key(2, (int,), threads_problem),
        "tiles": Key("off", (str,), _tiles),
    },
    "preview": {
        "enabled": Key(True, (bool,)),
        "backend": Key("auto", (str,), _one_of("auto", "drm", "qt", "opencv")),
    },
    "tracker": {
        "iou_threshold": Key(0.3, NUM, _fraction),
        "max_center_distance": Key(0.75, NUM, _between(0, 10)),
        "enter_frames": Key(3, (int,), _between(1, 1000)),
        "leave_frames": Key(15, (int,), _between(1, 10000)),
    },
    "events": {
        "jsonl": Key("/var/lib/edgedetect/events.jsonl", (str,)),
        "max_mb": Key(10.0, NUM, _between(0.01, 100_000)),
        "backups": Key(5, (int,), _between(0, 1000)),
        "log": Key(True, (bool,)),
    },
    "mqtt": {
        "enabled": Key(False, (bool,)),
        "host": Key("localhost", (str,)),
        "port": Key(1883, (int,), _port),
        "username": Key("", (str,)),
        "password": Key("", (str,), secret=True),
        "password_file": Key("", (str,)),
        "topic_prefix": Key("edgedetect", (str,), _topic_prefix),
        "client_id": Key("", (str,)),
        "keepalive_s": Key(60, (int,), _between(1, 65535)),
        "queue": Key(1000, (int,), _between(1, QUEUE_MAX)),
        "discovery": Key(True, (bool,)),
        "discovery_prefix": Key("homeassistant", (str,), _topic),
        "device_name": Key("", (str,), _device_name),
    },
    "webhook": {
        "url": Key("", (str,), _webhook_url),
        "events": Key(list(EVENT_TYPES), (list,), _event_list),
        "timeout_s": Key(5.0, NUM, _between(0.1, 300)),
        "retries": Key(3, (int,), _between(0, 100)),
        "queue": Key(100, (int,), _between(1, QUEUE_MAX)),
        "headers": Key({}, (dict,), _headers, secret=True),
    },
    "snapshots": {
        "enabled": Key(True, (bool,)),
        "dir": Key("/var/lib/edgedetect/snapshots", (str,)),
        "max_mb": Key(200.0, NUM, _between(0.1, 1_000_000)),
        "max_files": Key(1000, (int,), _between(1, 1_000_000)),
        "min_free_mb": Key(MIN_FREE_MB, NUM, _between(0, 1_000_000)),
        "quality": Key(85, (int,), _quality),
    },
    "http": {
        "enabled": Key(True, (bool,)),
        "listen": Key("127.0.0.1:8080", (str,), _listen),
        "token": Key("", (str,), http_token, secret=True),
        "token_file": Key("", (str,)),
        "allow_unauthenticated": Key(False, (bool,)),
        "stream_fps": Key(5.0, NUM, _between(0.1, 30)),
        "jpeg_quality": Key(75, (int,), _quality),
        "threads": Key(4, (int,), _between(1, 64)),
        "max_streams": Key(3, (int,), _between(1, 32)),
        "max_connections": Key(64, (int,), _between(1, 1024)),
        "max_connections_per_client": Key(16, (int,), _between(1, 1024)),
        "send_timeout_s": Key(10.0, NUM, _between(0.5, 300)),
    },
    "motion": {
        "enabled": Key(True, (bool,)),
        "pixel_delta": Key(25, (int,), lambda v: None if 1 <= v <= 255 else "must be 1..255"),
        "min_area": Key(0.002, NUM, _fraction),
        "max_interval_s": Key(2.0, NUM, _between(0.1, HOUR)),
        "hold_s": Key(1.0, NUM, _between(0, HOUR)),
        "width": Key(160, (int,), lambda v: None if 16 <= v <= 1024 else "must be 16..1024"),
    },
    "filters": {
        "min_score": Key(0.0, NUM, _fraction),
        "min_area": Key(0.0, NUM, _fraction),
        "max_area": Key(1.0, NUM, _fraction),
    },
    "masks": {
        "polygons": Key([], (list,), _polygons),
    },
    "clips": {
        "enabled": Key(False, (bool,)),
        "dir": Key("/var/lib/edgedetect/clips", (str,)),
        "pre_s": Key(3.0, NUM, _between(0, 60)),
        "post_s": Key(5.0, NUM, _between(0, 600)),
        "max_s": Key(120.0, NUM, _between(1, HOUR)),
        "fps": Key(5.0, NUM, _between(0.5, 30)),
        "width": Key(640, (int,), _between(160, 1920)),
        "buffer_mb": Key(64.0, NUM, _between(1, 4096)),
        "annotated": Key(True, (bool,)),
        "max_mb": Key(1000.0, NUM, _between(1, 1_000_000)),
        "max_files": Key(200, (int,), _between(1, 1_000_000)),
        "min_free_mb": Key(MIN_FREE_MB, NUM, _between(0, 1_000_000)),
    },
}

# Tables of named tables: [zones.NAME] and [lines.NAME]. Each name is a TOML bare key (it ends up
# in event fields, metric labels and MQTT topics, so it must stay plain).
NAMED_SCHEMA: dict[str, dict[str, Key]] = {
    "zones": {
        "polygon": Key(None, (list,), _polygon),  # None: required
        "inertia": Key(3, (int,), _between(1, 1000)),
    },
    "lines": {
        "points": Key(None, (list,), _line),
    },
}
_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


MIB = 1 << 20  # a "MB" in the config (max_mb, buffer_mb) is a MiB, as df -h and ls -h count


def mb_to_bytes(mb: float) -> int:
    """Bytes in `mb` config MB: one unit for every size key, so that the same number keeps
    every folder (events, snapshots, clips) and buffer to the same size."""
    return int(mb * MIB)


def clip_frame_bytes(width: int) -> int:
    """Ring-buffer bytes of one clip frame: BGR at `width`, height for a 4:3 frame (the tallest a
    camera here delivers), so the bound holds for 16:9 too."""
    return int(width) * ((int(width) * 3 // 4 + 1) // 2 * 2) * 3


def clip_buffer_frames(clips: Any) -> int:
    """Frames the ring buffer must hold to cover `pre_s` at `fps` (one more for rounding)."""
    return int(math.ceil(clips["pre_s"] * clips["fps"])) + 1


class Section:
    """Base of the frozen per-section dataclasses that `validate` makes (one class per section).

    Frozen, so a running service cannot change its config by accident and a reload can compare
    old and new section by section; `section["key"]` reads like the TOML table it came from.
    """

    def __getitem__(self, key: str) -> Any:
        return getattr(self, key)

    if (
        TYPE_CHECKING
    ):  # the fields are made from SCHEMA at import time; the type checker cannot see them

        def __getattr__(self, name: str) -> Any: ...

    def to_dict(self) -> dict[str, Any]:
        return {f.name: copy.deepcopy(getattr(self, f.name)) for f in dataclasses.fields(self)}  # type: ignore[arg-type]


def _copier(value: Any) -> Callable[[], Any]:
    """Default factory: each section gets its own copy of a mutable default (a list of classes)."""
    return lambda: copy.deepcopy(value)


def _section_class(name: str, keys: dict[str, Key]) -> type[Section]:
    fields = [(k, Any, field(default_factory=_copier(key.default))) for k, key in keys.items()]
    return dataclasses.make_dataclass(
        f"{name.title()}Section", fields, bases=(Section,), frozen=True
    )


SECTION_TYPES: dict[str, type[Section]] = {
    name: _section_class(name, keys) for name, keys in SCHEMA.items()
}
NAMED_TYPES: dict[str, type[Section]] = {
    name: _section_class(name.rstrip("s"), keys) for name, keys in NAMED_SCHEMA.items()
}


class Tables(dict[str, Section]):
    """Named tables of one kind (`cfg.zones["door"].polygon`), in the order of the file."""

    def to_dict(self) -> dict[str, dict[str, Any]]:
        return {name: sec.to_dict() for name, sec in self.items()}


@dataclass(frozen=True)
class Config:
    """Validated config: `cfg.mqtt.host` (or `cfg["mqtt"]["host"]`), plus where it came from."""

    sections: dict[str, Section | Tables]
    path: str | None = None
    base_dir: Path = field(default_factory=Path.cwd)
    # Sections off by default whose keys the file set without `enabled = true`: section -> keys.
    left_off: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def section(self, name: str) -> Any:
        return self.sections[name]

    def __getitem__(self, name: str) -> Any:
        return self.sections[name]

    @property
    def zones(self) -> Tables:
        return self.sections["zones"]  # type: ignore[return-value]

    @property
    def lines(self) -> Tables:
        return self.sections["lines"]  # type: ignore[return-value]

    def __getattr__(self, name: str) -> Any:
        sections = self.__dict__.get("sections", {})
        if name in sections:
            return sections[name]
        raise AttributeError(name)

    def __iter__(self) -> Iterator[str]:
        return iter(self.sections)

    @property
    def data(self) -> dict[str, Any]:
        """Plain nested dicts (a copy), e.g. to merge overrides over."""
        return {name: sec.to_dict() for name, sec in self.sections.items()}

    def changed(self, other: Config) -> set[str]:
        """Names of the sections whose values differ from `other`'s."""
        return {name for name in self.sections if self.sections[name] != other.sections.get(name)}

    @property
    def where(self) -> str:
        return self.path or "<config>"


def server_limits(h: Section) -> dict[str, Any]:
    """The `[http]` keys that bound clients (see edgedetect.service.http.HttpServer)."""
    return {
        "max_connections": h.max_connections,
        "max_connections_per_client": h.max_connections_per_client,
        "send_timeout_s": h.send_timeout_s,
    }


def defaults() -> dict[str, dict[str, Any]]:
    return {
        s: {k: copy.deepcopy(key.default) for k, key in keys.items()} for s, keys in SCHEMA.items()
    }


def _type_name(types: tuple[type, ...]) -> str:
    names = {
        int: "an integer",
        float: "a number",
        str: "a string",
        bool: "true or false",
        list: "a list",
        dict: "a table",
    }
    if types == NUM:
        return "a number"
    return " or ".join(names.get(t, t.__name__) for t in types)


def validate(
    raw: dict[str, Any],
    where: str,
    base_dir: Path | None = None,
    check_files: bool = True,
    path: str | None = None,
) -> Config:
    """Merge `raw` over defaults; raise ConfigError naming `where` and the key on any problem."""
    base = base_dir or Path.cwd()
    data = defaults()
    named: dict[str, dict[str, dict[str, Any]]] = {kind: {} for kind in NAMED_SCHEMA}
    for section, values in raw.items():
        if section in NAMED_SCHEMA:
            named[section] = _named_tables(section, values, where)
            continue
        if not isinstance(values, dict):
            raise _key_outside_sections(section, values, where)
        if section not in SCHEMA:
            choices = list(SCHEMA) + list(NAMED_SCHEMA)
            raise ConfigError(
                f"{where}: unknown section [{section}]{did_you_mean(section, choices)}"
            )
        if not isinstance(values, dict):
            raise ConfigError(f"{where}: [{section}] must be a table, got {type(values).__name__}")
        data[section].update(_checked_table(section, SCHEMA[section], values, where))
    _check_combinations(data, where)
    given = {(sec, name): data[sec][name] for sec, name in PATH_KEYS}  # as written, for messages
    _resolve_paths(data, where, base, check_files)
    _read_secrets(data, where, check_files, given)
    _check_exposure(data, where)
    sections: dict[str, Section | Tables] = {
        name: SECTION_TYPES[name](**values) for name, values in data.items()
    }
    for kind, tables in named.items():
        sections[kind] = Tables((n, NAMED_TYPES[kind](**v)) for n, v in tables.items())
    return Config(sections=sections, path=path, base_dir=base, left_off=_left_off(raw))


def _left_off(raw: dict[str, Any]) -> dict[str, tuple[str, ...]]:
    """Sections that are off unless enabled (`[clips]`, `[mqtt]`) whose other keys the file sets
    but whose `enabled` it never mentions: most likely a forgotten `enabled = true`. An explicit
    `enabled = false` is a choice and is not reported."""
    return {
        name: tuple(values)
        for name, values in raw.items()
        if name in SCHEMA
        and "enabled" in SCHEMA[name]
        and SCHEMA[name]["enabled"].default is False
        and isinstance(values, dict)
        and values
        and "enabled" not in values
    }


def left_off_warnings(cfg: Config) -> list[str]:
    """One line per section the file configured but left off (see `_left_off`)."""
    return [
        f"[{name}] sets {', '.join(keys)} but is off: add enabled = true under [{name}] to use "
        "it (or enabled = false to keep it off and silence this)"
        for name, keys in cfg.left_off.items()
    ]


def _key_outside_sections(name: str, value: Any, where: str) -> ConfigError:
    """A `key = value` above the first [section] header: which section it belongs in."""
    owners = [sec for sec, keys in SCHEMA.items() if name in keys]
    keys = sorted((SCHEMA[sec][name] for sec in owners), key=lambda k: not k.secret)
    shown = (keys[0] if keys else Key(None, (object,))).shown(value)  # a secret's masked
    if not owners:
        return ConfigError(
            f"{where}: {name} = {shown} comes before any [section]; keys go under a [section] "
            "header (see systemd/config.example.toml)"
        )
    tables = [f"[{sec}]" for sec in owners]
    where_to = tables[0] if len(tables) == 1 else ", ".join(tables[:-1]) + " or " + tables[-1]
    return ConfigError(
        f"{where}: {name} = {shown} comes before any [section]; put it under {where_to}"
    )


def _a_type(value: Any) -> str:
    """'an int', 'a list': what a secret's value was, without the value."""
    name = type(value).__name__
    return f"{'an' if name[0] in 'aeiou' else 'a'} {name}"


def _checked_table(
    section: str, keys: dict[str, Key], values: dict[str, Any], where: str
) -> dict[str, Any]:
    """The values of one table, type- and range-checked against its keys."""
    out: dict[str, Any] = {}
    for name, value in values.items():
        if name not in keys:
            raise ConfigError(
                f"{where}: [{section}] unknown key {name!r}{did_you_mean(name, list(keys))}"
            )
        key = keys[name]
        if isinstance(value, float) and not math.isfinite(value) and float in key.types:
            raise ConfigError(  # nan, inf, or a number too large for a float (1e400)
                f"{where}: [{section}] {name} must be a finite number, got {value}"
            )
        if not _type_ok(value, key.types):
            raise ConfigError(
                f"{where}: [{section}] {name} must be {_type_name(key.types)}, "
                f"got {_a_type(value) if key.secret else key.shown(value)}"
            )
        if isinstance(value, str) and "\x00" in value:
            raise ConfigError(
                f"{where}: [{section}] {name} = {key.shown(value)}: "
                "must not contain a NUL character"
            )
        if key.types == NUM:
            value = float(value)
        if key.check is not None:
            problem = key.check(value)
            if problem:
                raise ConfigError(f"{where}: [{section}] {name} = {key.shown(value)}: {problem}")
        out[name] = value
    return out


def _named_tables(kind: str, values: Any, where: str) -> dict[str, dict[str, Any]]:
    """[zones.NAME] / [lines.NAME]: each name a bare key, each table complete and checked."""
    if not isinstance(values, dict):
        raise ConfigError(
            f"{where}: [{kind}] must hold named tables like [{kind}.front_door], "
            f"got {type(values).__name__}"
        )
    keys = NAMED_SCHEMA[kind]
    out: dict[str, dict[str, Any]] = {}
    for name, table in values.items():
        if not _BARE_KEY.match(name):
            raise ConfigError(
                f"{where}: [{kind}.{json.dumps(name)}]: a name must be a TOML bare key "
                "(letters, digits, _ and -, at most 64), e.g. front_door"
            )
        section = f"{kind}.{name}"
        if not isinstance(table, dict):
            raise ConfigError(f"{where}: [{section}] must be a table, got {type(table).__name__}")
        checked = _checked_table(section, keys, table, where)
        missing = [k for k, key in keys.items() if key.default is None and k not in checked]
        if missing:
            raise ConfigError(f"{where}: [{section}] {missing[0]} is missing; it has no default")
        out[name] = {k: copy.deepcopy(key.default) for k, key in keys.items()} | checked
    return out


def _check_combinations(data: dict[str, dict[str, Any]], where: str) -> None:
    """Rules between keys, after each key passed alone."""
    f = data["filters"]
    if f["min_area"] > f["max_area"]:
        raise ConfigError(
            f"{where}: [filters] min_area = {f['min_area']!r}: must not exceed max_area "
            f"({f['max_area']!r}); no detection could pass"
        )
    m = data["mqtt"]
    if m["enabled"] and not m["host"].strip():
        raise ConfigError(
            f"{where}: [mqtt] host = {m['host']!r}: must name the broker (a host name or IP "
            "address) when enabled = true; set host, or enabled = false"
        )
    problem = mqtt_host_problem(m["host"].strip()) if m["enabled"] else None
    if problem is not None:
        raise ConfigError(f"{where}: [mqtt] host = {m['host']!r}: {problem}")
    c = data["clips"]
    if c["pre_s"] >= c["max_s"]:  # max_s counts from the first pre-roll frame
        raise ConfigError(
            f"{where}: [clips] pre_s = {c['pre_s']!r}: must be shorter than max_s "
            f"({c['max_s']!r}), which counts from the first pre-roll frame (a clip would be "
            "all pre-roll, longer than max_s); lower pre_s or raise max_s"
        )
    need = clip_buffer_frames(c) * clip_frame_bytes(c["width"])
    if need > mb_to_bytes(c["buffer_mb"]):
        holds = (mb_to_bytes(c["buffer_mb"]) // clip_frame_bytes(c["width"]) - 1) / c["fps"]
        raise ConfigError(
            f"{where}: [clips] pre_s = {c['pre_s']!r}: the ring buffer holds only "
            f"{max(holds, 0):.1f} s at fps {c['fps']:g} and width {c['width']} "
            f"(buffer_mb {c['buffer_mb']:g}); raise buffer_mb to {math.ceil(need / MIB)} or lower "
            "pre_s, fps or width"
        )


# Path keys, resolved beside the config file; the model files must exist.
PATH_KEYS = (
    ("model", "path"),
    ("model", "labels"),
    ("events", "jsonl"),
    ("snapshots", "dir"),
    ("clips", "dir"),
    ("http", "token_file"),
    ("mqtt", "password_file"),
)
MUST_EXIST = {("model", "path"), ("model", "labels")}
# Files the outputs append to: if they exist, they must be regular files (the fix for each).
OUTPUT_FILES = {("events", "jsonl"): 'point it at a file (or "" to turn the file off)'}
_SPEC_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]+):(.*)$")


def _beside(value: str, base: Path) -> Path:
    p = Path(value).expanduser()
    return p if p.is_absolute() else base / p


def resolve_spec(spec: str, base: Path) -> str:
    """Relative paths in a source spec ('dir:imgs', 'file:a.mp4', 'clip.mp4') -> beside the config.

    Cameras and streams (picam, usb:N, any URL) are left as they are.
    """
    text = spec.strip()
    m = _SPEC_SCHEME.match(text)
    if m:
        scheme, rest = m.group(1).lower(), m.group(2)
        if scheme in ("file", "dir") and rest:
            return f"{m.group(1)}:{_beside(rest, base)}"
        return spec
    if text.lower() == "picam" or text.startswith("/dev/"):
        return spec
    return str(_beside(text, base))


def _resolve_paths(
    data: dict[str, dict[str, Any]], where: str, base: Path, check_files: bool
) -> None:
    for section, name in PATH_KEYS:
        value = data[section][name]
        if not value:
            continue
        p = _beside(value, base)
        if check_files and (section, name) in MUST_EXIST:
            if p.is_dir():
                raise ConfigError(
                    f"{where}: [{section}] {name} = {value!r}: is a directory ({p}); name the file"
                )
            if not p.exists():
                raise ConfigError(f"{where}: [{section}] {name} = {value!r}: file not found ({p})")
            _check_regular_file(p, f"{where}: [{section}] {name} = {value!r}", "name the file")
        if check_files and (section, name) in OUTPUT_FILES:
            _check_regular_file(
                p, f"{where}: [{section}] {name} = {value!r}", OUTPUT_FILES[(section, name)]
            )
        data[section][name] = str(p)
    data["source"]["spec"] = resolve_spec(data["source"]["spec"], base)


def _check_regular_file(p: Path, key: str, fix: str) -> None:
    """ConfigError when `p` exists and is not a regular file: a FIFO with no reader blocks the
    writer (the service freezes at the first event), a device or a folder cannot be rotated."""
    try:
        mode = p.stat().st_mode
    except OSError:
        return  # absent (created at start) or unreadable: the output probe names the problem
    if stat.S_ISREG(mode):
        return
    raise ConfigError(f"{key}: {p} is {file_kind(mode)}, not a regular file; {fix}")


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def exposed_without_token(data: Any) -> bool:
    """True when HTTP listens beyond this host with no token (allowed only by explicit opt-out)."""
    h = data["http"]
    return bool(
        h["enabled"]
        and not (h["token"] or h["token_file"])
        and not is_loopback(parse_listen(h["listen"])[0])
    )


def _check_exposure(data: dict[str, dict[str, Any]], where: str) -> None:
    h = data["http"]
    if exposed_without_token(data) and not h["allow_unauthenticated"]:
        raise ConfigError(
            f"{where}: [http] listen = {h['listen']!r} is reachable from the network but no token "
            "is set; set [http] token or token_file, or allow_unauthenticated = true "
            "if a firewall guards it"
        )


class EmptyConfigError(ConfigError):
    """The config file holds nothing (not even a comment): a mistake or a file being written,
    never taken for "all defaults"."""

    def __init__(self, path: Path) -> None:
        self.path = path
        super().__init__(
            f"{path}: empty; write the settings to change into it (every key: "
            "systemd/config.example.toml), or a comment line such as '# all defaults' "
            "to run on the defaults"
        )


def _config_text(data: bytes, p: Path) -> str:
    """The file's text: UTF-8, with or without the byte-order mark Windows editors write."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise ConfigError(
            f"{p}: line {line} is not UTF-8 text (byte 0x{data[e.start]:02x}); "
            "save the file as UTF-8"
        ) from None


def load_config(path: str | Path | None = None, check_files: bool = True) -> Config:
    """Read and validate a TOML file. `None` means the default path, or defaults if it is absent.
    An empty (or whitespace-only) file is refused (`EmptyConfigError`); comments alone are the
    defaults."""
    if path is None:
        if not Path(DEFAULT_CONFIG_PATH).is_file():
            return validate({}, "<defaults>", check_files=check_files)
        path = DEFAULT_CONFIG_PATH
    if not str(path).strip():  # Path("") is ".", the current folder
        raise ConfigError(
            "the config path is empty; give the path of a TOML file (start one by copying "
            "systemd/config.example.toml)"
        )
    p = Path(path).expanduser()
    try:
        if not p.is_file():
            what = "config file not found"
            if p.is_dir():
                what = "is a folder, not a config file"
            elif p.exists():  # /dev/null, a FIFO: there, but nothing to read a config from
                what = f"is {file_kind(p.stat().st_mode)}, not a config file"
            raise ConfigError(
                f"{p}: {what}; give the path of a TOML file (start one by copying "
                "systemd/config.example.toml)"
            )
        text = _config_text(p.read_bytes(), p)
        if not text.strip():  # truncated, being rewritten, or written by a failed command
            raise EmptyConfigError(p)
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{p}: invalid TOML: {e}") from None
    except PermissionError:
        raise ConfigError(
            f"{p}: permission denied; check it as the service's user, who may read it: "
            f"sudo -u edgedetect {Path(sys.prefix) / 'bin' / 'edgedetect'} check-config {p}"
        ) from None
    except OSError as e:
        raise ConfigError(f"{p}: cannot read config: {e}") from None
    return validate(raw, str(p), base_dir=p.resolve().parent, check_files=check_files, path=str(p))


def apply_overrides(cfg: Config, overrides: dict[str, Any]) -> Config:
    """Apply 'section.key' -> value overrides (from the command line) with the same validation."""
    raw: dict[str, dict[str, Any]] = {}
    for dotted, value in overrides.items():
        if value is None:
            continue
        section, _, key = dotted.partition(".")
        if isinstance(value, str) and value:  # paths typed on the command line: beside the shell
            if (section, key) in PATH_KEYS:
                value = str(_beside(value, Path.cwd()))
            elif (section, key) == ("source", "spec"):
                value = resolve_spec(value, Path.cwd())
        raw.setdefault(section, {})[key] = value
    if not raw:
        return cfg
    merged = cfg.data
    for section, values in raw.items():
        merged.setdefault(section, {}).update(values)
    for section, file_key, key in (
        ("http", "token_file", "token"),
        ("mqtt", "password_file", "password"),
    ):
        if merged.get(section, {}).get(file_key):
            merged[section][key] = ""  # read again from the file, not a clash with it
    new = validate(merged, cfg.path or "<command line>", base_dir=cfg.base_dir, path=cfg.path)
    # what the file left off: `merged` spells out every key, so `new` cannot tell
    return dataclasses.replace(new, left_off=cfg.left_off)
