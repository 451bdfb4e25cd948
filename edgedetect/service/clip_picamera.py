"""Event clips from picamera2's hardware H.264 encoder: a `ClipWriter` for `ClipRecorder`.

Used only with the `picam` source and `[clips] annotated = false` (the encoder reads the camera's
main stream, so nothing can be drawn into it); see `choose_writer`. The encoder runs all the time
into picamera2's `CircularOutput2`, which holds the last `pre_s` of encoded video (the pre-roll);
an episode opens a `PyavOutput` on the hidden `.NAME.part.mp4`, and its end closes it and renames
the file like the OpenCV writer does. The pipeline's thread only puts messages on a queue: the
picamera2 calls, the disk and the retention run on this writer's own thread.

`CircularOutput2` is a delay line: while an output is open it writes the video of `pre_s` ago.
So the close is delayed by that much after the episode ends (the clip still ends `post_s` after
the last person), and an episode that starts meanwhile closes it at once: the new clip then
begins where the old one stopped instead of repeating its last seconds. A clip starts on a key
frame (one a second), so its pre-roll can be up to a second shorter than `pre_s`. Frames come at
the camera's size and rate: `[clips] fps` and `width` do not apply. The encoder stamps each frame
with its capture time, so a gap in what the camera sent would play as a frozen picture; the clip's
output shortens such a gap to `MAX_HOLD_S`, with the OpenCV writer's `ClipClock`.

A reopened camera (a `ResilientSource` reconnect) is a new Picamera2 object: the first frame from
it moves the encoder there. A clip open at that moment is finished with what it holds, and the
rest of that episode is not recorded; the next episode records normally. A reload that replaces
the source builds a new recorder (service/reload.py).

picamera2 is imported lazily (it exists only on a Pi). This module is unit-tested against a fake
picamera2 package (tests/test_clip_picamera.py), which checks our calls, not the hardware: it
has not been run on a Raspberry Pi by this project's CI.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from edgedetect.detections import Detections
from edgedetect.service.clip_recorder import (
    ClipClock,
    ClipRecorder,
    WriterFactory,
    clip_retention,
    part_path,
    publish,
    still_busy,
    unreadable,
)
from edgedetect.service.retention import writing
from edgedetect.sources import PicameraSource

log = logging.getLogger("edgedetect.clips")

BITRATE = 2_000_000  # bits/s: ~15 MB a minute of clip at the camera's 1280x720
KEY_FRAMES = 30  # frames between key frames: one a second at the camera's default 30 fps
MIN_BUFFER_S = 0.1  # CircularOutput2 writes nothing at all with a 0 ms buffer (pre_s = 0)


def hardware_clip_support() -> str:
    """Why picamera2's hardware clip path cannot be used here ("" = it can)."""
    try:
        from picamera2.encoders import H264Encoder  # noqa: PLC0415 - Pi-only, lazy on purpose
        from picamera2.outputs import CircularOutput2, PyavOutput  # noqa: F401, PLC0415
    except Exception as e:  # ImportError, or libcamera / PyAV missing underneath
        return f"picamera2 without CircularOutput2/PyavOutput ({type(e).__name__}: {e})"
    if H264Encoder.__name__ != "H264Encoder":  # a Pi 5 gets LibavH264Encoder: software again
        return f"no hardware H.264 encoder (picamera2 offers {H264Encoder.__name__})"
    return ""


def camera_of(source: Any) -> Any:
    """The running Picamera2 object behind a (resilient) source, or None (another kind of
    source, or a camera that is reconnecting)."""
    inner = getattr(source, "inner", source)
    return inner.camera if isinstance(inner, PicameraSource) else None


def _is_picam(source: Any) -> bool:
    inner = getattr(source, "inner", source)
    if inner is not None:
        return isinstance(inner, PicameraSource)
    spec = str(getattr(source, "spec", "")).strip().lower()  # a camera not there yet
    return spec == "picam" or spec.startswith("picam:")


