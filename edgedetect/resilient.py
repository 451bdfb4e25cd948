"""A source that survives cameras and streams going away, stalling or returning garbage.

`ResilientSource` is itself a `FrameSource`, so the pipeline reads it like any other source. It
  - opens the inner source through `opener(spec)` (by default `open_source`); whether the source
    is live comes from the opened source (cameras and streams), never from the spec string,
  - reopens a live source that raises or ends, with exponential backoff (files and folders end
    normally, or restart when `loop` is set),
  - runs the inner `read()` on its own reader thread, so that a read that blocks forever (a
    stalled camera or RTSP stream) is noticed after `stall_timeout_s`: the stuck source is
    abandoned and a new one opened; a stuck thread is left to finish on its own, and after
    `max_abandoned` of them the source gives up with `SourceLost`, so threads cannot pile up,
  - drops frames that are not HxWx3 uint8 images (counted); a live source that sends nothing else
    is reopened, a file or folder is never restarted by this (its bad frames are logged, skipped),
  - treats a file or folder it cannot read at start as the user's error (raised), never as a
    drop; a looping one that goes away later (deleted, emptied, truncated) raises SourceLost
    in the inner source and is retried like a camera, and
  - numbers nothing itself: a reopened source continues at the wrapper's `next_id`, so frame ids
    stay strictly increasing across reconnects with one counter, the inner source's.
Memory stays bounded: one frame in a one-slot hand-over (`LatestSlot`), no retry queues.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from edgedetect.errors import EdgeDetectError, SourceError, SourceLost
from edgedetect.frame import Frame
from edgedetect.slot import LatestSlot
from edgedetect.sources import FrameSource, open_source, redact

log = logging.getLogger("edgedetect.source")

Opener = Callable[[str], FrameSource]


def valid_image(image: Any) -> bool:
    """A non-empty HxWx3 uint8 (BGR) image; anything else is a broken driver's garbage.

    No minimum size beyond one pixel: the detector and the motion gate resize whatever comes, so
    a small photo in a folder is processed as `edgedetect run` processes it.
    """
    return (
        isinstance(image, np.ndarray)
        and image.dtype == np.uint8
        and image.ndim == 3
        and image.shape[2] == 3
        and image.shape[0] >= 1
        and image.shape[1] >= 1
    )


def _reason(exc: BaseException) -> str:
    """What failed, for a log line and /healthz: a SourceError's message without the list of
    accepted specs (the spec was parsed before), any other error's text or type; redacted."""
    why = getattr(exc, "reason", None) if isinstance(exc, SourceError) else None
    return redact(why or str(exc) or type(exc).__name__)


def _describe(image: Any) -> str:
    """What an unusable frame is, for the log line that says it was skipped."""
    if isinstance(image, np.ndarray):
        return f"a {'x'.join(map(str, image.shape))} {image.dtype} array"
    return type(image).__name__


class _Reader:
    """One inner source and the thread that reads it into a blocking one-slot hand-over.

    The thread starts on the first read, so an opened source can still be handed back
    (`ResilientSource.detach`) untouched. It closes the source on its way out: the thread that
    used a device releases it.
    """

    def __init__(self, source: FrameSource) -> None:
        self.source = source
        self.slot: LatestSlot[tuple[str, Any]] = LatestSlot("source", blocking=True)
        self.thread = threading.Thread(target=self._run, name="source-reader", daemon=True)

    def start(self) -> None:
        if self.thread.ident is None:
            self.thread.start()

    def _run(self) -> None:
        try:
            while not self.slot.closed:
                try:
                    item: tuple[str, Any] = ("frame", self.source.read())
                except Exception as e:  # reported to the consumer, which decides to reconnect
                    item = ("error", e)
                while not self.slot.put(item, timeout=0.2):
                    if self.slot.closed:
                        return
                if item[0] == "error" or item[1] is None:
                    return
        finally:
            self._close_source()

    def _close_source(self) -> None:
        try:
            self.source.close()
        except Exception as e:
            log.debug("closing source: %s", e)

    def shutdown(self, join_s: float = 0.0) -> None:
        """Stop reading; a thread stuck in `read()` is left to finish on its own."""
        self.slot.close(discard=True)
        if self.thread.ident is None:
            self._close_source()
        elif join_s > 0:
            self.thread.join(join_s)


