"""The value checks of the config schema: each takes a value and returns the problem in words, or
None. Pure functions, no file system: `config.py` names them in `SCHEMA` and turns a problem into
the one-line error that names the file, the section and the key.
"""

from __future__ import annotations

import ipaddress
import math
import os
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

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


_ALL_OR_NAMES = 'write ["all"] to keep every class, or list class names, e.g. ["person"]'


def _classes(v: Any) -> str | None:
    """`[model] classes`: label names, or ["all"]. Empty is an error, as `--classes ''` is: the
    detector would otherwise keep every class without a word."""
    if not all(isinstance(x, str) for x in v):
        return "must be a list of class names (strings)"
    if not v:
        return f"is empty; {_ALL_OR_NAMES}"
    if not all(x.strip() for x in v):
        return f"has an empty class name; {_ALL_OR_NAMES}"
    return None


def _event_list(v: Any) -> str | None:
    bad = [x for x in v if x not in EVENT_TYPES]
    return None if not bad else f"unknown event type {bad[0]!r}; use {', '.join(EVENT_TYPES)}"


def _str_table(v: Any) -> str | None:
    ok = all(isinstance(k, str) and isinstance(x, str) for k, x in v.items())
    return None if ok else "must be a table of string values"


# RFC 9110 5.6.2: a field name is a token. http.client refuses names with ':' or white space and
# values with CR or LF ("Invalid header value" on every POST), and encodes values as Latin-1.
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_HEADER_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")  # RFC 9110 5.5: no controls but tab


def _headers(v: Any) -> str | None:
    """`[webhook] headers`: what http.client sends (and a server accepts), checked per header."""
    problem = _str_table(v)
    if problem:
        return problem
    for name, value in v.items():
        if not _TOKEN.fullmatch(name):
            return (
                f"header name {name!r} is not a token: use letters, digits and "
                "!#$%&'*+-.^_`|~ only, e.g. X-Api-Key"
            )
        if "\r" in value or "\n" in value:
            return f"header {name!r}: the value must be one line, without CR or LF (\\r, \\n)"
        bad = _HEADER_CONTROL.search(value)
        if bad:
            return (
                f"header {name!r}: the value has the control character {bad.group()!r}; "
                "use printable text (a tab is fine)"
            )
        wide = next((c for c in value if ord(c) > 0xFF), None)
        if wide is not None:
            return (
                f"header {name!r}: the value has {wide!r}, which an HTTP header cannot carry "
                "(Latin-1 text only); percent-encode or base64-encode it"
            )
    return None


def _webhook_url(v: Any) -> str | None:
    """`[webhook] url`: http(s), and no user:password@, which urllib takes for part of the host
    name, so that every POST would fail with "Name or service not known"."""
    if v == "":
        return None
    if not v.startswith(("http://", "https://")):
        return "must start with http:// or https:// (or be empty to disable)"
    bad = re.search(r"[\x00-\x20\x7f]", v)  # http.client refuses them in a request
    if bad:
        what = "a space" if bad.group() == " " else f"the control character {bad.group()!r}"
        return f"has {what}; percent-encode it (%20 for a space)"
    try:
        parts = urlsplit(v)
    except ValueError as e:  # an unclosed [ of an IPv6 address
        return f"is not a valid URL ({e}); write http://HOST[:PORT]/PATH"
    try:
        port = parts.port
    except ValueError:  # not a number, or beyond 65535
        port = 0
    if port == 0:
        return "has a bad port; the port must be a number 1..65535"
    if not parts.hostname:
        return "has no host; write http://HOST[:PORT]/PATH"
    if "@" in parts.netloc:
        return (
            "a user or password in the URL is not sent; put it in [webhook] headers, e.g. "
            'Authorization = "Basic <base64 of user:password>"'
        )
    return None


_HTTP_TOKEN = re.compile(r"[\x21-\x7e]*")


def http_token(v: str) -> str | None:
    """A token every client sends byte for byte in a header, a URL and a cookie: visible ASCII.
    Other text was accepted but matched only some clients (UTF-8 vs Latin-1 headers)."""
    if _HTTP_TOKEN.fullmatch(v):
        return None
    return (
        "must be visible ASCII (letters, digits, punctuation; no spaces or accents), "
        "e.g. the output of: openssl rand -hex 16"
    )


