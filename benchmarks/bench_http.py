"""HTTP server under hostile loopback clients; prints JSON.

1. ``/healthz`` latency (p50/p99/max, each request on a new connection) while 40 half-open
   connections are held open (reopened as soon as the server closes one; half of them sent part
   of a request line) and 3 stream viewers never read.
2. RSS, thread count and open descriptors of the server process after 1,000 ``/stream.mjpg``
   connect / read-one-part / disconnect cycles, against the same after 50 warm-up cycles.

The server runs in a child process (this script with ``--serve``) so that the client side's
memory and threads are not counted; it is the real ``HttpServer`` + ``HttpApp`` with
prometheus-client metrics and real JPEGs (a photo re-encoded for every new frame at 15 fps).
Loopback only, every loop bounded.

    python benchmarks/bench_http.py [--requests 300] [--cycles 1000]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve()


def serve(threads: int, stream_fps: float) -> None:
    """Child: serve on 127.0.0.1:0, print the port, run until stdin closes."""
    import cv2
    from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest

    from edgedetect.service.http import HttpServer
    from edgedetect.service.webapp import HttpApp

    registry = CollectorRegistry()
    frames = Counter("edgedetect_frames", "frames", registry=registry)
    up = Gauge("edgedetect_uptime_seconds", "uptime", registry=registry)
    photo = cv2.imread(str(HERE.parents[1] / "data" / "images" / "astronaut.jpg"))
    if photo is None:
        photo = np.random.default_rng(0).integers(0, 255, (480, 640, 3), np.uint8)
    t0 = time.monotonic()
    lock = threading.Lock()
    cache: list[tuple[int, bytes]] = []

    def jpeg() -> tuple[int, bytes]:
        frame_id = int((time.monotonic() - t0) * 15)  # a 15 fps camera
        with lock:
            if cache and cache[0][0] == frame_id:
                return cache[0]
        img = photo.copy()
        cv2.putText(img, str(frame_id), (10, 40), cv2.FONT_HERSHEY_SIMPLEX, 1.2, (0, 255, 0), 2)
        got = (frame_id, cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 75])[1].tobytes())
        with lock:
            cache[:] = [got]
        return got

    def health() -> tuple[bool, dict]:
        return True, {"status": "ok", "uptime_s": round(time.monotonic() - t0, 1)}

    def metrics() -> bytes:
        frames.inc()
        up.set(time.monotonic() - t0)
        return generate_latest(registry)

    app = HttpApp(health, metrics, jpeg, stream_fps=stream_fps, max_streams=3)
    server = HttpServer(app, "127.0.0.1", 0, threads).start()
    print(server.port, flush=True)
    sys.stdin.read()  # the parent closes our stdin to stop us
    server.stop()


def _proc(pid: int) -> dict[str, float]:
    status = Path(f"/proc/{pid}/status").read_text()
    values = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    return {
        "rss_mb": round(int(values["VmRSS"].split()[0]) / 1024, 2),
        "threads": int(values["Threads"]),
        "fds": len(os.listdir(f"/proc/{pid}/fd")),
    }


def _get(port: int, path: str, timeout: float) -> tuple[int, float]:
    """One GET on a new connection: (status or 0 on error/timeout, seconds)."""
    t0 = time.perf_counter()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
            data = b""
            while chunk := s.recv(65536):
                data += chunk
        return int(data.split(b" ", 2)[1]), time.perf_counter() - t0
    except (OSError, ValueError, IndexError):
        return 0, time.perf_counter() - t0


def _stream_cycle(port: int) -> bool:
    """Connect to the stream, read its headers and one part, disconnect."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.sendall(b"GET /stream.mjpg HTTP/1.1\r\nHost: x\r\n\r\n")
            data = b""
            while data.count(b"--edgedetectframe") < 2 and len(data) < 4_000_000:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
            return data.startswith(b"HTTP/1.1 200") and b"--edgedetectframe" in data
    except OSError:
        return False


class HalfOpen:
    """`n` connections that never finish a request, reopened whenever the server closes one."""

    def __init__(self, port: int, n: int) -> None:
        self.port, self.n = port, n
        self.socks: list[socket.socket] = []
        self.reopened = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _open(self, i: int) -> socket.socket:
        s = socket.create_connection(("127.0.0.1", self.port), timeout=5)
        if i % 2:
            s.sendall(b"GET /heal")
        s.setblocking(False)
        return s

    def _run(self) -> None:
        self.socks = [self._open(i) for i in range(self.n)]
        while not self._stop.wait(0.05):
            for i, s in enumerate(self.socks):
                try:
                    closed = s.recv(1024) == b""
                except BlockingIOError:
                    closed = False
                except OSError:
                    closed = True
                if closed:
                    s.close()
                    self.socks[i] = self._open(i)
                    self.reopened += 1

    def __enter__(self) -> HalfOpen:
        self._thread.start()
        time.sleep(0.5)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)
        for s in self.socks:
            s.close()