class ResilientSource(FrameSource):
    """Reconnecting, stall-detecting, validating wrapper around `opener(spec)`."""

    def __init__(
        self,
        spec: str,
        opener: Opener | None = None,
        *,
        loop: bool = False,
        stall_timeout_s: float = 10.0,
        reconnect_max_s: float = 30.0,
        reconnect_min_s: float = 0.5,
        max_abandoned: int = 3,
        max_garbage: int = 30,
        on_event: Callable[[str], None] | None = None,
    ) -> None:
        super().__init__(spec)
        self.shown = redact(spec)  # for logs and errors: no password from an rtsp:// URL
        self.opener: Opener = opener or open_source
        self.loop = loop
        self.stall_timeout_s = stall_timeout_s
        self.reconnect_max_s = reconnect_max_s
        self.reconnect_min_s = reconnect_min_s
        self.max_abandoned = max_abandoned
        self.max_garbage = max_garbage
        self.on_event = on_event or (
            lambda kind: None
        )  # 'reconnect' | 'stall' | 'error' | 'garbage'
        self._reader: _Reader | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()  # close() against a reopen that attaches a new source
        self._abandoned: list[_Reader] = []
        self._backoff = reconnect_min_s
        self.connected = False
        self.reconnects = 0
        self.stalls = 0
        self.errors = 0
        self.garbage = 0
        self.last_attempt = time.monotonic()  # liveness of the reconnect loop (watchdog)
        self.last_error = ""
        self._frames_since_open = 0
        self._one_frame_opens = 0  # opens in a row that gave one frame: a snapshot URL
        self._held_loss = ""  # the warning of a first end after one frame, said once it is no URL

    @property
    def inner(self) -> FrameSource | None:
        """The current inner source (e.g. for the picamera2 preview), or None while reconnecting."""
        return self._reader.source if self._reader is not None else None

    def _attach(self, source: FrameSource) -> bool:
        """Adopt a freshly opened source: it continues our numbering and tells us if it is live.

        False, the source closed, when ``close()`` came while it was opening: nobody would
        release it, and a camera left open is busy for the next reload or process.
        """
        with self._lock:
            if self._closed:
                _Reader(source).shutdown()  # never started: closes the source
                return False
            source.next_id = self.next_id
            self.live = bool(source.live)
            self.fps = source.fps
            self._reader = _Reader(source)
            self._frames_since_open = 0
            self.connected = True
            self.last_error = ""  # connected or failing, never both (/healthz shows both fields)
            return True

    def _grow_backoff(self) -> None:
        self._backoff = min(self._backoff * 2, self.reconnect_max_s)

    def open(self, *, wait: bool = False) -> ResilientSource:
        """Open the inner source.

        Without ``wait`` the opener's error is raised: at start, a bad spec is the user's to fix
        and a missing camera is worth saying at once. With ``wait`` a source that is not there
        yet (``SourceLost``, e.g. a stream whose server is still booting) is retried with backoff
        until it opens or ``close()`` is called; other errors are still raised.
        """
        warned = False
        while not self._stop.is_set():
            try:
                if not self._attach(self.opener(self.spec)):
                    break
                if warned:
                    log.warning("source %s is available", self.shown)
                return self
            except SourceLost as e:
                self.live = True  # only cameras and streams are "not there yet": they may come back
                self.last_error = _reason(e)
                if not wait:
                    raise
                if not warned:
                    log.warning(
                        "source %s unavailable (%s); waiting for it", self.shown, self.last_error
                    )
                    warned = True
                if self._stop.wait(self._backoff):
                    break
                self._grow_backoff()
        return self

    def detach(self) -> FrameSource:
        """Hand back the opened inner source, before any read (a file has nothing to reopen)."""
        reader, self._reader = self._reader, None
        if reader is None or reader.thread.ident is not None:
            raise RuntimeError("detach() needs an opened source that has not been read yet")
        self.connected = False
        return reader.source

    def _connect(self) -> bool:
        """Reopen after the current backoff until it works; False if closed meanwhile."""
        while not self._stop.is_set():
            self.last_attempt = time.monotonic()
            self.reconnects += 1
            self.on_event("reconnect")
            try:
                if not self._attach(self.opener(self.spec)):
                    return False
                log.info("source %s reopened", self.shown)
                return True
            except Exception as e:
                self._say_held_loss()
                why = _reason(e)
                repeat = why == self.last_error
                self.last_error = why
                # once per cause: a camera or file gone for days must not log every backoff
                log.log(
                    logging.DEBUG if repeat else logging.WARNING,
                    "source %s: reopen failed: %s; next try in %.2g s "
                    "(backoff up to %g s; repeats at debug level)",
                    self.shown,
                    why,
                    self._backoff,
                    self.reconnect_max_s,
                )
                if self._stop.wait(self._backoff):
                    return False
                self._grow_backoff()
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
                raise SourceLost(
                    f"source {self.shown}: {len(self._abandoned)} reads stuck for "
                    f"more than {self.stall_timeout_s:g} s; giving up (a thread stuck "
                    "in a driver call cannot be stopped; restart the process)"
                )

    def _lost(self, why: str) -> None:
        self.last_error = redact(why)
        text = f"source {self.shown} lost: {self.last_error}; reconnecting with backoff"
        level = self._loss_level()
        if level is None:  # maybe a snapshot URL: said if the next open shows it is not
            self._held_loss = text
        log.log(logging.DEBUG if level is None else level, "%s", text)
        if self._stop.wait(self._backoff):
            return
        self._grow_backoff()

    def _loss_level(self) -> int | None:
        """WARNING for a drop; DEBUG once a live source has given one frame per open twice in a
        row, as a camera's snapshot URL (http://cam/snapshot.jpg) does: it is read again for each
        frame, and a warning per frame would flood the log. Said once; a drop after an open that
        gave more frames is a warning again. None for the first end after one frame: held, so a
        snapshot URL's first end does not warn of a drop before the line that says what it is."""
        one = self.live and self._frames_since_open == 1
        self._one_frame_opens = self._one_frame_opens + 1 if one else 0
        if self._one_frame_opens == 1:
            return None
        if self._one_frame_opens == 2:
            self._held_loss = ""
            log.warning(
                "source %s gives one image per connection (a snapshot URL?): it is opened "
                "again for each frame, and these ends are logged at debug level",
                self.shown,
            )
        self._say_held_loss()
        return logging.DEBUG if self._one_frame_opens >= 2 else logging.WARNING

    def _say_held_loss(self) -> None:
        """The held warning of an end after one frame, once the source shows it was a drop (the
        next open gave two frames, or none, or failed): each drop logs one warning."""
        if self._held_loss:
            log.warning("%s", self._held_loss)
            self._held_loss = ""

    def _wait(self, reader: _Reader) -> tuple[str, Any] | None:
        """The reader's next item; None after `stall_timeout_s` without one, or on close()."""
        deadline = time.monotonic() + self.stall_timeout_s
        while not self._stop.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            got = reader.slot.get(timeout=min(remaining, 0.1))
            if got is not None:
                return got
        return None

    def _grab(self) -> tuple[np.ndarray, np.ndarray | None, str] | None:
        # read() is overridden: frames come numbered from the inner source
        raise NotImplementedError

    def read(self) -> Frame | None:
        """Next valid frame; None at the end of a (non-looping) file/folder, after ``close()`` or
        ``stop_reading()``."""
        garbage_run = 0
        while not self._stop.is_set():
            got = self._next_item()
            if got is None:
                continue
            kind, value = got
            if kind == "error":
                self._failed(value)
                continue
            if value is None:
                if self._ended():
                    return None
                continue
            frame = value
            self.next_id = max(self.next_id, frame.id + 1)
            if not valid_image(frame.image):
                garbage_run = self._garbage(garbage_run + 1, frame)
                continue
            return self._accepted(frame)
        return None

    def _next_item(self) -> tuple[str, Any] | None:
        """The reader's next item, reconnecting first if needed; None to look at ``_stop`` again
        (closed meanwhile, or a stall that abandoned the reader)."""
        if self._reader is None and not self._connect():
            return None
        reader = self._reader
        if reader is None:  # close() from another thread between the reconnect and here
            return None
        reader.start()
        got = self._wait(reader)
        if got is None and not self._stop.is_set():
            self._stalled()
        return got

    def _accepted(self, frame: Frame) -> Frame:
        """A good frame: the source works, so the backoff and the last error are reset (/healthz
        must not show a recovered failure beside a connected source)."""
        self._backoff = self.reconnect_min_s
        self.last_attempt = time.monotonic()
        self.last_error = ""
        self._frames_since_open += 1
        if self._frames_since_open == 2:
            self._say_held_loss()
        if frame.lores is not None and not valid_image(frame.lores):
            frame = dataclasses.replace(frame, lores=None)
        return frame

    def _stalled(self) -> None:
        """No frame within ``stall_timeout_s``: abandon the reader (it may be stuck in a driver
        call) and reopen."""
        self.stalls += 1
        self.on_event("stall")
        log.error(
            "source %s stalled: no frame for %.1f s; reopening", self.shown, self.stall_timeout_s
        )
        self._drop_reader(abandoned=True)

    def _failed(self, exc: Any) -> None:
        """The reader raised. A file or folder it cannot read (a bad image, no decodable image in
        a folder, a bad video) is the user's to fix: raised, as reading it again fails again. A
        live source is reopened with backoff, and so is a looping file or folder that raised
        SourceLost (gone after frames flowed) or an unexpected error."""
        self.errors += 1
        self.on_event("error")
        self._drop_reader()
        if not self.live and not isinstance(exc, SourceLost):
            if isinstance(exc, EdgeDetectError):
                raise exc
            if not self.loop:
                why = str(exc) or type(exc).__name__
                raise SourceError(f"cannot read source {self.shown}: {why}") from exc
        self._lost(str(exc) or type(exc).__name__)

    def _ended(self) -> bool:
        """The reader's end of stream. True when ``read`` should return None: a file or folder
        that ended stays ended. A looping file starts again; a live source is reopened."""
        self._drop_reader()
        if self.loop and not self.live:
            log.info("source %s ended; looping", self.shown)
            return False
        if not self.live:
            self._stop.set()
            return True
        self._lost("end of stream")
        return False

    def _garbage(self, run: int, frame: Frame) -> int:
        """Count an unusable frame, the ``run``-th in a row; returns the run to carry on with.

        A live source sending ``max_garbage`` in a row is reopened (a driver in a bad state). A
        file or folder never is: that would start it over, forever; its frame is logged, skipped.
        """
        self.garbage += 1
        self.on_event("garbage")
        if not self.live:
            log.warning(
                "source %s: skipping frame %d (%s): %s, not a BGR image",
                self.shown,
                frame.id,
                frame.source,
                _describe(frame.image),
            )
            return 0
        if run < self.max_garbage:
            return run
        log.warning("source %s: %d unusable frames in a row; reopening", self.shown, run)
        self._drop_reader()
        self._lost("garbage frames")
        return 0

    def stats(self) -> dict[str, Any]:
        """Connection state, backoff and fault counters (JSON-ready, safe from any thread)."""
        return {
            "live": self.live,
            "connected": self.connected,
            "next_id": self.next_id,
            "reconnects": self.reconnects,
            "stalls": self.stalls,
            "errors": self.errors,
            "garbage": self.garbage,
            "backoff_s": round(self._backoff, 3),
            "last_error": self.last_error or None,
        }

    def stop_reading(self) -> None:
        """Make the current and every later ``read()`` return None at once, even one waiting out
        a reconnect backoff, but keep the device open until ``close()``: at shutdown the
        pipeline stops before the source closes (a clip encoder may still run on the camera)."""
        self._stop.set()

    def close(self) -> None:
        with self._lock:
            self._stop.set()
            super().close()
            reader, self._reader = self._reader, None
        if reader is not None:
            reader.shutdown(join_s=0.5)
        self.connected = False
