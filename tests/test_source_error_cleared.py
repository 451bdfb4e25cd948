"""/healthz said 200 with `source_connected` true beside the `source_error` of the outage just
over: a reopened source kept its last error until its first frame was read. A service test saw it
once under load (the looping file deleted and put back). A source is connected or failing, never
both: the error goes when the source opens again."""

from __future__ import annotations

import threading

import numpy as np

from edgedetect.errors import SourceLost
from edgedetect.resilient import ResilientSource
from edgedetect.sources import FrameSource


class Camera(FrameSource):
    """A live source: `fail` raises on the first read; otherwise a read waits for `release`."""

    live = True

    def __init__(self, fail: bool, release: threading.Event) -> None:
        super().__init__("usb:0")
        self.fail = fail
        self.release = release

    def _grab(self) -> tuple[np.ndarray, np.ndarray | None, str] | None:
        if self.fail:
            raise SourceLost("camera unplugged")
        self.release.wait(10)
        return np.zeros((48, 64, 3), np.uint8), None, ""

    def close(self) -> None:
        """Nothing to release (the test's `release` lets the waiting read go)."""


def test_a_reopened_source_shows_no_error_of_the_outage_before_its_first_frame() -> None:
    release = threading.Event()
    opened: list[Camera] = []

    def opener(spec: str) -> Camera:
        if len(opened) == 1:  # the first reopen fails too: the error is the last one seen
            opened.append(Camera(True, release))
            raise SourceLost("no camera at usb:0")
        opened.append(Camera(len(opened) == 0, release))
        return opened[-1]

    src = ResilientSource("usb:0", opener, reconnect_min_s=0.01, reconnect_max_s=0.02)
    src.open()
    got: list[object] = []
    reader = threading.Thread(target=lambda: got.append(src.read()), daemon=True)
    reader.start()
    try:
        for _ in range(500):  # lost, one reopen failed, reopened: its first read waits
            if len(opened) == 3 and src.connected:
                break
            threading.Event().wait(0.01)
        assert len(opened) == 3 and src.connected, "never reopened"
        assert src.reconnects >= 2 and not got, "the first frame was read already"
        assert src.last_error == "", src.last_error
    finally:
        release.set()
        reader.join(5)
        src.close()
    assert got and got[0] is not None
