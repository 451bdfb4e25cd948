"""The application the HTTP server serves: the web page, /healthz, /metrics, /snapshot.jpg,
/stream.mjpg (its frames and stream slots), /api/status, /api/events and the saved /snapshots/
and /clips/ files. Kept apart from the transport (``edgedetect.service.http``) so *what* is served
can be read and tested without the asyncio server; this module does not import the transport.

Interface (what the service uses):

- ``HttpApp(health, metrics, jpeg, token="", stream_fps=5.0, max_streams=3)``: *what* is served.
  ``health() -> (ok, dict)``, ``metrics() -> bytes``, ``jpeg() -> (version, bytes) | None``
  are plain blocking callables; the server runs them on its worker threads. Keyword-only:
  ``source_lost() -> bool`` (/snapshot.jpg is 503 while it is true, as before the first frame),
  ``status() -> dict`` (/api/status), ``events(limit) -> list[dict]`` (/api/events, newest
  first), ``folders() -> {"snapshots": [dir, ...], "clips": [dir, ...]}`` (where /snapshots/NAME
  and /clips/NAME are read, the first folder holding the file wins; asked per request so a
  reload's new folders apply; none = 404 and no links).
  The page (``/``, ``/static/...``) comes from the package folder ``web/``.
- ``Reply``: one whole response (or a file to send), as the transport writes it.

An optional token guards every endpoint: as a bearer header, ``?token=``, or the
``edgedetect_token`` cookie that ``/?token=...`` sets (HttpOnly, SameSite=Strict), so the page's
images and fetch() calls carry it without it in every URL.

Paths arrive percent-decoded once (by the server). Files: a name under /snapshots/ or /clips/ must
be one plain file name (no ``/`` even encoded, no NUL, no leading dot) of a known type; it is
resolved (symlinks followed) and must still lie directly in its folder, then opened without
following links. Anything else is 404. Single byte ranges (``Range: bytes=a-b``) are answered with
206, which phones' video players need.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import json
import logging
import os
import re
import stat
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import parse_qs, quote, unquote

from edgedetect.service.retention import CLIPS, being_written, was_lost

log = logging.getLogger("edgedetect.http")

COOKIE = "edgedetect_token"
EVENTS_DEFAULT, EVENTS_MAX = 50, 200  # /api/events?limit=N
# The page's own files, in the package (pyproject.toml package-data), never fetched from elsewhere.
WEB_DIR = resources.files("edgedetect.service").joinpath("web")
WEB_TYPES = {
    "index.html": "text/html; charset=utf-8",
    "app.js": "text/javascript; charset=utf-8",
    "style.css": "text/css; charset=utf-8",
}
FILE_TYPES = {
    "snapshots": {".jpg": "image/jpeg", ".jpeg": "image/jpeg"},
    "clips": {".mp4": "video/mp4", ".jpg": "image/jpeg"},
}
PAGE_HEADERS = [
    (
        "Content-Security-Policy",
        "default-src 'self'; img-src 'self' blob:; object-src 'none'; base-uri 'none'; "
        "frame-ancestors 'none'; form-action 'none'",
    ),
    ("X-Frame-Options", "DENY"),
]


@dataclass
class Reply:
    """One whole response: status, body and extra headers."""

    status: int
    body: bytes
    content_type: str = "text/plain; charset=utf-8"
    headers: list[tuple[str, str]] = field(default_factory=list)
    file: BinaryIO | None = None  # sent instead of `body`: `length` bytes from its position
    length: int = 0


NOT_FOUND = Reply(404, b"not found\n")


def _json(status: int, data: Any) -> Reply:
    return Reply(status, (json.dumps(data, sort_keys=True) + "\n").encode(), "application/json")


@functools.lru_cache(maxsize=len(WEB_TYPES))
def web_file(name: str) -> tuple[bytes, str]:
    """(content, ETag) of one of the page's files; read once, they change only with the package."""
    data = WEB_DIR.joinpath(name).read_bytes()
    return data, '"' + hashlib.sha256(data).hexdigest()[:16] + '"'


def byte_range(value: str, size: int) -> tuple[int, int] | None:
    """(first, last) byte of a single `Range: bytes=...` within `size`; None = send it all (several
    ranges or a malformed header may be ignored). ValueError when no byte of it exists."""
    m = re.fullmatch(r"\s*bytes\s*=\s*([0-9]*)\s*-\s*([0-9]*)\s*", value)
    if m is None or not (m[1] or m[2]):
        return None
    if m[1]:
        first = int(m[1])
        last = int(m[2]) if m[2] else max(first, size - 1)
        if last < first:
            return None
    else:
        first, last = max(0, size - int(m[2])), size - 1
        if int(m[2]) == 0:
            raise ValueError("empty suffix range")
    if first >= size:
        raise ValueError("range starts past the end")
    return first, min(last, size - 1)


