"""A source wrapper that survives cameras and streams going away, stalling or returning garbage.

`ResilientSource` looks like any `FrameSource` to the pipeline (`read()`, `close()`), but
  - reopens the inner source with exponential backoff when it raises or ends unexpectedly
    (live sources; files and folders end normally, or restart when `loop` is set),
  - runs the inner `read()` on its own reader thread so that a read that blocks forever (a
    stalled camera or RTSP stream) is detected after `stall_timeout_s`: the stuck source is
    abandoned and a new one opened; a stuck thread is left to finish on its own, and after
    `max_abandoned` of them the source gives up (the process exits non-zero and systemd
    restarts it) so threads cannot pile up,
  - drops frames that are not HxWx3 uint8 images (counted), and
  - renumbers frame ids so they stay strictly increasing across reconnects.
Memory stays bounded: one frame in a one-slot hand-over, no retry queues.
"""

from __future__ import annotations

import dataclasses
import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from edgedetect.errors import SourceError, SourceLost
from edgedetect.service.config import redact

log = logging.getLogger("edgedetect.source")

LIVE_PREFIXES = ("picam", "usb:", "rtsp://", "rtsps://", "http://", "https://", "/dev/video")


def is_live(spec: str) -> bool:
    """Cameras and network streams are expected to run forever; files and folders end."""
    return spec.strip().lower().startswith(LIVE_PREFIXES)


def valid_image(image: Any) -> bool:
    return (isinstance(image, np.ndarray) and image.dtype == np.uint8 and image.ndim == 3
            and image.shape[2] == 3 and image.shape[0] >= 8 and image.shape[1] >= 8)


class _Reader:
    """One inner source and the thread that reads it into a one-slot hand-over."""

    def __init__(self, source: Any) -> None:
        self.source = source
        self.slot: queue.Queue = queue.Queue(maxsize=1)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="source-reader", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            while not self.stop.is_set():
                try:
                    item: Any = ("frame", self.source.read())
                except Exception as e:  # reported to the consumer, which decides to reconnect
                    item = ("error", e)
                while not self.stop.is_set():
                    try:
                        self.slot.put(item, timeout=0.2)
                        break
                    except queue.Full:
                        continue
                if item[0] == "error" or item[1] is None:
                    return
        finally:
            try:
                self.source.close()
            except Exception as e:
                log.debug("closing source: %s", e)

    def shutdown(self) -> None:
        self.stop.set()


