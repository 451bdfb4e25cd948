"""HTTP endpoints: /healthz, /metrics, /snapshot.jpg, /stream.mjpg (waitress + a tiny WSGI app).

waitress is a maintained pure-Python WSGI server with a fixed worker pool, so the number of
threads (and the memory) stays bounded however many clients connect; MJPEG streams are capped
below the pool size so /healthz and /metrics always get a worker. Metrics text comes from
prometheus-client. Loopback only by default; an optional bearer token guards every endpoint.
"""

from __future__ import annotations

import hmac
import json
import logging
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qs

log = logging.getLogger("edgedetect.http")

BOUNDARY = "edgedetectframe"


class HttpApp:
    """The WSGI application; the service provides health, metrics and JPEG callables."""

    def __init__(self, health: Callable[[], tuple[bool, dict[str, Any]]], metrics: Callable[[], bytes],
                 jpeg: Callable[[], tuple[int, bytes] | None], token: str = "", stream_fps: float = 5.0,
                 max_streams: int = 3) -> None:
        self.health = health
        self.metrics = metrics
        self.jpeg = jpeg  # -> (frame_id, bytes) of the newest annotated frame, or None
        self.token = token
        self.stream_fps = stream_fps
        self.max_streams = max_streams
        self.stopping = threading.Event()
        self._streams = 0
        self._lock = threading.Lock()

    def _authorized(self, environ: dict[str, Any]) -> bool:
        if not self.token:
            return True
        header = environ.get("HTTP_AUTHORIZATION", "")
        given = header[7:].strip() if header.lower().startswith("bearer ") else ""
        if not given:  # <img src=".../stream.mjpg?token=..."> cannot send headers
            given = parse_qs(environ.get("QUERY_STRING", "")).get("token", [""])[0]
        return hmac.compare_digest(given.encode(), self.token.encode())

    def __call__(self, environ: dict[str, Any], start_response) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "/")
        if environ.get("REQUEST_METHOD", "GET") not in ("GET", "HEAD"):
            return _reply(start_response, "405 Method Not Allowed", b"GET only\n", [("Allow", "GET, HEAD")])
        if not self._authorized(environ):
            return _reply(start_response, "401 Unauthorized", b"bearer token required\n",
                          [("WWW-Authenticate", 'Bearer realm="edgedetect"')])
        if path == "/healthz":
            ok, info = self.health()
            body = (json.dumps(info, sort_keys=True) + "\n").encode()
            return _reply(start_response, "200 OK" if ok else "503 Service Unavailable", body,
                          content_type="application/json")
        if path == "/metrics":
            return _reply(start_response, "200 OK", self.metrics(),
                          content_type="text/plain; version=0.0.4; charset=utf-8")
        if path == "/snapshot.jpg":
            got = self.jpeg()
            if got is None:
                return _reply(start_response, "503 Service Unavailable", b"no frame yet\n")
            return _reply(start_response, "200 OK", got[1], content_type="image/jpeg")
        if path == "/stream.mjpg":
            return self._stream(start_response)
        if path == "/":
            body = (b"<html><body><h1>edgedetect</h1><img src='stream.mjpg'><p><a href='healthz'>healthz"
                    b"</a> <a href='metrics'>metrics</a> <a href='snapshot.jpg'>snapshot</a></body></html>")
            return _reply(start_response, "200 OK", body, content_type="text/html")
        return _reply(start_response, "404 Not Found", b"not found\n")

    def _stream(self, start_response) -> Iterable[bytes]:
        with self._lock:
            if self._streams >= self.max_streams:
                return _reply(start_response, "503 Service Unavailable", b"too many stream clients\n")
            self._streams += 1
        start_response("200 OK", [("Content-Type", f"multipart/x-mixed-replace; boundary={BOUNDARY}"),
                                  ("Cache-Control", "no-cache, private"), ("Pragma", "no-cache")])
        return self._frames()

    def _frames(self) -> Iterable[bytes]:
        """One JPEG part per new frame, at most `stream_fps`; ends on client disconnect or stop."""
        period = 1.0 / self.stream_fps
        last_id = None
        try:
            while not self.stopping.is_set():
                t0 = time.monotonic()
                got = self.jpeg()
                if got is not None and got[0] != last_id:
                    last_id, data = got
                    yield (f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\n"
                           f"Content-Length: {len(data)}\r\n\r\n").encode() + data + b"\r\n"
                self.stopping.wait(max(0.0, period - (time.monotonic() - t0)))
        finally:
            with self._lock:
                self._streams -= 1


def _reply(start_response, status: str, body: bytes, headers: list[tuple[str, str]] | None = None,
           content_type: str = "text/plain; charset=utf-8") -> list[bytes]:
    start_response(status, [("Content-Type", content_type), ("Content-Length", str(len(body))),
                            ("Cache-Control", "no-store"), *(headers or [])])
    return [body]


class HttpServer:
    """Runs `HttpApp` on waitress in a background thread; `stop()` returns within ~1 s."""

    def __init__(self, app: HttpApp, host: str, port: int, threads: int = 4) -> None:
        from waitress.server import create_server

        self.app = app
        app.max_streams = max(1, threads - 1)
        # waitress >= 2 flushes each write at once (send_bytes defaults to 1): MJPEG parts are not held.
        self.server = create_server(app, host=host, port=port, threads=threads,
                                    channel_timeout=30, connection_limit=32, clear_untrusted_proxy_headers=True,
                                    ident="edgedetect")
        self.host, self.port = host, int(self.server.effective_port)
        self._thread = threading.Thread(target=self._run, name="http", daemon=True)

    def _run(self) -> None:
        try:
            self.server.run()
        except Exception:  # closing sockets under the loop may raise; nothing to recover
            pass

    def start(self) -> HttpServer:
        self._thread.start()
        log.info("HTTP on http://%s:%d/ (healthz, metrics, snapshot.jpg, stream.mjpg)", self.host, self.port)
        return self

    def stop(self) -> None:
        from waitress import wasyncore

        self.app.stopping.set()
        self.server.task_dispatcher.shutdown(timeout=1.0)
        wasyncore.close_all(self.server._map)
        self._thread.join(1.0)