# paho refuses to publish to a topic with a wildcard ("Publish topic cannot contain wildcards")
# or longer than 65535 bytes; Mosquitto drops a client whose topic holds a control character or
# a Unicode noncharacter (malformed UTF-8 for MQTT). NUL is refused for every string already.
TOPIC_PART_MAX = 32_000  # two such parts and the longest suffix stay under 65535 bytes
_TOPIC_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def _topic_length(v: str) -> str | None:
    size = len(v.encode("utf-8"))
    if size > TOPIC_PART_MAX:
        return (
            f"is {size} bytes; make it shorter (at most {TOPIC_PART_MAX} bytes in UTF-8): "
            "MQTT topics end at 65535 bytes"
        )
    return None


def _topic(v: Any) -> str | None:
    """A part of the MQTT topics this service publishes (`topic_prefix`, `discovery_prefix`)."""
    if "#" in v or "+" in v:
        return (
            "must not contain the MQTT wildcards '#' or '+' (paho refuses to publish to them); "
            'use plain levels, e.g. "home/porch"'
        )
    bad = _TOPIC_CONTROL.search(v)
    if bad:
        return (
            f"has the control character {bad.group()!r}, which brokers such as Mosquitto refuse "
            "in a topic; use printable text"
        )
    odd = next((c for c in v if 0xFDD0 <= ord(c) <= 0xFDEF or ord(c) & 0xFFFE == 0xFFFE), None)
    if odd is not None:
        return (
            f"has the Unicode noncharacter {odd!r}, which brokers such as Mosquitto refuse in a "
            "topic; use printable text"
        )
    return _topic_length(v)


def _topic_prefix(v: Any) -> str | None:
    return _topic(v) if v.strip("/") else "must not be empty"


def _device_name(v: Any) -> str | None:
    """Only its length reaches a topic: the discovery topics use it with other characters as _."""
    return _topic_length(v)


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
    numbers = isinstance(p, list) and all(isinstance(c, NUM) and not isinstance(c, bool) for c in p)
    if numbers and len(p) == 2 and not all(math.isfinite(c) for c in p):  # nan, inf, 1e400
        return (
            f"point {p!r} must be two finite numbers (nan, inf and numbers too large for a "
            "float such as 1e400 are not): x and y are fractions of the frame's width and "
            "height, 0..1"
        )
    if not (numbers and len(p) == 2):
        return f"point {p!r} must be [x, y], two numbers"
    if not all(0.0 <= c <= 1.0 for c in p):
        return (
            f"point {p!r} is outside the frame: x and y are fractions of its width and height, 0..1"
        )
    return None


_EPS = 1e-9  # coordinates are fractions 0..1 of the frame


def _orient(a: Any, b: Any, c: Any) -> float:
    """Twice the signed area of the triangle abc: > 0 when c is left of a->b."""
    return float((b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0]))


def _on_segment(a: Any, b: Any, p: Any) -> bool:
    """p, known to be on the line through a and b, lies between them."""
    return (
        min(a[0], b[0]) - _EPS <= p[0] <= max(a[0], b[0]) + _EPS
        and min(a[1], b[1]) - _EPS <= p[1] <= max(a[1], b[1]) + _EPS
    )


def _segments_meet(a: Any, b: Any, c: Any, d: Any) -> bool:
    """Segments ab and cd cross or touch (an end on the other segment, or overlapping)."""
    d1, d2 = _orient(c, d, a), _orient(c, d, b)
    d3, d4 = _orient(a, b, c), _orient(a, b, d)
    if ((d1 > _EPS and d2 < -_EPS) or (d1 < -_EPS and d2 > _EPS)) and (
        (d3 > _EPS and d4 < -_EPS) or (d3 < -_EPS and d4 > _EPS)
    ):
        return True
    return (
        (abs(d1) <= _EPS and _on_segment(c, d, a))
        or (abs(d2) <= _EPS and _on_segment(c, d, b))
        or (abs(d3) <= _EPS and _on_segment(a, b, c))
        or (abs(d4) <= _EPS and _on_segment(a, b, d))
    )


def _distinct_corners(v: list[Any]) -> list[Any]:
    """The points without repeats in a row (a ring closed by repeating its first point too)."""
    out: list[Any] = []
    for p in v:
        if not out or math.dist(p, out[-1]) > _EPS:
            out.append(p)
    while len(out) > 1 and math.dist(out[0], out[-1]) <= _EPS:
        out.pop()
    return out


