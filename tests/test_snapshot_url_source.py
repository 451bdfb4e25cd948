"""`run --source http://cam/snapshot.jpg`, the single-image URL most IP cameras have: FFmpeg
reads one frame per connection, so the source is reopened for each frame, and every one of them
logged "source ... lost: ... stopped delivering frames (unplugged, or stream dropped);
reconnecting with backoff" (a warning per frame, all day). Now, once a live source has given one
frame per open twice in a row, one line says it looks like a snapshot URL and later ends go to
debug level; a stream that drops after several frames still warns each time."""

from __future__ import annotations

import functools
import http.server
import logging
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_resilient import Scripted, _read_all

from edgedetect.resilient import ResilientSource

IMAGE = Path(__file__).resolve().parents[1] / "data" / "images" / "astronaut.jpg"


@pytest.fixture
def snapshot_url(tmp_path: Path) -> Iterator[str]:
    """A real HTTP server on loopback serving one JPEG, as a camera's snapshot URL does."""
    shutil.copy(IMAGE, tmp_path / "snapshot.jpg")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    handler.log_message = lambda *a: None  # type: ignore[attr-defined]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/snapshot.jpg"
    server.shutdown()
    server.server_close()


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


def test_a_snapshot_url_is_polled_without_a_warning_per_frame(
    snapshot_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="edgedetect.source")
    src = ResilientSource(snapshot_url, reconnect_min_s=0.01).open()
    try:
        frames = [src.read() for _ in range(6)]
    finally:
        src.close()
    assert all(f is not None and f.image.shape == (512, 512, 3) for f in frames)
    warnings = _warnings(caplog)
    assert sum(" lost: " in w for w in warnings) == 1, warnings
    assert sum("one image per connection (a snapshot URL?)" in w for w in warnings) == 1, warnings
    assert len(warnings) == 2, warnings
    debug = [r.getMessage() for r in caplog.records if r.levelno == logging.DEBUG]
    assert sum(" lost: " in d for d in debug) >= 3, debug  # still there, at debug level


def test_a_stream_that_drops_after_several_frames_warns_each_time(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="edgedetect.source")
    opener = lambda spec: Scripted(3, live=True, lose=True)  # noqa: E731
    src = ResilientSource("rtsp://cam/live", opener, reconnect_min_s=0.01).open()
    try:
        assert _read_all(src, 10) == list(range(10))
    finally:
        src.close()
    warnings = _warnings(caplog)
    assert sum(" lost: " in w for w in warnings) == 3 and len(warnings) == 3, warnings
