"""The HTTP transport: a small asyncio server on the standard library that serves an
``HttpApp`` (``edgedetect.service.webapp``, which holds the endpoints, the page and the files).
This module holds the connections, their caps and deadlines, request parsing and the streaming;
it imports the app module, never the other way round.

Interface (what the service uses):

- ``HttpServer(app, host, port, threads=4, *, max_body_bytes=4096, max_header_bytes=8192,
  max_connections=64, max_connections_per_client=16, send_timeout_s=10.0, header_timeout_s=10.0)``
  binds its listening socket **in the constructor** (a busy port raises ``OSError`` there, so
  an old server can keep running) and serves nothing until ``start()``. ``port`` is the bound
  port (useful with port 0). ``set_app(app, threads=None)`` swaps the app (and the JPEG pool
  size) of a running server without rebinding: a reload that keeps ``listen`` needs no new
  socket (the old app's streams end; viewers reconnect under the new token/fps).
  ``stop()`` closes everything within ~2 s; a stopped server is not restarted (bind a new one).
- ``stop_server(server)``: stop a server that may never have been started.

Why not waitress (used before): its ``connection_limit`` counts half-open connections, so 32 of
them lock everyone out; a stream holds one of its pool threads for as long as it is watched, so
no thread is left for ``/healthz`` when ``threads`` is small; it reads (and spools to disk) a
request body before the app can refuse it; and a viewer that never reads makes it buffer the
stream to temp files. None of these can be configured away, so the server is hand-written on
the standard library: one event-loop thread holds every connection (an idle or half-open one
costs a socket and a few kB, not a thread), one worker thread is reserved for ``/healthz`` and
``/metrics``, and ``threads`` workers encode JPEGs for ``/snapshot.jpg`` and the streams. On a
Pi that is ``threads + 2`` threads however many clients connect, and no new dependency.

Guarantees: a request head must arrive within ``header_timeout_s`` and fit ``max_header_bytes``
(else 408 / 431), its lines may end with CRLF or a bare LF; its path is percent-decoded once before
routing (``/%68ealthz`` is ``/healthz``; a path that is not UTF-8 then is 404); a declared body
over ``max_body_bytes`` is 413 and a method other than GET/HEAD is 405, both decided on the head
alone, the body is never read (at most 64 kB are drained so the client sees the reply); HEAD gets
the headers only; each client address keeps at most ``max_connections_per_client`` connections and
the server ``max_connections``: over a cap, the oldest connection that has not sent a full request
yet is closed to make room; if none is idle, a whole request is answered 503 (never dropped
unanswered) and ``/healthz`` / ``/metrics`` are served anyway (short, on their reserved worker), so
streams filling an address's slots never hide it from its health check or scrape; a reply or stream
part the client does not take within ``send_timeout_s`` closes the connection (and frees its stream
slot); a file is sent in 64 kB chunks under the same deadline. Every reply has ``Connection:
close``. Loopback by default; the app's optional token is checked on the head. A client that hangs
up at any point is logged at debug level in one line; a traceback in the log is a server bug.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import errno
import logging
import socket
import threading
from dataclasses import dataclass, field
from typing import BinaryIO
from urllib.parse import unquote

from edgedetect.service.webapp import HttpApp, Reply

log = logging.getLogger("edgedetect.http")

BOUNDARY = "edgedetectframe"
STREAM_TYPE = f"multipart/x-mixed-replace; boundary={BOUNDARY}"
STREAM_SNDBUF = (
    128 * 1024
)  # kernel send buffer of a stream socket: bounds what a stalled viewer holds
ADMIT_WAIT_S = 0.05  # a new connection's head may arrive this long before the connection caps apply
DRAIN_LIMIT = (
    64 * 1024
)  # unread request bytes read and dropped after a reply, so the client sees it
FILE_CHUNK = 64 * 1024  # a file (a clip can be MBs) is read and sent this much at a time
# OSError numbers that mean the client went away (beside ConnectionError's own): e.g. a reset that
# lands after our reply was sent, before the half-close, makes shutdown() fail with ENOTCONN
CLIENT_GONE_ERRNOS = {errno.ENOTCONN, errno.ENETRESET, errno.EHOSTUNREACH, errno.ENETUNREACH}
OVER_CAP = Reply(503, b"too many open connections from this address; close some\n")
SECURITY_HEADERS = [("X-Content-Type-Options", "nosniff"), ("Referrer-Policy", "no-referrer")]
REASONS = {
    200: "OK",
    204: "No Content",
    206: "Partial Content",
    304: "Not Modified",
    400: "Bad Request",
    401: "Unauthorized",
    404: "Not Found",
    405: "Method Not Allowed",
    408: "Request Timeout",
    413: "Content Too Large",
    416: "Range Not Satisfiable",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    501: "Not Implemented",
    503: "Service Unavailable",
}


@dataclass(eq=False)
class _Conn:
    """One client connection as the event loop sees it."""

    peer: str
    writer: asyncio.StreamWriter
    idle: bool = True  # no full request head yet: may be closed to make room
    head: list[str] = field(default_factory=list)  # the request head's lines read so far
    head_size: int = 0  # their bytes, line ends included


@dataclass
class _Request:
    method: str
    path: str
    query: str
    headers: dict[str, str]


class _BadRequest(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on (host, port); OSError when the address is busy or invalid."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as e:
        raise OSError(e.errno, f"cannot resolve {host!r}: {e.strerror}") from None
    family, _, _, _, addr = infos[0]
    sock = socket.create_server(addr, family=family, backlog=128)
    sock.setblocking(False)
    return sock


def _parse_head(lines: list[str]) -> _Request:
    """Request line and headers of one request head, given as its lines without their ends."""
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1.") or not parts[1].startswith("/"):
        raise _BadRequest(400, "bad request line\n")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if not sep or not name or name != name.strip():
            raise _BadRequest(400, "bad header line\n")
        name, value = name.lower(), value.strip()
        if name in headers and name in ("content-length", "transfer-encoding", "host"):
            raise _BadRequest(400, f"duplicate {name}\n")
        headers[name] = value
    # origin-form, split as it is: urlsplit would take "//x/..." for a host (and raise on "//[x")
    raw_path, _, query = parts[1].partition("#")[0].partition("?")
    try:  # once, here: the app routes and names files on the decoded path, never decodes again
        path = unquote(raw_path, errors="strict")
    except UnicodeDecodeError:  # no route or file name is anything but UTF-8
        raise _BadRequest(404, "not found\n") from None
    return _Request(parts[0], path, query, headers)


def _control_request(head: list[str] | None) -> bool:
    """Whether a whole head asks for /healthz or /metrics, which the caps never refuse."""
    try:
        return head is not None and _parse_head(head).path in HttpApp.CONTROL
    except _BadRequest:
        return False


def _check_body(req: _Request, max_body: int) -> None:
    """Refuse, on the head alone, what would need the body read (which is never done)."""
    length = req.headers.get("content-length", "0")
    if not length.isdigit():
        raise _BadRequest(400, "bad Content-Length\n")
    if int(length) > max_body:
        raise _BadRequest(413, f"request bodies are limited to {max_body} bytes\n")
    if "transfer-encoding" in req.headers:
        raise _BadRequest(413, "chunked request bodies are not accepted\n")
    if req.method not in ("GET", "HEAD"):
        raise _BadRequest(405, "GET or HEAD only\n")


def _head_bytes(status: int, headers: list[tuple[str, str]]) -> bytes:
    lines = [
        f"HTTP/1.1 {status} {REASONS.get(status, 'Error')}",
        *(f"{k}: {v}" for k, v in headers),
        "Connection: close",
        "Server: edgedetect",
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


class HttpServer:
    """Serves an `HttpApp` from one event-loop thread plus worker threads; see the module doc."""

    def __init__(
        self,
        app: HttpApp,
        host: str,
        port: int,
        threads: int = 4,
        *,
        max_body_bytes: int = 4096,
        max_header_bytes: int = 8192,
        max_connections: int = 64,
        max_connections_per_client: int = 16,
        send_timeout_s: float = 10.0,
        header_timeout_s: float = 10.0,
    ) -> None:
        # a bad argument fails here, before the socket is bound (it would outlive the error)
        self.threads = max(1, int(threads))
        self.set_limits(max_connections, max_connections_per_client, send_timeout_s)
        self._sock = _bind(host, port)  # raises OSError now, before anything else changes
        self.host, self.port = host, int(self._sock.getsockname()[1])
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.max_header_bytes = max_header_bytes
        self.header_timeout_s = header_timeout_s
        self._control = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="http-control")
        self._work = concurrent.futures.ThreadPoolExecutor(
            self.threads, thread_name_prefix="http-work"
        )
        self._conns: list[_Conn] = []  # admitted, in arrival order; touched only on the loop thread
        self._pending = 0  # accepted, not yet admitted (waiting ADMIT_WAIT_S for a head)
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="http", daemon=True)

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> HttpServer:
        self._thread.start()
        if not self._ready.wait(5.0):
            raise RuntimeError("HTTP server thread did not start")
        log.info(
            "HTTP on http://%s:%d/ (the page, healthz, metrics, snapshot.jpg, stream.mjpg)",
            self.host,
            self.port,
        )
        return self

    def set_app(self, app: HttpApp, threads: int | None = None) -> None:
        """Serve `app` from now on, on the same socket (a reload with the same `listen`); the old
        app's streams end. `threads`: a new size for the JPEG worker pool."""
        if threads is not None and max(1, int(threads)) != self.threads:
            old_pool = self._work
            self.threads = max(1, int(threads))
            self._work = concurrent.futures.ThreadPoolExecutor(
                self.threads, thread_name_prefix="http-work"
            )
            old_pool.shutdown(wait=False)  # running encodes finish; its threads then exit
        old, self.app = self.app, app
        if old is not app:
            old.stopping.set()

    def set_limits(
        self, max_connections: int, max_connections_per_client: int, send_timeout_s: float
    ) -> None:
        """The client caps and the stream send deadline; read per connection, so a change applies to
        the connections that come after it (a reload with the same `listen`)."""
        self.max_connections = max(1, max_connections)
        self.max_connections_per_client = max(1, max_connections_per_client)
        self.send_timeout_s = send_timeout_s

    def stop(self) -> None:
        self.app.stopping.set()
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None and self._thread.is_alive():
            with contextlib.suppress(RuntimeError):  # loop already closed
                loop.call_soon_threadsafe(stop.set)
            self._thread.join(3.0)
        self._sock.close()
        self._control.shutdown(wait=False, cancel_futures=True)
        self._work.shutdown(wait=False, cancel_futures=True)

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._main())
        except Exception:  # a crash here must not take the service down; /healthz stops answering
            log.exception("HTTP server failed")
        finally:
            self._ready.set()
            loop.close()

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        server = await asyncio.start_server(
            self._connection, sock=self._sock, limit=self.max_header_bytes
        )
        self._ready.set()
        await self._stop.wait()
        server.close()
        for conn in list(self._conns):
            conn.writer.transport.abort()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=1.0)

    # ------------------------------------------------------------------ connections
    def _admit(self, conn: _Conn, always: bool = False) -> bool:
        """Make room under both caps, closing the oldest idle connections; False if none is idle,
        unless `always` (a health check or scrape: short, and it must be answered)."""
        for same_peer, cap in (
            (True, self.max_connections_per_client),
            (False, self.max_connections),
        ):
            held = [c for c in self._conns if not same_peer or c.peer == conn.peer]
            excess = len(held) - cap + 1
            if excess <= 0:
                continue
            idle = [c for c in held if c.idle][:excess]
            if len(idle) < excess and not always:
                return False
            for old in idle:
                log.debug("closing idle connection from %s to make room", old.peer)
                old.writer.transport.abort()
                self._conns.remove(old)
        self._conns.append(conn)
        return True

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        peer = writer.get_extra_info("peername")
        conn = _Conn(str(peer[0]) if peer else "?", writer)
        self._tasks.add(task)
        try:
            try:
                if self._pending + len(self._conns) >= 2 * self.max_connections:
                    return  # a flood faster than ADMIT_WAIT_S: refuse outright, bounded memory
                # Caps are applied after a short wait for the request head, so that a client that
                # sends at once (a health check) is never the idle one closed to make room for a
                # flood.
                self._pending += 1
                try:
                    head = await self._read_head(conn, reader, ADMIT_WAIT_S)
                finally:
                    self._pending -= 1
                conn.idle = head is None
                if self._admit(conn, always=_control_request(head)):
                    await self._serve(conn, reader, writer, head)
                elif head is not None:  # a whole request is answered, not dropped
                    await self._reply(reader, writer, OVER_CAP, head_only=False)
            except _BadRequest as e:  # a head over the limit, in the first wait
                await self._reply(reader, writer, Reply(e.status, str(e).encode()), head_only=False)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.TimeoutError) as e:
            _client_gone(conn, e)  # it went away or stopped reading: nothing to answer
        except OSError as e:
            if e.errno not in CLIENT_GONE_ERRNOS:
                log.exception("HTTP request failed")
            else:
                _client_gone(conn, e)
        except asyncio.CancelledError:
            pass
        except Exception:
            log.exception("HTTP request failed")
        finally:
            if conn in self._conns:
                self._conns.remove(conn)
            writer.transport.abort()
            self._tasks.discard(task)

    async def _read_head(
        self, conn: _Conn, reader: asyncio.StreamReader, timeout: float
    ) -> list[str] | None:
        """The request head's lines (request line first, line ends stripped), or None if the head
        has not all arrived within `timeout`. The lines read so far wait in `conn.head` for the
        next call, so a timeout loses nothing (``readuntil`` takes a line only once it is whole).

        A line may end with a bare LF instead of CRLF (RFC 9112 section 2.2 lets a recipient accept
        it). Accepting is as simple as rejecting, as both need the head read line by line to notice
        the LF, and it is safe here: a body is never read and every reply closes the connection,
        so no later request can be misframed. A bare CR stays invalid (400)."""

        async def read() -> list[str]:
            while True:
                line = await reader.readuntil(b"\n")
                conn.head_size += len(line)
                if conn.head_size > self.max_header_bytes:
                    raise _BadRequest(431, f"request head over {self.max_header_bytes} bytes\n")
                line = line[:-2] if line.endswith(b"\r\n") else line[:-1]
                if b"\r" in line:
                    raise _BadRequest(400, "bare CR in the request head\n")
                if line:
                    conn.head.append(line.decode("latin-1"))
                elif conn.head:  # the empty line that ends the head
                    return conn.head
                # an empty line before the request line is ignored (RFC 9112 section 2.2)

        try:
            return await asyncio.wait_for(read(), timeout)
        except asyncio.LimitOverrunError:
            raise _BadRequest(431, f"request head over {self.max_header_bytes} bytes\n") from None
        except asyncio.TimeoutError:
            return None

    async def _serve(
        self,
        conn: _Conn,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        head: list[str] | None,
    ) -> None:
        app = self.app  # the app of the moment the connection was admitted, across a reload
        req = await self._request(conn, reader, writer, head)
        if req is None:
            return
        head_only = req.method == "HEAD"
        if not app.authorized(req.headers, req.query):
            await self._reply(
                reader,
                writer,
                Reply(
                    401,
                    b"bearer token required\n",
                    headers=[("WWW-Authenticate", 'Bearer realm="edgedetect"')],
                ),
                head_only,
            )
            return
        if req.path == "/stream.mjpg":
            await self._stream(app, reader, writer, head_only)
            return
        await self._reply(reader, writer, await self._respond(app, req), head_only)

    async def _request(
        self,
        conn: _Conn,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        head: list[str] | None,
    ) -> _Request | None:
        """The parsed request, or None once a malformed, oversized or late one is answered."""
        try:
            if head is None:
                head = await self._read_head(
                    conn, reader, max(0.0, self.header_timeout_s - ADMIT_WAIT_S)
                )
                if head is None:
                    raise _BadRequest(408, "request head not received in time\n")
            conn.idle = False
            req = _parse_head(head)
            _check_body(req, self.max_body_bytes)
        except _BadRequest as e:
            conn.idle = False
            headers = [("Allow", "GET, HEAD")] if e.status == 405 else []
            await self._reply(
                reader, writer, Reply(e.status, str(e).encode(), headers=headers), head_only=False
            )
            return None
        return req

    async def _respond(self, app: HttpApp, req: _Request) -> Reply:
        """The endpoint's reply, made on a worker thread (/healthz and /metrics on the reserved
        one, so they answer while the others are busy); a failing endpoint is a 500."""
        pool = self._control if req.path in HttpApp.CONTROL else self._work
        try:
            return await asyncio.get_running_loop().run_in_executor(
                pool, app.respond, req.path, req.query, req.headers
            )
        except Exception:  # a bug behind an endpoint: logged, answered, the server goes on
            log.exception("HTTP %s failed", req.path)
            return Reply(500, b"internal error; see the service log\n")

    async def _send(self, writer: asyncio.StreamWriter, data: bytes) -> None:
        """Write `data`; TimeoutError when the client does not take it within the send deadline."""
        writer.write(data)
        await asyncio.wait_for(writer.drain(), self.send_timeout_s)

    async def _reply(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        reply: Reply,
        head_only: bool,
    ) -> None:
        try:  # from the first line: the reply's file is closed whatever fails
            length = reply.length if reply.file is not None else len(reply.body)
            headers = [("Content-Type", reply.content_type), *SECURITY_HEADERS, *reply.headers]
            if reply.status != 304:
                headers.insert(1, ("Content-Length", str(length)))
            if not any(k == "Cache-Control" for k, _ in reply.headers):
                headers.append(("Cache-Control", "no-store"))
            body = b"" if head_only or reply.file is not None or reply.status == 304 else reply.body
            await self._send(writer, _head_bytes(reply.status, headers) + body)
            if reply.file is not None and not head_only:
                await self._send_file(writer, reply.file, length)
        finally:
            if reply.file is not None:
                reply.file.close()
        await self._linger(reader, writer)

    async def _send_file(self, writer: asyncio.StreamWriter, f: BinaryIO, length: int) -> None:
        """`length` bytes of `f` in chunks, read on a worker (a slow SD card must not stall the
        loop); each chunk under the send deadline. A file cut short ends the connection early."""
        loop = asyncio.get_running_loop()
        while length > 0:
            chunk = await loop.run_in_executor(self._work, f.read, min(FILE_CHUNK, length))
            if not chunk:
                return
            await self._send(writer, chunk)
            length -= len(chunk)

    async def _linger(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Half-close, then drop what the client still sends (bounded), so it reads the reply
        instead of a reset; a body is never read for its content."""
        if writer.can_write_eof():
            writer.write_eof()

        async def drop() -> None:
            dropped = 0
            while dropped < DRAIN_LIMIT and (chunk := await reader.read(16384)):
                dropped += len(chunk)

        with contextlib.suppress(asyncio.TimeoutError, ConnectionError):
            await asyncio.wait_for(drop(), 1.0)

    async def _stream(
        self,
        app: HttpApp,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        head_only: bool,
    ) -> None:
        """multipart/x-mixed-replace: one JPEG part per new frame, at most `stream_fps`."""
        headers = [
            ("Content-Type", STREAM_TYPE),
            ("Cache-Control", "no-cache, private"),
            ("Pragma", "no-cache"),
        ]
        if head_only:
            await self._send(writer, _head_bytes(200, headers))
            await self._linger(reader, writer)
            return
        if not app.open_stream():
            await self._reply(reader, writer, Reply(503, b"too many stream clients\n"), False)
            return
        try:  # at once: the slot is given back whatever fails from here on
            if writer.transport.is_closing():  # a reset already closed the socket
                raise ConnectionResetError("stream viewer went away")
            _small_send_buffer(writer)
            await self._send_frames(app, reader, writer, headers)
        finally:
            app.close_stream()

    async def _send_frames(
        self,
        app: HttpApp,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        headers: list[tuple[str, str]],
    ) -> None:
        """The stream's head, then each new frame until the service stops, the viewer closes
        or it takes no data within the send deadline."""
        loop = asyncio.get_running_loop()
        gone = asyncio.ensure_future(reader.read(4096))  # EOF: the viewer closed
        try:
            await self._send(writer, _head_bytes(200, headers))
            period = 1.0 / app.stream_fps
            last_id = None
            while not app.stopping.is_set():
                t0 = loop.time()
                got = await loop.run_in_executor(self._work, app.jpeg)
                if got is not None and got[0] != last_id:
                    last_id, data = got
                    try:
                        await self._send(writer, _jpeg_part(data))
                    except asyncio.TimeoutError:
                        log.info(
                            "stream viewer %s took no data for %.0f s; disconnected",
                            writer.get_extra_info("peername"),
                            self.send_timeout_s,
                        )
                        return
                done, _ = await asyncio.wait({gone}, timeout=max(0.0, period - (loop.time() - t0)))
                if done:
                    if gone.exception() is not None or not gone.result():
                        return
                    gone = asyncio.ensure_future(reader.read(4096))  # stray bytes: dropped
        finally:
            gone.cancel()


def _client_gone(conn: _Conn, e: BaseException) -> None:
    """A client that hangs up is normal: one debug line, no traceback."""
    log.debug("HTTP client %s went away: %s", conn.peer, f"{type(e).__name__}: {e}".rstrip(": "))


def _small_send_buffer(writer: asyncio.StreamWriter) -> None:
    """Bound what a stream viewer's socket and transport hold (``STREAM_SNDBUF``): a slow viewer
    then blocks our send, so it gets the newest frame next instead of a backlog of old ones, and a
    stalled one runs into the send timeout."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, STREAM_SNDBUF)
    writer.transport.set_write_buffer_limits(high=STREAM_SNDBUF)


def _jpeg_part(data: bytes) -> bytes:
    """One part of the multipart/x-mixed-replace stream."""
    head = f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(data)}\r\n\r\n"
    return head.encode() + data + b"\r\n"


def stop_server(server: HttpServer) -> None:
    """Stop a server that may never have been started (its socket is closed either way)."""
    try:
        server.stop()
    except RuntimeError:  # a server that joins a thread it never started
        pass