def _collinear(pts: list[Any]) -> bool:
    a = pts[0]
    b = max(pts, key=lambda p: math.dist(a, p))
    length = math.dist(a, b)
    return length <= _EPS or all(abs(_orient(a, b, p)) <= _EPS * length for p in pts)


def _polygon_problem(v: Any, what: str) -> str | None:
    """[[x, y], ...]: at least 3 points inside 0..1, not all on one line, and a simple outline
    (no two edges that do not share a corner cross or touch: a bow-tie is two areas, not one)."""
    if len(v) < 3:
        return f"a polygon needs at least 3 points [x, y], got {len(v)}"
    for p in v:
        problem = _point_problem(p)
        if problem:
            return problem
    pts = _distinct_corners(v)
    if len(pts) < 3 or _collinear(pts):
        return "the polygon has no area (its points lie on one line)"
    n = len(pts)
    for i in range(n):
        for j in range(i + 2, n - (i == 0)):  # edges i and j share no corner
            a, b, c, d = pts[i], pts[(i + 1) % n], pts[j], pts[(j + 1) % n]
            if _segments_meet(a, b, c, d):
                return (
                    f"its edges {a}-{b} and {c}-{d} cross; list the points in order around "
                    f"the {what} (clockwise or anticlockwise)"
                )
    area2 = sum(
        x1 * y2 - x2 * y1 for (x1, y1), (x2, y2) in zip(pts, pts[1:] + pts[:1], strict=True)
    )  # shoelace
    return None if abs(area2) > _EPS else "the polygon has no area (its points lie on one line)"


def _polygon(v: Any) -> str | None:
    """A zone's polygon."""
    return _polygon_problem(v, "zone")


def _polygons(v: Any) -> str | None:
    """The mask polygons."""
    for i, poly in enumerate(v):
        problem = (
            _polygon_problem(poly, "mask")
            if isinstance(poly, list)
            else "must be a list of [x, y] points"
        )
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
    if not host:
        return "127.0.0.1", port
    problem = _host_problem(host)
    if problem:
        raise ValueError(
            f"{problem}; give an IP address or a host name, e.g. 127.0.0.1:8080, 0.0.0.0:8080, "
            "[::1]:8080 or pi.local:8080"
        )
    return host.strip("[]"), port


_HOST_LABEL = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?")


def mqtt_host_problem(host: str) -> str | None:
    """Why `[mqtt] host` cannot be given to paho as it is: a URL or HOST:PORT (as other tools
    take a broker), brackets around IPv6, or neither an IP address nor a host name. Such a host
    passed check-config and then failed to resolve at every retry, for ever."""
    if "://" in host:
        name = urlsplit(host).hostname or "HOST"
        return (
            f"is a URL; write the broker's host name or address alone, host = {name!r}, and "
            "its port as [mqtt] port"
        )
    m = re.fullmatch(r"([^:\[\]]+):([0-9]+)", host)
    if m is not None:
        return f"holds a port; write host = {m[1]!r} and port = {int(m[2])} under [mqtt]"
    if host.startswith("[") and host.endswith("]"):
        return f"write an IPv6 address without the brackets, host = {host[1:-1]!r}"
    problem = _host_problem(host)
    return None if problem is None else f"{problem}; give the broker's host name or IP address"


def _host_problem(host: str) -> str | None:
    """Why `host` (of HOST:PORT, IPv6 in brackets) is neither an IP address nor a host name."""
    bracketed = host.startswith("[") and host.endswith("]")
    if not bracketed and ("[" in host or "]" in host):
        return f"{host} has unbalanced brackets; write an IPv6 address as [::1]"
    if bracketed or ":" in host:
        literal = host[1:-1] if bracketed else host
        try:
            ipaddress.ip_address(literal)
        except ValueError:
            return f"{literal or host} is not a valid IP address"
        return None
    labels = host[:-1].split(".") if host.endswith(".") else host.split(".")
    if labels[-1].isdigit():  # a number last: meant as an IPv4 address (as URLs read it)
        try:
            ipaddress.IPv4Address(host)
        except ValueError:
            return f"{host} is not a valid IPv4 address"
        return None
    if len(host) > 253 or not all(_HOST_LABEL.fullmatch(label) for label in labels):
        return (
            f"{host!r} is not a host name (letters, digits, - and _ in dot-separated parts, "
            "none empty or starting or ending with -)"
        )
    return None