def choose_writer(annotated: bool, source: Any) -> tuple[WriterFactory | None, str]:
    """The hardware writer for an unannotated Pi camera when picamera2 can, else None (the
    OpenCV writer); and the reason, for the log."""
    if annotated:
        return None, "annotated = true: boxes are drawn in software"
    if source is None or not _is_picam(source):
        return None, "the source is not a Pi camera"
    why = hardware_clip_support()
    if why:
        return None, why

    def make(rec: ClipRecorder) -> PicameraClipWriter:
        return PicameraClipWriter(rec, lambda: camera_of(source))

    return make, "picamera2 hardware H.264 encoder"


class HoldLimitedFrames:
    """A `PyavOutput.outputframe` whose timestamps (microseconds of capture time) go through a
    `ClipClock`, so a camera gap longer than `MAX_HOLD_S` plays for `MAX_HOLD_S` only. The
    hardware encoder hands frames without a packet; a packet (a libav encoder, which this writer
    is not chosen for) carries its own timestamps and is passed on as it is."""

    def __init__(self, write: Callable[..., Any]) -> None:
        self.write = write
        self.clock: ClipClock | None = None  # from the clip's first frame

    def __call__(
        self,
        frame: Any,
        keyframe: bool = True,
        timestamp: int | None = None,
        packet: Any = None,
        audio: bool = False,
    ) -> Any:
        if timestamp is not None and packet is None and not audio:
            timestamp = self._placed(timestamp)
        return self.write(frame, keyframe, timestamp, packet, audio)

    def _placed(self, timestamp_us: int) -> int:
        ts = timestamp_us / 1_000_000
        if self.clock is None:
            self.clock = ClipClock(ts)
        self.clock.place(ts)
        return timestamp_us - round(self.clock.cut * 1_000_000)