def url_token(query: str) -> str:
    """`?token=` as typed: a '+' stays a '+' (base64 tokens have them; form encoding would read a
    space), percent-escapes are decoded."""
    return parse_qs(query.replace("+", "%2B")).get("token", [""])[0]


def plain_name(name: str) -> str | None:
    """`name` if it is one plain file name (no folder part, no NUL or control character, no
    leading dot), else None. The server percent-decoded the path once; it is not decoded again,
    so an encoded '%2e%2e%2f' stays a name with '%' in it."""
    if not name or name.startswith(".") or "/" in name or "\\" in name or not name.isprintable():
        return None
    return name


class HttpApp:
    """The endpoints; the service provides health, metrics and JPEG callables."""

    CONTROL = ("/healthz", "/metrics")  # answered on the reserved worker

    def __init__(
        self,
        health: Callable[[], tuple[bool, dict[str, Any]]],
        metrics: Callable[[], bytes],
        jpeg: Callable[[], tuple[int, bytes] | None],
        token: str = "",
        stream_fps: float = 5.0,
        max_streams: int = 3,
        *,
        status: Callable[[], dict[str, Any]] | None = None,
        events: Callable[[int], list[dict[str, Any]]] | None = None,
        folders: Callable[[], Mapping[str, Sequence[str]]] | None = None,
        recording: Callable[[], str] | None = None,
        source_lost: Callable[[], bool] | None = None,
    ) -> None:
        self.health = health
        self.status = status or (lambda: health()[1])
        self.events = events or (lambda limit: [])
        self.folders = folders or (lambda: {})
        self.recording = recording or (lambda: "")  # the clip of the episode going on now
        self.metrics = metrics
        self.jpeg = jpeg  # -> (version, bytes) of the newest annotated frame, or None
        self.source_lost = source_lost or (lambda: False)  # the camera or stream is gone
        self.token = token
        self.stream_fps = stream_fps
        self.max_streams = max_streams
        self.stopping = threading.Event()  # set: streams end (server stopped or app replaced)
        self._streams = 0
        self._lock = threading.Lock()

    def authorized(self, headers: Mapping[str, str], query: str) -> bool:
        """The bearer header, ?token= (an <img src> cannot send headers) or the page's cookie;
        each compared in constant time, all of them every time."""
        if not self.token:
            return True
        header = headers.get("authorization", "")
        given = [
            header[7:].strip() if header.lower().startswith("bearer ") else "",
            url_token(query),
            self._cookie(headers),
        ]
        want = self.token.encode()
        ok = False
        for value in given:
            ok |= hmac.compare_digest(value.encode(), want)
        return ok

    @staticmethod
    def _cookie(headers: Mapping[str, str]) -> str:
        for part in headers.get("cookie", "").split(";"):
            name, sep, value = part.strip().partition("=")
            if sep and name == COOKIE:
                return unquote(value)
        return ""

    def respond(
        self, path: str, query: str = "", headers: Mapping[str, str] | None = None
    ) -> Reply:
        """The reply for every path but /stream.mjpg (blocking: runs on a worker thread)."""
        headers = headers or {}
        if path == "/" or path.startswith("/static/"):
            return self._page(path, query, headers)
        if path.startswith("/api/"):
            return self._api(path, query)
        folder, _, name = path[1:].partition("/")
        if folder in FILE_TYPES and name:
            return self._file(folder, name, headers)
        if path == "/healthz":
            ok, info = self.health()
            return Reply(
                200 if ok else 503,
                (json.dumps(info, sort_keys=True) + "\n").encode(),
                "application/json",
            )
        if path == "/favicon.ico":  # every browser asks on every page; a 404 is a console error
            return Reply(204, b"")
        if path == "/metrics":
            return Reply(200, self.metrics(), "text/plain; version=0.0.4; charset=utf-8")
        if path == "/snapshot.jpg":  # no current picture: none yet, or the source is gone
            if self.source_lost():
                return Reply(503, b"source lost; no current frame\n")
            got = self.jpeg()
            return (
                Reply(503, b"no frame yet\n") if got is None else Reply(200, got[1], "image/jpeg")
            )
        return NOT_FOUND

    def _page(self, path: str, query: str, headers: Mapping[str, str]) -> Reply:
        """index.html at /, its script and style under /static/; revalidated by ETag."""
        name = "index.html" if path == "/" else path[len("/static/") :]
        if name not in WEB_TYPES:
            return NOT_FOUND
        try:
            data, etag = web_file(name)
        except OSError:
            log.error("web file %s missing from %s; reinstall edgedetect", name, WEB_DIR)
            return Reply(500, f"web file {name} is missing; reinstall edgedetect\n".encode())
        extra = [("ETag", etag), ("Cache-Control", "private, no-cache")]
        if path == "/":
            extra += PAGE_HEADERS
            given = url_token(query)
            if self.token and given and hmac.compare_digest(given.encode(), self.token.encode()):
                extra.append(
                    (
                        "Set-Cookie",
                        f"{COOKIE}={quote(self.token, safe='')}; HttpOnly; SameSite=Strict; Path=/",
                    )
                )
        if headers.get("if-none-match") == etag:
            return Reply(304, b"", WEB_TYPES[name], extra)
        return Reply(200, data, WEB_TYPES[name], extra)

    def _api(self, path: str, query: str) -> Reply:
        if path == "/api/status":
            return _json(200, self.status())
        if path == "/api/events":
            raw = parse_qs(query, keep_blank_values=True).get("limit", [str(EVENTS_DEFAULT)])[-1]
            if not re.fullmatch(r"[0-9]{1,9}", raw) or int(raw) < 1:
                why = (
                    f"limit must be a whole number from 1 (a larger one than {EVENTS_MAX} "
                    f"returns {EVENTS_MAX}), not {raw!r}"
                )
                return _json(400, {"error": why})
            return _json(200, {"events": self._saved_files(self.events(min(int(raw), EVENTS_MAX)))})
        return _json(404, {"error": f"no such API path {path!r}; see /api/status and /api/events"})

    def _saved_files(self, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Link an event's snapshot and clip only while the file is there, so the page never
        offers a link that answers 404. A snapshot that is gone (retention, or deleted by hand)
        is "snapshot_missing". A clip not there yet is being recorded (the episode goes on, or
        its hidden part file is being finished); otherwise it is "clip_missing": lost (full disk,
        a part file the recorder gave up on), or also "clip_deleted" when no recorder of this
        process lost it (saved, then deleted by the retention or by hand). A kind that is off
        now (a reload) is not served: its links go, nothing claimed."""
        folders = self.folders()
        snapshots, clips = folders.get("snapshots", []), folders.get("clips", [])
        for e in events:
            url = e.pop("snapshot_url", "")
            if url and snapshots:
                if self._saved(snapshots, unquote(url.rsplit("/", 1)[-1])):
                    e["snapshot_url"] = url
                else:
                    e["snapshot_missing"] = True
            if not e.get("clip_url"):
                continue
            e["clip_url"] = ""
            if not clips:
                continue
            name = os.path.basename(str(e.get("clip", "")))
            if name and self._saved(clips, name):
                e["clip_url"] = "/clips/" + quote(name, safe="")
            elif name and (name == self.recording() or self._finishing(clips[0], name)):
                e["clip_recording"] = True
            else:
                e["clip_missing"] = True
                if not any(was_lost(Path(folder, name)) for folder in clips):
                    e["clip_deleted"] = True  # saved, then retention (or a person) deleted it
        return events

    @staticmethod
    def _finishing(folder: str, name: str) -> bool:
        """Whether clip `name`'s hidden part file is there and a recorder of this process is
        writing it: one it gave up on, or one an earlier run left (a read-only folder keeps
        both), will never become the clip."""
        part = CLIPS.temp_path(Path(folder, name))
        return part.exists() and being_written(part)

    @staticmethod
    def _saved(folders: Sequence[str], name: str) -> Path | None:
        """Where the file `name` is in the first of `folders` that holds it as a regular file
        of its own (a plain name, resolved inside that folder), or None."""
        if plain_name(name) is None:
            return None
        for folder in folders:
            base = Path(folder).resolve()
            path = (base / name).resolve()  # follows links: where it really is must be in `base`
            if path.parent == base and path.is_file():
                return path
        return None

    def _file(self, kind: str, raw: str, headers: Mapping[str, str]) -> Reply:
        """A saved snapshot or clip, only from its folders (see the module doc)."""
        name = plain_name(raw)
        ctype = FILE_TYPES[kind].get(os.path.splitext(name or "")[1].lower())
        path = self._saved(self.folders().get(kind, []), name) if name and ctype else None
        if path is None or ctype is None:
            return NOT_FOUND
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError:
            return NOT_FOUND
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):  # swapped for a folder or a device since
            os.close(fd)
            return NOT_FOUND
        f = os.fdopen(fd, "rb")
        size = info.st_size
        extra = [("Accept-Ranges", "bytes"), ("Cache-Control", "private, max-age=3600")]
        try:
            span = byte_range(headers["range"], size) if "range" in headers else None
        except ValueError:
            f.close()
            return Reply(
                416, b"range not satisfiable\n", headers=[("Content-Range", f"bytes */{size}")]
            )
        if span is None:
            return Reply(200, b"", ctype, extra, file=f, length=size)
        f.seek(span[0])
        extra.append(("Content-Range", f"bytes {span[0]}-{span[1]}/{size}"))
        return Reply(206, b"", ctype, extra, file=f, length=span[1] - span[0] + 1)

    def open_stream(self) -> bool:
        """Take a stream slot; False when all `max_streams` are in use."""
        with self._lock:
            if self._streams >= self.max_streams:
                return False
            self._streams += 1
            return True

    def close_stream(self) -> None:
        with self._lock:
            self._streams -= 1

    @property
    def streams(self) -> int:
        with self._lock:
            return self._streams
