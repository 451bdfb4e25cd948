"""The value checks of the config schema: each takes a value and returns the problem in words, or
None. Pure functions, no file system: `config.py` names them in `SCHEMA` and turns a problem into
the one-line error that names the file, the section and the key.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from typing import Any

from edgedetect.errors import ConfigError


def _between(lo: float, hi: float, why: str = "") -> Callable[[Any], str | None]:
    """A closed range; every number in the schema has one, so no value can run away."""

    def check(v: Any) -> str | None:
        return None if lo <= v <= hi else f"must be between {lo:g} and {hi:g}{why}"

    return check


def max_threads() -> int:
    """Upper bound for thread counts: more than 2 per core only adds contention (and huge
    counts crash the interpreter)."""
    return (os.cpu_count() or 1) * 2


def threads_problem(v: int) -> str | None:
    """The bound shared by `[model] threads` and the CLI's `--threads`."""
    limit = max_threads()
    return None if 1 <= v <= limit else f"must be between 1 and {limit} (2 x CPU count)"


QUEUE_MAX = 100_000
HOUR = 3600.0


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


def _parses(parse: Callable[[Any], object], error: type[Exception]) -> Callable[[Any], str | None]:
    """A check from a parser: its ``error`` message is the problem, no error is fine."""

    def check(v: Any) -> str | None:
        try:
            parse(v)
        except error as e:
            return str(e)
        return None

    return check


def _tiles(v: Any) -> str | None:
    from edgedetect.tiling import parse_tiles  # the runtime's parser, so the two cannot disagree

    return _parses(parse_tiles, ConfigError)(v)


_listen = _parses(lambda v: parse_listen(v), ValueError)


def _str_list(v: Any) -> str | None:
    return (
        None if all(isinstance(x, str) and x for x in v) else "must be a list of non-empty strings"
    )


def _event_list(v: Any) -> str | None:
    bad = [x for x in v if x not in EVENT_TYPES]
    return None if not bad else f"unknown event type {bad[0]!r}; use {', '.join(EVENT_TYPES)}"


def _str_table(v: Any) -> str | None:
    ok = all(isinstance(k, str) and isinstance(x, str) for k, x in v.items())
    return None if ok else "must be a table of string values"


EVENT_TYPES = (
    "person_entered",
    "person_left",
    "count_changed",
    "zone_entered",
    "zone_left",
    "line_crossed",
)
NUM = (int, float)


def _point_problem(p: Any) -> str | None:
    if not (isinstance(p, list) and len(p) == 2 and all(_type_ok(c, NUM) for c in p)):
        return f"point {p!r} must be [x, y], two numbers"
    if not all(0.0 <= c <= 1.0 for c in p):
        return (
            f"point {p!r} is outside the frame: x and y are fractions of its width and height, 0..1"
        )
    return None


def _polygon(v: Any) -> str | None:
    """[[x, y], ...] with at least 3 points inside 0..1 and an area (not all on one line)."""
    if len(v) < 3:
        return f"a polygon needs at least 3 points [x, y], got {len(v)}"
    for p in v:
        problem = _point_problem(p)
        if problem:
            return problem
    area2 = sum(
        x1 * y2 - x2 * y1 for (x1, y1), (x2, y2) in zip(v, v[1:] + v[:1], strict=True)
    )  # shoelace
    return None if abs(area2) > 1e-9 else "the polygon has no area (its points lie on one line)"


def _polygons(v: Any) -> str | None:
    for i, poly in enumerate(v):
        problem = _polygon(poly) if isinstance(poly, list) else "must be a list of [x, y] points"
        if problem:
            return f"polygon {i + 1}: {problem}"
    return None


def _line(v: Any) -> str | None:
    """[[x1, y1], [x2, y2]]: two distinct points inside 0..1."""
    if len(v) != 2:
        return f"a line is two points [[x1, y1], [x2, y2]], got {len(v)} point(s)"
    for p in v:
        problem = _point_problem(p)
        if problem:
            return problem
    (x1, y1), (x2, y2) = v
    return (
        None
        if math.hypot(x2 - x1, y2 - y1) > 1e-6
        else "the line has zero length (both points are the same)"
    )


def _type_ok(value: Any, types: tuple[type, ...]) -> bool:
    # bool is an int subclass in Python; TOML keeps them apart, so must we.
    if isinstance(value, bool):
        return bool in types
    if isinstance(value, float) and not math.isfinite(value):
        return False
    return isinstance(value, types)


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
