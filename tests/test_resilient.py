"""The reconnecting source wrapper: liveness from the opened source, one frame counter, counters.

The inner sources are small `FrameSource` test doubles (numbered by `FrameSource` itself), or
the real `open_source` on real files.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest

from edgedetect.errors import SourceError, SourceLost
from edgedetect.resilient import ResilientSource
from edgedetect.sources import FrameSource, ImageFilesSource, VideoCaptureSource, open_source

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "data" / "sample.mp4"


class Scripted(FrameSource):
    """Test double: `n` frames, then the end (or `SourceLost` when `lose`); `garbage` bad frames
    first; `live` as given. Pixels hold the frame id, so a renumbered frame would show."""

    def __init__(self, n: int, *, live: bool, lose: bool = False, garbage: int = 0) -> None:
        super().__init__("scripted")
        self.n, self.live, self.lose, self.garbage = n, live, lose, garbage
        self.grabbed = 0

    def _grab(self):
        if self.grabbed >= self.n:
            if self.lose:
                raise SourceLost("scripted source unplugged")
            return None
        self.grabbed += 1
        if self.grabbed <= self.garbage:
            return np.zeros((4, 4), np.uint8), None, ""
        return np.full((16, 16, 3), self.next_id % 256, np.uint8), None, ""


def _read_all(src: ResilientSource, limit: int) -> list[int]:
    ids: list[int] = []
    while len(ids) < limit:
        frame = src.read()
        if frame is None:
            break
        assert int(frame.image[0, 0, 0]) == frame.id % 256  # the id the inner source gave it
        ids.append(frame.id)
    return ids


def test_liveness_comes_from_the_opened_source_not_the_spec() -> None:
    # a spec that reads like a stream, opened as a file: ends normally, never reconnects
    src = ResilientSource("http://cam.local/stream", lambda s: Scripted(3, live=False)).open()
    assert src.live is False
    assert _read_all(src, 10) == [0, 1, 2] and src.reconnects == 0
    assert src.read() is None and src.reconnects == 0  # ended stays ended
    src.close()
    # a spec that reads like a folder, opened as a camera: its end is a drop, and it is reopened
    opened: list[Scripted] = []

    def camera(spec: str) -> Scripted:
        opened.append(Scripted(3, live=True))
        return opened[-1]

    src = ResilientSource("dir:/somewhere", camera, reconnect_min_s=0.01).open()
    assert src.live is True
    assert _read_all(src, 7) == list(range(7)) and len(opened) == 3
    src.close()


def test_real_sources_say_whether_they_are_live(tmp_path: Path) -> None:
    (tmp_path / "a.jpg").write_bytes((REPO / "data" / "images" / "astronaut.jpg").read_bytes())
    assert open_source(f"dir:{tmp_path}").live is False
    assert open_source(str(SAMPLE)).live is False
    wrapped = ResilientSource(str(SAMPLE)).open()
    assert wrapped.live is False
    inner = wrapped.detach()  # a file needs no reconnecting: the caller reads it directly
    assert isinstance(inner, VideoCaptureSource) and inner.read() is not None
    inner.close()
    folder = ResilientSource(f"dir:{tmp_path}").open()
    assert folder.live is False and isinstance(folder.inner, ImageFilesSource)
    assert folder.read() is not None and folder.read() is None  # one image, then the end
    folder.close()


def test_ids_continue_across_reconnects_with_one_counter() -> None:
    plans = [
        Scripted(4, live=True, lose=True),
        Scripted(3, live=True, lose=True, garbage=2),
        Scripted(100, live=True),
    ]
    opened: list[Scripted] = []

    def opener(spec: str) -> Scripted:
        opened.append(plans[len(opened)])
        return opened[-1]

    src = ResilientSource("usb:0", opener, reconnect_min_s=0.01)
    src.next_id = 100  # a caller may start the count anywhere; the inner source continues it
    src.open()
    ids = _read_all(src, 9)
    src.close()
    # 100-103 from the first opening; 104-105 were garbage (counted, skipped), 106 good; then on
    assert ids == [100, 101, 102, 103, 106, 107, 108, 109, 110]
    assert opened[1].next_id == 107 and opened[2].next_id >= 111  # each continued the last one
    stats = src.stats()
    assert stats["reconnects"] == 2 and stats["errors"] == 2 and stats["garbage"] == 2
    assert stats["live"] is True and stats["stalls"] == 0


def test_a_stalled_read_is_abandoned_and_counted() -> None:
    release = threading.Event()

    class Stuck(Scripted):
        def _grab(self):
            if self.grabbed >= 2:
                release.wait(20)  # a driver that never returns
                return None
            return super()._grab()

    opened: list[Scripted] = []

    def opener(spec: str) -> Scripted:
        opened.append(Stuck(2, live=True) if not opened else Scripted(100, live=True))
        return opened[-1]

    src = ResilientSource("usb:0", opener, stall_timeout_s=1.5, reconnect_min_s=0.01).open()
    try:
        assert _read_all(src, 4) == [0, 1, 2, 3]
        assert src.stats()["stalls"] == 1 and len(opened) == 2
    finally:
        release.set()
        src.close()


def test_open_fails_fast_or_waits() -> None:
    attempts: list[float] = []

    def booting(spec: str) -> Scripted:
        attempts.append(time.monotonic())
        if len(attempts) < 3:
            raise SourceLost("stream not up yet")
        return Scripted(2, live=True)

    with pytest.raises(SourceLost, match="not up yet"):
        ResilientSource("rtsp://cam/s", booting).open()
    attempts.clear()
    src = ResilientSource("rtsp://cam/s", booting, reconnect_min_s=0.01).open(wait=True)
    assert len(attempts) == 3 and src.connected
    frame = src.read()
    assert frame is not None and frame.id == 0
    src.close()

    def broken(spec: str) -> Scripted:
        raise SourceError("unknown source spec")

    with pytest.raises(SourceError, match="unknown"):  # a bad spec is not waited for
        ResilientSource("nonsense", broken).open(wait=True)


def test_close_ends_a_wait_for_a_source_that_never_comes() -> None:
    def absent(spec: str) -> Scripted:
        raise SourceLost("no such device")

    src = ResilientSource("usb:7", absent, reconnect_min_s=0.05)
    timer = threading.Timer(0.3, src.close)
    timer.start()
    t0 = time.monotonic()
    src.open(wait=True)
    assert time.monotonic() - t0 < 5 and not src.connected and src.read() is None
    timer.join()