class ResilientSource:
    """Reconnecting, stall-detecting, validating wrapper around `open_source(spec)`."""

    def __init__(self, spec: str, opener: Callable[[str], Any] | None = None, loop: bool = False,
                 stall_timeout_s: float = 10.0, reconnect_max_s: float = 30.0, reconnect_min_s: float = 0.5,
                 max_abandoned: int = 3, max_garbage: int = 30, live: bool | None = None,
                 on_event: Callable[[str], None] | None = None) -> None:
        if opener is None:
            from edgedetect.sources import open_source as opener
        self.spec = spec
        self.shown = redact(spec)  # for logs and errors: no password from an rtsp:// URL
        self.opener = opener
        self.loop = loop
        self.live = is_live(spec) if live is None else live
        self.stall_timeout_s = stall_timeout_s
        self.reconnect_max_s = reconnect_max_s
        self.reconnect_min_s = reconnect_min_s
        self.max_abandoned = max_abandoned
        self.max_garbage = max_garbage
        self.on_event = on_event or (lambda kind: None)  # 'reconnect' | 'stall' | 'error' | 'garbage'
        self._reader: _Reader | None = None
        self._closed = threading.Event()
        self._next_id = 0
        self._abandoned: list[_Reader] = []
        self._backoff = reconnect_min_s
        self.connected = False
        self.reconnects = 0
        self.stalls = 0
        self.errors = 0
        self.garbage = 0
        self.last_attempt = time.monotonic()  # liveness of the reconnect loop (watchdog)
        self.last_error = ""

    @property
    def inner(self) -> Any:
        """The current inner source (e.g. for the picamera2 preview), or None while reconnecting."""
        return self._reader.source if self._reader is not None else None

    def open(self) -> ResilientSource:
        """Open once, raising the opener's error: a bad spec at start is a config error, not a retry."""
        self._reader = _Reader(self.opener(self.spec))
        self.connected = True
        return self

    def _connect(self) -> bool:
        """One reconnect attempt after the current backoff; False if closed meanwhile."""
        while not self._closed.is_set():
            self.last_attempt = time.monotonic()
            self.reconnects += 1
            self.on_event("reconnect")
            try:
                self._reader = _Reader(self.opener(self.spec))
                self.connected = True
                log.info("source %s reopened", self.shown)
                return True
            except Exception as e:
                self.last_error = redact(str(e))
                log.warning("source %s: reopen failed (%s); retrying in %.1f s", self.shown, self.last_error,
                            self._backoff)
                if self._closed.wait(self._backoff):
                    return False
                self._backoff = min(self._backoff * 2, self.reconnect_max_s)
        return False

    def _drop_reader(self, abandoned: bool = False) -> None:
        r, self._reader = self._reader, None
        self.connected = False
        if r is None:
            return
        r.shutdown()
        if abandoned:
            self._abandoned = [a for a in self._abandoned if a.thread.is_alive()]
            self._abandoned.append(r)
            if len(self._abandoned) > self.max_abandoned:
                raise SourceLost(f"source {self.shown}: {len(self._abandoned)} reads stuck for more than "
                                 f"{self.stall_timeout_s:g} s; giving up so the service manager restarts us")

    def _lost(self, why: str) -> None:
        self.last_error = redact(why)
        log.warning("source %s lost: %s; reconnecting with backoff", self.shown, self.last_error)
        if self._closed.wait(self._backoff):
            return
        self._backoff = min(self._backoff * 2, self.reconnect_max_s)

    def _wait(self, reader: _Reader) -> tuple[str, Any] | None:
        """The reader's next item; None after `stall_timeout_s` without one, or on close()."""
        deadline = time.monotonic() + self.stall_timeout_s
        while not self._closed.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            try:
                return reader.slot.get(timeout=min(remaining, 0.1))
            except queue.Empty:
                continue
        return None

    def read(self) -> Any:
        """Next valid frame, or None at the end of a (non-looping) file/folder or after close()."""
        garbage_run = 0
        while not self._closed.is_set():
            if self._reader is None and not self._connect():
                return None
            reader = self._reader
            assert reader is not None
            got = self._wait(reader)
            if got is None:
                if self._closed.is_set():
                    return None
                self.stalls += 1
                self.on_event("stall")
                log.error("source %s stalled: no frame for %.1f s; reopening", self.shown, self.stall_timeout_s)
                self._drop_reader(abandoned=True)
                continue
            kind, value = got
            if kind == "error":
                self.errors += 1
                self.on_event("error")
                self._drop_reader()
                if isinstance(value, SourceError) and not isinstance(value, SourceLost) and not self.live \
                        and not self.loop:
                    raise value
                self._lost(str(value) or type(value).__name__)
                continue
            frame = value
            if frame is None:
                self._drop_reader()
                if self.loop and not self.live:
                    log.info("source %s ended; looping", self.shown)
                    continue
                if not self.live:
                    return None
                self._lost("end of stream")
                continue
            if not valid_image(getattr(frame, "image", None)):
                self.garbage += 1
                garbage_run += 1
                self.on_event("garbage")
                if garbage_run >= self.max_garbage:
                    log.warning("source %s: %d unusable frames in a row; reopening", self.shown, garbage_run)
                    self._drop_reader()
                    self._lost("garbage frames")
                    garbage_run = 0
                continue
            garbage_run = 0
            self._backoff = self.reconnect_min_s
            self.last_attempt = time.monotonic()
            lores = getattr(frame, "lores", None)
            if lores is not None and not valid_image(lores):
                lores = None
            frame = dataclasses.replace(frame, id=self._next_id, lores=lores)
            self._next_id += 1
            return frame
        return None

    def close(self) -> None:
        self._closed.set()
        if self._reader is not None:
            self._reader.shutdown()
            self._reader.thread.join(0.5)
            self._reader = None
        self.connected = False
