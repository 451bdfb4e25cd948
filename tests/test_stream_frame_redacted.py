"""A stream's frames carried its spec as their source, password and all, and `edgedetect run
--events` wrote it into every JSON line ("source": "rtsp://admin:PASSWORD@..."); logs, /healthz
and errors already hid it. Frames now carry the spec as `redact` shows it."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import cv2
import numpy as np
import pytest

from edgedetect.sources import open_source


@pytest.fixture()
def mjpeg_url() -> Iterator[str]:
    """A loopback MJPEG server (multipart/x-mixed-replace, as IP cameras serve it)."""
    jpeg = cv2.imencode(".jpg", np.full((48, 64, 3), 120, np.uint8))[1].tobytes()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
            self.end_headers()
            try:
                for _ in range(100):
                    self.wfile.write(
                        b"--frame\r\nContent-Type: image/jpeg\r\n"
                        + f"Content-Length: {len(jpeg)}\r\n\r\n".encode()
                        + jpeg
                        + b"\r\n"
                    )
                    time.sleep(0.02)
            except OSError:
                pass  # the reader closed

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://admin:hunter2@127.0.0.1:{server.server_address[1]}/s.mjpg?token=tk9"
    finally:
        server.shutdown()
        server.server_close()


def test_a_stream_frame_names_its_source_without_the_password(mjpeg_url: str) -> None:
    src = open_source(mjpeg_url)
    try:
        frame = src.read()
    finally:
        src.close()
    assert frame is not None and frame.image.shape == (48, 64, 3)
    assert "hunter2" not in frame.source and "tk9" not in frame.source, frame.source
    assert frame.source.startswith("http://admin:***@127.0.0.1:"), frame.source
