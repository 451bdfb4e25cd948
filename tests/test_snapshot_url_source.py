"""`run --source http://cam/snapshot.jpg`, the single-image URL most IP cameras have: FFmpeg
reads one frame per connection, so the source is reopened for each frame, and every one of them
logged "source ... lost: ... stopped delivering frames (unplugged, or stream dropped);
reconnecting with backoff" (a warning per frame, all day). Now, once a live source has given one
frame per open twice in a row, one line says it looks like a snapshot URL and later ends go to
debug level; a stream that drops after several frames still warns each time.

The first end of a snapshot URL warned "lost ... (unplugged, or stream dropped)" before that line
(docs/pipeline.md promises only the second): a first end after one frame is now held back, and
said only once the next open shows a drop (two frames, or a failed reopen)."""

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
    assert sum("one image per connection (a snapshot URL?)" in w for w in warnings) == 1, warnings
    assert len(warnings) == 1, warnings
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


def _opener(*script: int | Exception):
    """Opens the scripted sources in turn: n frames then a loss, or the exception raised."""
    opens = iter(script)

    def open_next(spec: str) -> Scripted:
        step = next(opens)
        if isinstance(step, Exception):
            raise step
        return Scripted(step, live=True, lose=True)

    return open_next


def test_a_drop_after_one_frame_still_warns_once_the_stream_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="edgedetect.source")
    src = ResilientSource("rtsp://cam/live", _opener(1, 3, 3), reconnect_min_s=0.01).open()
    try:
        assert _read_all(src, 7) == list(range(7))
    finally:
        src.close()
    warnings = _warnings(caplog)
    assert [" lost: scripted source unplugged" in w for w in warnings] == [True, True], warnings


def test_a_drop_after_one_frame_warns_before_a_failed_reopen(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from edgedetect.errors import SourceLost

    caplog.set_level(logging.WARNING, logger="edgedetect.source")
    gone = SourceLost("camera unplugged")
    src = ResilientSource("rtsp://cam/live", _opener(1, gone, 3), reconnect_min_s=0.01).open()
    try:
        assert _read_all(src, 4) == list(range(4))
    finally:
        src.close()
    warnings = _warnings(caplog)
    assert len(warnings) == 2, warnings
    assert " lost: scripted source unplugged" in warnings[0], warnings
    assert "reopen failed: " in warnings[1] and "camera unplugged" in warnings[1], warnings