class PicameraClipWriter:
    """`ClipWriter` on picamera2's encoder; see the module docstring."""

    def __init__(
        self,
        rec: ClipRecorder,
        camera: Callable[[], Any],
        check: Callable[[Path], str] = unreadable,
    ) -> None:
        self.rec = rec
        self._camera = camera  # the current Picamera2 object, or None
        self._check = check  # why a finished file cannot be played ("" = fine)
        self.retention = clip_retention(rec)
        self.delay = max(rec.pre_s, MIN_BUFFER_S)  # the circular buffer's length, s
        self._queue: queue.SimpleQueue[tuple[str, Any]] = queue.SimpleQueue()
        self._seen: Any = None  # caller's thread: the camera last handed to the writer thread
        # writer thread only:
        self._cam: Any = None
        self._encoder: Any = None
        self._circular: Any = None
        self._name = ""  # the clip being written ("" = none)
        self._output: Any = None
        self._due: float | None = None  # monotonic time of the delayed close
        self._broken = ""  # why the open clip cannot be saved ("" = fine so far)
        self._thread = threading.Thread(target=self._run, name="clips-h264", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------ caller's thread
    @property
    def buffer_bytes(self) -> int:
        """An estimate: the pre-roll is encoded video inside picamera2 (bitrate x its length),
        which this process cannot measure."""
        return int(BITRATE / 8 * self.delay) if self._cam is not None else 0

    def feed(self, frame: Any, dets: Detections, force: bool) -> None:
        cam = self._camera()
        if cam is not None and cam is not self._seen:  # first frame, or a reopened camera
            self._seen = cam
            self._queue.put(("bind", cam))

    def start(self, name: str, ts: float, preroll: bool) -> float:
        self._queue.put(("start", name))
        return ts - self.delay if preroll else ts

    def record(self) -> None:
        pass  # the encoder has every frame already

    def end(self) -> None:
        self._queue.put(("end", None))

    def close(self, timeout: float, exiting: bool = False) -> None:
        self._queue.put(("stop", None))
        self._thread.join(timeout)
        still_busy(self._thread, timeout, exiting)

    # ------------------------------------------------------------------ writer thread
    def _run(self) -> None:
        while True:
            wait = None if self._due is None else max(0.0, self._due - time.monotonic())
            try:
                kind, arg = self._queue.get(timeout=wait)
            except queue.Empty:
                kind, arg = "due", None
            try:
                if kind == "bind":
                    self._bind(arg)
                elif kind == "start":
                    self._open(arg)
                elif kind == "end":
                    self._end()
                elif kind == "due":
                    self._close_output()
                else:
                    self._unbind()
                    return
            except Exception as e:  # never let the thread die: the next episode is tried afresh
                self._broken = self._broken or f"{type(e).__name__}: {e}"
                log.warning("clips: %s failed: %s: %s", kind, type(e).__name__, e)

    def _bind(self, cam: Any) -> None:
        """Start the encoder into a fresh circular buffer on `cam` (stopping the old one)."""
        if cam is self._cam:
            return
        self._unbind()
        from picamera2.encoders import H264Encoder  # noqa: PLC0415 - Pi-only, lazy on purpose
        from picamera2.outputs import CircularOutput2  # noqa: PLC0415

        encoder = H264Encoder(bitrate=BITRATE, repeat=True, iperiod=KEY_FRAMES)
        circular = CircularOutput2(buffer_duration_ms=round(self.delay * 1000))
        cam.start_encoder(encoder, circular)
        self._cam, self._encoder, self._circular = cam, encoder, circular
        log.info("clips: H.264 encoder started on the camera (pre-roll %.1f s)", self.delay)

    def _unbind(self) -> None:
        """Stop the encoder: picamera2 flushes the buffer into an open clip and closes it."""
        cam, encoder = self._cam, self._encoder
        self._cam = self._encoder = None
        if cam is not None:
            try:
                cam.stop_encoder(encoder)
            except Exception as e:  # a camera that went away: close the file at least
                log.warning("clips: stopping the encoder: %s: %s", type(e).__name__, e)
                if self._output is not None:
                    with contextlib.suppress(Exception):
                        self._circular.close_output()
        self._circular = None
        if self._name:
            self._finish()

    def _open(self, name: str) -> None:
        if self._name:  # the last clip's delayed close: now, and this one goes on from there
            self._close_output()
        why = ""
        if self._circular is None:  # no frame from a camera yet, or the last start failed
            cam = self._camera()
            if cam is not None:
                self._seen = cam
                try:
                    self._bind(cam)
                except Exception as e:
                    why = f"cannot start the encoder ({type(e).__name__}: {e})"
        self._name, self._broken = name, why
        if self._circular is None:
            self._broken = self._broken or "no camera to record from"
            return
        try:
            self.retention.ensure_dir()  # scans the first time; makes a deleted folder again
        except OSError as e:
            self._broken = f"cannot use folder {self.retention.dir} ({e.strerror or e})"
            return
        self.retention.make_room()  # a full disk: the oldest clips go, not every new one
        from picamera2.outputs import PyavOutput  # noqa: PLC0415 - Pi-only, lazy on purpose

        part = part_path(self.retention.dir, name)
        writing(part)  # until publish(): the page's "recording" while it is finished
        output = PyavOutput(str(part))
        output.error_callback = self._on_error
        output.outputframe = HoldLimitedFrames(output.outputframe)  # what CircularOutput2 calls
        try:
            self._circular.open_output(output)
        except Exception as e:
            self._broken = f"cannot open {name} ({type(e).__name__}: {e})"
            with contextlib.suppress(Exception):  # it keeps a failed output: clear it
                self._circular.close_output()
            return
        self._output = output

    def _on_error(self, e: BaseException) -> None:
        """PyavOutput's report of a write that failed (encoder thread): the clip is lost."""
        self._broken = self._broken or f"cannot write ({type(e).__name__}: {e})"

    def _end(self) -> None:
        if not self._name:
            return  # lost when the camera was reopened
        if self._output is None:
            self._finish()  # it never opened: say so now
        else:
            self._due = time.monotonic() + self.delay  # the buffer still holds its last seconds

    def _close_output(self) -> None:
        self._due = None
        if self._output is not None:
            try:
                self._circular.close_output()
            except Exception as e:
                self._broken = self._broken or f"cannot close ({type(e).__name__}: {e})"
        if self._name:
            self._finish()

    def _finish(self) -> None:
        name, why = self._name, self._broken
        self._name, self._output, self._due, self._broken = "", None, None, ""
        publish(self.retention, name, why, self.rec.count, self._check)
