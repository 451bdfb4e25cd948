"""The HTTP server under hostile clients on 127.0.0.1: big bodies, other methods, HEAD,
half-open connections, a single worker with a viewer, viewers that never read.

The server and the app are the real ones; the app's callables are small real functions (a
health dict, a metrics text, real JPEGs from OpenCV) so these tests need no model.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import socket
import struct
import time
from collections.abc import Iterator
from typing import Any

import cv2
import numpy as np
import pytest

from edgedetect.service.http import HttpServer
from edgedetect.service.webapp import HttpApp

BIG = 300 * 1024 * 1024  # a declared body the server must never read


def _jpeg_source(width: int = 640, height: int = 480) -> Any:
    """A new real JPEG (noise, so it is large) with a new id on every call."""
    rng = np.random.default_rng(0)
    data = cv2.imencode(
        ".jpg", rng.integers(0, 255, (height, width, 3), np.uint8), [cv2.IMWRITE_JPEG_QUALITY, 90]
    )[1].tobytes()
    ids = itertools.count(1)
    return lambda: (next(ids), data)


def _app(**kw: Any) -> HttpApp:
    return HttpApp(
        lambda: (True, {"status": "ok"}), lambda: b"edgedetect_up 1\n", _jpeg_source(), **kw
    )


@contextlib.contextmanager
def serving(app: HttpApp | None = None, threads: int = 4, **kw: Any) -> Iterator[HttpServer]:
    server = HttpServer(app or _app(), "127.0.0.1", 0, threads, **kw).start()
    try:
        yield server
    finally:
        server.stop()


def _connect(server: HttpServer, rcvbuf: int | None = None, timeout: float = 10.0) -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf:  # before connect, so the window stays small
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.settimeout(timeout)
    s.connect(("127.0.0.1", server.port))
    return s


def _request(
    server: HttpServer, raw: bytes, timeout: float = 10.0
) -> tuple[int, dict[str, str], bytes]:
    """Send `raw`, read until the server closes; (status, headers, body)."""
    with _connect(server, timeout=timeout) as s:
        s.sendall(raw)
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
    return int(lines[0].split()[1]), headers, body


def _get(server: HttpServer, path: str, timeout: float = 10.0) -> tuple[int, dict[str, str], bytes]:
    return _request(server, f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode(), timeout)


def _open_stream(server: HttpServer, rcvbuf: int | None = None) -> tuple[socket.socket, bytes]:
    s = _connect(server, rcvbuf)
    s.sendall(b"GET /stream.mjpg HTTP/1.1\r\nHost: x\r\n\r\n")
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(4096)
        assert chunk, "stream closed before its headers"
        data += chunk
    return s, data


def test_oversized_body_is_413_before_reading_it() -> None:
    with serving() as server:
        for method in ("POST", "GET", "PUT"):
            raw = f"{method} /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: {BIG}\r\n\r\n".encode()
            status, _, _ = _request(server, raw + b"x" * 1000)  # body never sent in full
            assert status == 413, method


def test_other_methods_are_405_before_the_body() -> None:
    with serving() as server:
        # the 100 bytes never come
        raw = b"POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n"
        status, headers, _ = _request(server, raw)
        assert status == 405 and headers["Allow"] == "GET, HEAD"
        assert _request(server, b"DELETE /metrics HTTP/1.1\r\nHost: x\r\n\r\n")[0] == 405


def test_head_has_headers_and_no_body() -> None:
    with serving() as server:
        close = b"Connection: close\r\n"  # so a keep-alive server ends the reply too
        status, headers, body = _request(
            server, b"HEAD /healthz HTTP/1.1\r\nHost: x\r\n" + close + b"\r\n"
        )
        expected = (json.dumps({"status": "ok"}, sort_keys=True) + "\n").encode()
        assert status == 200 and body == b""
        assert headers["Content-Type"] == "application/json" and int(
            headers["Content-Length"]
        ) == len(expected)
        status, headers, body = _request(
            server, b"HEAD /stream.mjpg HTTP/1.1\r\nHost: x\r\n" + close + b"\r\n"
        )
        assert (
            status == 200
            and body == b""
            and headers["Content-Type"].startswith("multipart/x-mixed-replace")
        )


def test_healthz_answers_beside_many_half_open_connections() -> None:
    with serving() as server:
        half_open = [_connect(server) for _ in range(40)]
        try:
            for i, s in enumerate(half_open):
                if i % 2:
                    s.sendall(b"GET /heal")  # a request line that never ends
            status, _, body = _get(server, "/healthz", timeout=5.0)
            assert status == 200 and json.loads(body)["status"] == "ok"
            assert _get(server, "/metrics", timeout=5.0)[0] == 200
        finally:
            for s in half_open:
                s.close()


def test_per_client_cap_closes_the_oldest_idle_connection() -> None:
    with serving() as server:  # 16 per client by default
        idle = [_connect(server) for _ in range(20)]
        time.sleep(1.0)  # all taken in (the caps apply once a connection sent no request for 50 ms)
        try:
            assert _get(server, "/healthz", timeout=5.0)[0] == 200
            closed = 0
            for s in idle[:5]:  # the oldest ones made room for the newer ones and the request
                s.settimeout(5.0)
                with contextlib.suppress(ConnectionResetError):
                    closed += s.recv(1) == b""
            assert closed == 5
        finally:
            for s in idle:
                s.close()


def test_healthz_and_metrics_answer_when_the_address_slots_hold_streams() -> None:
    """Every per-address slot busy with a stream (a Pi owner's three browser tabs) must not
    shut out that address's health check or Prometheus scrape; a 4th viewer still gets 503."""
    with serving(_app(max_streams=3), max_connections_per_client=3) as server:
        viewers = [_open_stream(server)[0] for _ in range(3)]
        try:
            for path in ("/healthz", "/metrics", "/healthz"):
                assert _get(server, path, timeout=5.0)[0] == 200, path
            refused = _connect(server)
            refused.sendall(b"GET /stream.mjpg HTTP/1.1\r\nHost: x\r\n\r\n")
            try:  # a refused viewer that keeps its socket open holds a slot too
                assert refused.recv(64).startswith(b"HTTP/1.1 503 ")
                assert _get(server, "/healthz", timeout=5.0)[0] == 200
            finally:
                refused.close()
        finally:
            for s in viewers:
                s.close()


def test_one_worker_and_a_viewer_leave_healthz_answering() -> None:
    with serving(threads=1) as server:
        viewer, first = _open_stream(server)
        try:
            assert b" 200 " in first.split(b"\r\n")[0]
            status, _, _ = _get(server, "/healthz", timeout=5.0)
            assert status == 200
            assert _get(server, "/snapshot.jpg", timeout=5.0)[0] == 200
        finally:
            viewer.close()


def test_viewer_that_never_reads_loses_its_slot() -> None:
    with serving(_app(stream_fps=20.0, max_streams=2), send_timeout_s=1.0) as server:
        stalled = [_open_stream(server, rcvbuf=4096)[0] for _ in range(2)]
        try:
            assert _get(server, "/stream.mjpg", timeout=5.0)[0] == 503  # both slots taken
            deadline = time.monotonic() + 60.0
            got = None
            while time.monotonic() < deadline:
                viewer, head = _open_stream(server)
                viewer.close()
                got = int(head.split()[1])
                if got == 200:
                    break
                time.sleep(0.5)
            assert got == 200, "a viewer that never reads kept its stream slot"
        finally:
            for s in stalled:
                s.close()


def _stream_status_once_free(server) -> int:
    """Open and close /stream.mjpg until it answers 200 or 10 s pass (the server notices a
    viewer gone within one frame period); the last status."""
    status = 0
    deadline = time.monotonic() + 10.0
    while status != 200 and time.monotonic() < deadline:
        viewer, head = _open_stream(server)
        viewer.close()
        status = int(head.split()[1])
        if status != 200:
            time.sleep(0.1)
    return status


def test_disconnected_viewers_free_their_slots() -> None:
    with serving(_app(stream_fps=5.0, max_streams=1)) as server:
        for _ in range(5):
            assert _stream_status_once_free(server) == 200, "a closed viewer kept its stream slot"


def test_busy_port_fails_in_the_constructor_and_the_old_server_keeps_serving() -> None:
    with serving() as old:
        try:
            HttpServer(_app(), "127.0.0.1", old.port)
        except OSError:
            pass
        else:
            raise AssertionError("binding a busy port did not fail in the constructor")
        assert _get(old, "/healthz", timeout=5.0)[0] == 200


def test_set_app_swaps_endpoints_without_rebinding() -> None:
    with serving() as server:
        port = server.port
        viewer, _ = _open_stream(server)
        server.set_app(
            HttpApp(lambda: (False, {"status": "stalled"}), lambda: b"", _jpeg_source(), token="t"),
            threads=2,
        )
        assert server.port == port and server.threads == 2
        viewer.settimeout(10.0)
        with contextlib.suppress(ConnectionResetError):
            while viewer.recv(65536):  # the old app's stream ends
                pass
        viewer.close()
        assert _get(server, "/healthz", timeout=5.0)[0] == 401
        status, _, body = _request(server, b"GET /healthz?token=t HTTP/1.1\r\nHost: x\r\n\r\n")
        assert status == 503 and json.loads(body)["status"] == "stalled"


def test_an_endpoint_that_raises_is_a_500_and_the_server_goes_on() -> None:
    def broken() -> tuple[bool, dict[str, Any]]:
        raise RuntimeError("health check bug")

    with serving(HttpApp(broken, lambda: b"ok 1\n", _jpeg_source())) as server:
        assert _get(server, "/healthz", timeout=5.0)[0] == 500
        assert _get(server, "/metrics", timeout=5.0)[0] == 200


def test_the_service_answers_healthz_with_one_thread_a_viewer_and_half_open_connections(
    tmp_path,
) -> None:
    """End to end: the real service (real detector, looping photos) with `[http] threads = 1`."""
    from test_service_support import RunningService, poll, write_config

    cfg = write_config(tmp_path, http={"threads": 1, "stream_fps": 10.0})
    with RunningService(cfg) as rs:
        assert poll(lambda: rs.get("/healthz")[0] == 200, 30.0), "service never healthy"
        server = rs.svc.http
        assert server is not None
        viewer, head = _open_stream(server)
        half_open = [_connect(server) for _ in range(40)]
        try:
            assert b" 200 " in head.split(b"\r\n")[0]
            status, _, body = _get(server, "/healthz", timeout=5.0)
            assert status == 200 and json.loads(body)["model_loaded"] is True
            status, headers, body = _request(server, b"HEAD /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            assert status == 200 and body == b"" and int(headers["Content-Length"]) > 0
            raw = f"POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: {BIG}\r\n\r\n".encode()
            assert _request(server, raw)[0] == 413
        finally:
            viewer.close()
            for s in half_open:
                s.close()


def test_http_limits_come_from_the_config_and_reload(tmp_path) -> None:
    """`[http] max_streams` and the connection caps reach the real service, and a SIGHUP-style
    reload on the same address changes them without rebinding."""
    from test_service_support import (
        RunningService,
        metric,
        poll,
        service_config,
        to_toml,
        write_config,
    )

    cfg = write_config(tmp_path, http={"max_streams": 1, "max_connections_per_client": 5})
    with RunningService(cfg) as rs:
        assert poll(lambda: rs.get("/healthz")[0] == 200, 30.0), "service never healthy"
        server = rs.svc.http
        assert server is not None
        assert server.max_connections_per_client == 5
        first, head = _open_stream(server)
        try:
            assert b" 200 " in head.split(b"\r\n")[0]
            second, head = _open_stream(server)
            second.close()
            assert b" 503 " in head.split(b"\r\n")[0]  # one viewer allowed
            cfg.write_text(
                to_toml(service_config(tmp_path, http={"max_streams": 2, "send_timeout_s": 3.0}))
            )
            rs.svc.request_reload()
            assert poll(lambda: metric(rs.metrics(), "edgedetect_reloads_total") == 1, 20)
            assert rs.svc.http is server and server.send_timeout_s == 3.0  # same socket, new limits
            assert server.max_connections_per_client == 16
            second, head = _open_stream(server)
            second.close()
            assert b" 200 " in head.split(b"\r\n")[0]
        finally:
            first.close()


def _hang_up(server: HttpServer, raw: bytes, reset: bool) -> None:
    """Send `raw` and go away at once without reading: a reset (SO_LINGER 0) or a plain close."""
    s = _connect(server)
    s.sendall(raw)
    if reset:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()


def test_viewers_that_reset_at_once_free_their_slots() -> None:
    app = _app(stream_fps=5.0, max_streams=2)
    with serving(app) as server:
        for _ in range(10):
            _hang_up(server, b"GET /stream.mjpg HTTP/1.1\r\nHost: x\r\n\r\n", reset=True)
        assert _stream_status_once_free(server) == 200, "viewers that reset kept their slots"
        assert _get(server, "/healthz", timeout=5.0)[0] == 200
        deadline = time.monotonic() + 5.0
        while app.streams and time.monotonic() < deadline:
            time.sleep(0.05)
        assert app.streams == 0


def test_a_client_that_hangs_up_is_logged_in_one_debug_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="edgedetect.http")
    requests = [
        b"GET /stream.mjpg HTTP/1.1\r\nHost: x\r\n\r\n",  # 503: the only slot is taken
        b"HEAD /stream.mjpg HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET /nowhere HTTP/1.1\r\nHost: x\r\n\r\n",
        b"BOGUS\r\n\r\n",  # 400
        b"GET /healthz HTTP/1.1\r\nX: " + b"a" * 10000 + b"\r\n\r\n",  # 431, in the first wait
    ]
    with serving(_app(stream_fps=5.0, max_streams=1)) as server:
        viewer, _ = _open_stream(server)
        try:
            for raw in requests:
                for reset in (False, True):
                    _hang_up(server, raw, reset)
            time.sleep(1.5)  # each reply and its linger (at most 1 s) are over
            assert _get(server, "/healthz", timeout=5.0)[0] == 200
        finally:
            viewer.close()
    ours = [r for r in caplog.records if r.name == "edgedetect.http"]
    assert not [r.getMessage() for r in ours if r.levelno >= logging.WARNING or r.exc_info]
    gone = [r for r in ours if "went away" in r.getMessage()]
    assert gone and all(r.levelno == logging.DEBUG and "\n" not in r.getMessage() for r in gone)
    assert not [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]


def test_bare_lf_line_endings_are_answered_at_once() -> None:
    with serving(header_timeout_s=5.0) as server:
        for raw, expected in [
            (b"GET /healthz HTTP/1.1\n\n", 200),
            (b"GET /healthz HTTP/1.1\nHost: x\n\n", 200),
            (b"GET /healthz HTTP/1.1\r\nHost: x\n\r\n", 200),  # mixed
            (b"POST /healthz HTTP/1.1\nContent-Length: 100\n\n", 405),  # decided on the head
            (b"GET /healthz HTTP/1.1\nHost: x\ry\n\n", 400),  # a bare CR stays invalid
        ]:
            # the client gives up at 4 s, before the server's 5 s header timeout (408)
            status, _, _ = _request(server, raw, timeout=4.0)
            assert status == expected, raw
        many_lines = b"GET /healthz HTTP/1.1\n" + b"X: y\n" * 2000 + b"\n"  # each short, 10 kB
        assert _request(server, many_lines, timeout=4.0)[0] == 431
        with _connect(server, timeout=4.0) as s:  # a head in pieces, over the 50 ms admission wait
            for piece in (b"GET /healthz HTTP/1.1\r\nHo", b"st: x\n", b"\r\n"):
                s.sendall(piece)
                time.sleep(0.2)
            assert s.recv(65536).startswith(b"HTTP/1.1 200 ")