def stalled_viewers(port: int, n: int) -> list[socket.socket]:
    socks = []
    for _ in range(n):
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.connect(("127.0.0.1", port))
        s.sendall(b"GET /stream.mjpg HTTP/1.1\r\nHost: x\r\n\r\n")
        socks.append(s)  # never read
    return socks


def _parser() -> argparse.ArgumentParser:
    """The command line; ``--serve`` is the child's, hidden from ``--help``."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--threads", type=int, default=4, help="the server's [http] threads")
    ap.add_argument("--stream-fps", type=float, default=10.0, help="the server's [http] stream_fps")
    ap.add_argument("--requests", type=int, default=300, help="/healthz requests under attack")
    ap.add_argument("--cycles", type=int, default=1000, help="stream connect/disconnect cycles")
    ap.add_argument("--timeout", type=float, default=5.0, help="per-request client timeout, s")
    return ap


def _start_server(threads: int, stream_fps: float) -> subprocess.Popen[str]:
    """This script with ``--serve`` in a child, so the client side's memory is not counted."""
    return subprocess.Popen(
        [
            sys.executable,
            str(HERE),
            "--serve",
            "--threads",
            str(threads),
            "--stream-fps",
            str(stream_fps),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )


def _stop_server(child: subprocess.Popen[str]) -> None:
    """Close the child's stdin (its stop signal); kill it if it has not exited within 10 s."""
    if child.stdin:
        child.stdin.close()
    try:
        child.wait(10)
    except subprocess.TimeoutExpired:
        child.kill()


def _healthz_latencies(port: int, requests: int, timeout: float) -> tuple[list[float], int]:
    """``requests`` /healthz GETs, 10 ms apart: latencies in ms and the count of non-200s.

    Bounded in time too (``requests`` x ``timeout``), so a wedged server cannot hang the run.
    """
    latencies_ms: list[float] = []
    errors = 0
    t_end = time.monotonic() + requests * timeout
    for _ in range(requests):
        status, seconds = _get(port, "/healthz", timeout)
        latencies_ms.append(seconds * 1000)
        errors += status != 200
        if time.monotonic() > t_end:
            break
        time.sleep(0.01)
    return latencies_ms, errors


def _healthz_under_attack(port: int, requests: int, timeout: float) -> dict[str, Any]:
    """Part 1: /healthz latency while 40 half-open connections and 3 stalled viewers hold on."""
    viewers = stalled_viewers(port, 3)
    with HalfOpen(port, 40) as half_open:
        lat, errors = _healthz_latencies(port, requests, timeout)
        metrics_status, _ = _get(port, "/metrics", timeout)
        reopened = half_open.reopened
    new_viewer, _ = _get(port, "/snapshot.jpg", timeout)
    for s in viewers:
        s.close()
    return {
        "half_open": 40,
        "stalled_viewers": 3,
        "requests": len(lat),
        "errors": errors,
        "p50_ms": round(float(np.percentile(lat, 50)), 2),
        "p99_ms": round(float(np.percentile(lat, 99)), 2),
        "max_ms": round(max(lat), 2),
        "target_p99_ms": 100,
        "met": float(np.percentile(lat, 99)) < 100 and errors == 0,
        "metrics_status": metrics_status,
        "half_open_closed_by_server": reopened,
        "snapshot_status_after": new_viewer,
    }


def _stream_churn(port: int, server_pid: int, cycles: int) -> dict[str, Any]:
    """Part 2: the server's RSS / threads / fds after 50 warm-up stream cycles vs after
    ``cycles`` more; growth there is a leak per viewer."""
    time.sleep(1.0)
    ok = sum(_stream_cycle(port) for _ in range(50))
    time.sleep(1.0)
    before = _proc(server_pid)
    t0 = time.monotonic()
    ok += sum(_stream_cycle(port) for _ in range(cycles))
    churn_s = time.monotonic() - t0
    time.sleep(1.0)  # the server notices the last closes within a frame period
    after = _proc(server_pid)
    return {
        "cycles": cycles,
        "ok": ok,
        "seconds": round(churn_s, 1),
        "before": before,
        "after": after,
        "rss_growth_mb": round(after["rss_mb"] - before["rss_mb"], 2),
        "target_rss_growth_mb": 5,
        "met": abs(after["rss_mb"] - before["rss_mb"]) <= 5
        and after["threads"] == before["threads"],
    }


def main() -> None:
    args = _parser().parse_args()
    if args.serve:
        serve(args.threads, args.stream_fps)
        return
    child = _start_server(args.threads, args.stream_fps)
    try:
        assert child.stdout is not None
        port = int(child.stdout.readline())
        result: dict[str, Any] = {
            "threads": args.threads,
            "stream_fps": args.stream_fps,
            "cpu_count": os.cpu_count(),
        }
        result["healthz_under_attack"] = _healthz_under_attack(port, args.requests, args.timeout)
        result["stream_churn"] = _stream_churn(port, child.pid, args.cycles)
        print(json.dumps(result, indent=2))
    finally:
        _stop_server(child)


if __name__ == "__main__":
    main()
