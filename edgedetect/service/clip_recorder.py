"""Event clips: one MP4 per episode of people, from `pre_s` before the first person appears to
`post_s` after the last one leaves (`[clips]` in the config).

The pipeline's output thread calls `push(frame, dets, people)` on every frame. It only samples the
frame down to `fps` and `width` (one cv2.resize per kept frame), keeps it in a bounded ring (the
pre-roll) and, during an episode, hands it to the encoder thread through a bounded queue: when the
encoder falls behind, frames are dropped and counted, the pipeline never waits. The encoder
writes `.NAME.part.mp4` and renames it to `NAME.mp4` once the file is complete and readable, so a
reader of the folder never sees half a clip (OpenCV picks the container from the extension,
hence `.part.mp4` rather than `.mp4.part`). A clip that cannot be written (full disk, folder
gone) is removed, counted as failed, and the next episode is tried afresh (in the folder made
again if it was deleted). Clips are named `<utc_stamp>_clip.mp4` by `retention.CLIPS`, the
naming the folder's retention counts and deletes by, so other files there are never touched.
Frames are placed by capture time (a gap repeats the previous frame), so a clip plays at the
speed things happened; but a gap longer than `MAX_HOLD_S` (a camera or stream gone) holds the
last picture for `MAX_HOLD_S` only and the clip goes on with the next frame: a frozen picture
through a whole outage (up to `max_s`) showed nothing and looked like a scene that stood still.
When the service knows the source is gone it ends the clip itself (`cut`, from `ServiceSink`).

`ClipRecorder` holds only the episode logic; what records the frames is a `ClipWriter`: here the
OpenCV one (ring + encoder thread), or picamera2's hardware H.264 encoder
(`service/clip_picamera.py`), so both share one implementation of pre/post/max_s.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import queue
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import cv2
import numpy as np

from edgedetect.detections import Detections
from edgedetect.overlay import draw_detections
from edgedetect.runtime import opencv_silenced
from edgedetect.service.config import clip_buffer_frames, mb_to_bytes
from edgedetect.service.retention import CLIPS, FolderRetention, done_writing, gave_up, writing

log = logging.getLogger("edgedetect.clips")

CODECS = ("avc1", "mp4v")  # H.264 when this OpenCV build can write it, else MPEG-4 part 2
_codec: str | None = None  # the first of CODECS that opened in this process
QUEUE_SLACK_S = 2.0  # encoder queue: the whole pre-roll plus this many seconds of frames
MAX_HOLD_S = 1.0  # longest gap in a clip filled with copies of the last picture (see above)


@dataclass(frozen=True, eq=False)
class Shot:
    """One sampled frame: capture time, the clip-sized image, its boxes (clip pixels) or None."""

    ts: float
    image: np.ndarray
    dets: Detections | None


class ClipClock:
    """A clip's clock: camera time less the gaps cut out. A gap in what the camera sent longer
    than `MAX_HOLD_S` is shortened to `MAX_HOLD_S` (the module docstring says why); the OpenCV
    and the picamera2 writers place their frames by it."""

    def __init__(self, start: float) -> None:
        self.last = start  # camera time of the newest frame placed (the clip's start at first)
        self.cut = 0.0  # camera time left out so far: the gaps beyond MAX_HOLD_S

    def place(self, ts: float) -> float:
        """The clip time of a frame captured at `ts` (the newest so far)."""
        gap = ts - self.last
        if gap > MAX_HOLD_S:
            self.cut += gap - MAX_HOLD_S
        self.last = ts
        return ts - self.cut

    @property
    def newest(self) -> float:
        """The clip time of the newest frame placed."""
        return self.last - self.cut


def clip_size(frame_w: int, frame_h: int, width: int) -> tuple[int, int]:
    """Clip frame size: fits `width` x 3/4 `width` (the ring buffer's bound), keeps the aspect,
    never upscales, even numbers (what video encoders want)."""
    scale = min(1.0, width / frame_w, (width * 3 // 4) / frame_h)
    w = max(2, int(frame_w * scale) // 2 * 2)
    h = max(2, int(frame_h * scale) // 2 * 2)
    return w, h


def open_writer(path: Path, fps: float, size: tuple[int, int]) -> cv2.VideoWriter | None:
    """A VideoWriter with the first codec of CODECS that opens (remembered), or None."""
    global _codec
    for cc in (_codec,) if _codec else CODECS:
        probing = _codec is None and cc != CODECS[-1]  # its failure is expected on many builds
        with opencv_silenced() if probing else contextlib.nullcontext():
            writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*cc), fps, size)
        if writer.isOpened():
            if _codec is None:
                log.info("clips: codec %s", cc)
            _codec = cc
            return writer
        writer.release()
    return None


class ClipWriter(Protocol):
    """What records an episode's frames; `ClipRecorder` decides when, under its lock, on the
    pipeline's output thread, so no method may wait on disk or an encoder."""

    @property
    def buffer_bytes(self) -> int:
        """Memory held for the pre-roll now."""
        ...

    def feed(self, frame: Any, dets: Detections, force: bool) -> None:
        """Every frame; `force`: an episode starts or splits on this one."""
        ...

    def start(self, name: str, ts: float, preroll: bool) -> float:
        """Open clip `name` at capture time `ts` (with the pre-roll, or none after a split);
        the capture time the clip starts at."""
        ...

    def record(self) -> None:
        """The frame just fed belongs to the open clip."""
        ...

    def end(self) -> None:
        """The open clip is complete."""
        ...

    def close(self, timeout: float, exiting: bool = False) -> None:
        """Finish what is open and stop (waits at most `timeout` s; `exiting`: the process
        ends after, so a clip not done by then is lost, else it is finished in the background)."""
        ...


WriterFactory = Callable[["ClipRecorder"], ClipWriter]


class ClipRecorder:
    """Episode logic on the caller's thread; a `ClipWriter` records (see the module docstring)."""

    def __init__(
        self,
        directory: str | Path,
        *,
        pre_s: float,
        post_s: float,
        max_s: float,
        fps: float,
        width: int,
        annotated: bool,
        max_bytes: int,
        max_files: int,
        min_free_bytes: int = 0,
        on_count: Callable[[str], None] | None = None,
        queue_frames: int | None = None,
        writer: WriterFactory | None = None,
    ) -> None:
        self.dir = Path(directory)
        self.pre_s, self.post_s, self.max_s = float(pre_s), float(post_s), float(max_s)
        self.fps, self.width, self.annotated = float(fps), int(width), bool(annotated)
        self.max_bytes, self.max_files = int(max_bytes), int(max_files)
        self.min_free_bytes = int(min_free_bytes)
        self._on_count = on_count or (lambda kind: None)
        self._clip: str = ""  # the open episode's file name
        self._t0 = 0.0  # capture time the open clip starts at
        self._empty_since: float | None = None
        self._lock = threading.Lock()
        self._closed = False
        self.saved = self.failed = self.dropped = 0
        make = writer or (lambda rec: OpenCVClipWriter(rec, queue_frames))
        self._writer: ClipWriter = make(self)

    @classmethod
    def from_config(
        cls,
        c: Any,
        on_count: Callable[[str], None] | None = None,
        writer: WriterFactory | None = None,
    ) -> ClipRecorder:
        """From a validated `[clips]` section; `writer` None = the OpenCV writer."""
        return cls(
            c.dir,
            pre_s=c.pre_s,
            post_s=c.post_s,
            max_s=c.max_s,
            fps=c.fps,
            width=c.width,
            annotated=c.annotated,
            max_bytes=mb_to_bytes(c.max_mb),
            max_files=c.max_files,
            min_free_bytes=mb_to_bytes(c.min_free_mb),
            on_count=on_count,
            writer=writer,
        )

    @property
    def writer(self) -> ClipWriter:
        return self._writer

    @property
    def buffer_bytes(self) -> int:
        """Memory held for the pre-roll now (the writer's)."""
        return self._writer.buffer_bytes

    @property
    def clip(self) -> str:
        """The open episode's file name ("" between episodes)."""
        return self._clip

    def count(self, kind: str) -> None:
        """One more `saved`, `failed` or `dropped` (writers call it, from any thread)."""
        setattr(self, kind, getattr(self, kind) + 1)
        self._on_count(kind)

    # ------------------------------------------------------------------ caller's thread
    def push(self, frame: Any, dets: Detections, people: int) -> str:
        """Feed one frame (`people` = persons counted now); the episode's clip name, or ""."""
        with self._lock:
            if self._closed:
                return ""
            ts = float(frame.timestamp)
            starts = not self._clip and people > 0
            ending = bool(self._clip) and people == 0 and self._empty_since is None
            splits = bool(self._clip) and ts - self._t0 >= self.max_s
            self._writer.feed(frame, dets, force=starts or splits)
            if starts:
                self._start(frame, ts, preroll=True)
                return self._clip
            if not self._clip:
                return ""
            name = self._clip
            if people > 0:
                self._empty_since = None
            elif ending:
                self._empty_since = ts
            if splits:
                self._end()
                if people > 0:  # a long episode goes on in a new file
                    self._start(frame, ts, preroll=False)
                    return self._clip
                return name
            self._writer.record()
            if self._empty_since is not None and ts - self._empty_since >= self.post_s:
                self._end()
            return name

    def cut(self) -> str:
        """End the open clip now with the frames it holds, ending at the last one fed (the
        source is gone: no frame will come to play the post-roll); the clip's name, or ""."""
        with self._lock:
            name = self._clip
            if name and not self._closed:
                self._end()
            return name

    def _start(self, frame: Any, ts: float, preroll: bool) -> None:
        self._clip = CLIPS.name(frame.wall_time)  # the naming the retention counts by
        self._empty_since = None
        self._t0 = self._writer.start(self._clip, ts, preroll)

    def _end(self) -> None:
        self._writer.end()
        self._clip = ""
        self._empty_since = None

    def close(self, timeout: float = 2.0, exiting: bool = False) -> None:
        """Finish the open clip and stop the writer (waits at most `timeout` s). A reload's old
        recorder (`exiting=False`) finishes it in the background; when the service exits, a clip
        not done by then stays a hidden `.part.mp4` that the next start removes."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            if self._clip:
                self._end()
        self._writer.close(timeout, exiting)


def still_busy(thread: threading.Thread, timeout: float, exiting: bool) -> None:
    """Say what becomes of a clip whose encoder did not finish within `timeout`: lost when the
    service exits, else finished in the background (its 'saved' or 'lost' line follows; the
    log said 'lost' on a reload, then 'saved' of the same clip)."""
    if not thread.is_alive():
        return
    if exiting:
        log.warning("clips: encoder still busy after %.1f s; the last clip is lost", timeout)
    else:
        log.info("clips: encoder still busy after %.1f s; it finishes the clip on its own", timeout)


def clip_retention(rec: ClipRecorder) -> FolderRetention:
    """The clips folder's retention under `rec`'s limits: only our `<utc_stamp>_clip.mp4` files
    (`CLIPS`) count; a crash's hidden `.NAME.part.mp4` files are leftovers. Its index is shared
    with the other recorders on the folder (a reload's new one while the old finishes its clip)."""
    return FolderRetention.shared(rec.dir, CLIPS, rec.max_bytes, rec.max_files, rec.min_free_bytes)


def part_path(directory: Path, name: str) -> Path:
    """The hidden file a clip is written to (OpenCV and PyAV pick the container from the
    extension, hence `.part.mp4` rather than `.mp4.part`)."""
    return CLIPS.temp_path(directory / name)


def publish(
    retention: FolderRetention,
    name: str,
    why: str,
    count: Callable[[str], None],
    check: Callable[[Path], str],
) -> None:
    """Finish clip `name`: rename its complete, readable part file into view and apply the
    retention, or remove it and count it failed (`why` = already known to be broken)."""
    part = part_path(retention.dir, name)
    done_writing(part)  # renamed, removed or left below: never written again
    if not why:
        why = "no frames" if not part.exists() else check(part)
    final = retention.dir / name
    lost = 0  # bytes of a part file that did not make it: room to make for the next clip
    if not why:
        try:
            os.replace(part, final)
            retention.add(final, final.stat().st_size)
        except OSError as e:
            why = f"cannot rename {part.name} ({e.strerror or e})"
    if why:
        left = ""
        try:
            lost = part.stat().st_size
            part.unlink()
        except FileNotFoundError:
            pass
        except OSError as e:  # a read-only folder: the part file stays, but nothing writes it
            left = f"; its part file {part} is left there ({e.strerror or e})"
        retention.make_room(2 * lost)  # a full disk: the next clip has room again
        gave_up(final)  # the page says "not saved", not "deleted"
        count("failed")
        log.error("clips: %s lost: %s; check free space and [clips] dir%s", name, why, left)
        return
    count("saved")
    log.info("clips: saved %s", final)


class OpenCVClipWriter:
    """Samples frames to `fps` and `width` into the pre-roll ring and hands an episode's frames
    to the encoder thread through a bounded queue (full: dropped and counted, never waited for)."""

    def __init__(self, rec: ClipRecorder, queue_frames: int | None = None) -> None:
        self.rec = rec
        self.fps, self.max_s = rec.fps, rec.max_s
        self._period = 1.0 / rec.fps
        self._ring: deque[Shot] = deque(
            maxlen=clip_buffer_frames({"pre_s": rec.pre_s, "fps": rec.fps})
        )
        self._ring_bytes = 0
        self._next_due: float | None = None
        self._size: tuple[int, int, tuple[int, int]] | None = None  # camera w, h -> clip size
        self._shot: Shot | None = None  # the frame just fed, if it was sampled
        self._clock = ClipClock(0.0)  # the open clip's: its newest frame (sent or dropped)
        if queue_frames is None:  # the whole pre-roll at once, then QUEUE_SLACK_S of frames
            queue_frames = (self._ring.maxlen or 1) + math.ceil(QUEUE_SLACK_S * self.fps)
        self.slots = threading.Semaphore(queue_frames)
        self.queue: queue.SimpleQueue[tuple[str, Any]] = queue.SimpleQueue()
        self._encoder = _Encoder(self, clip_retention(rec))
        self._thread = threading.Thread(target=self._encoder.run, name="clips", daemon=True)
        self._thread.start()

    @property
    def buffer_bytes(self) -> int:
        """Bytes of image data in the pre-roll ring now."""
        return self._ring_bytes

    def count(self, kind: str) -> None:
        self.rec.count(kind)

    def feed(self, frame: Any, dets: Detections, force: bool) -> None:
        self._shot = self._sample(frame, dets, force)
        if self._shot is not None:
            self._keep(self._shot)

    def _sample(self, frame: Any, dets: Detections, force: bool) -> Shot | None:
        """The frame at clip size if it is due at `fps` (or `force`d), else None."""
        ts = float(frame.timestamp)
        due = self._next_due
        if not force and due is not None and ts < due - self._period / 2:
            return None
        due = ts if due is None else due + self._period
        self._next_due = due if due > ts else ts + self._period
        image = frame.image
        h, w = image.shape[:2]
        if self._size is None or self._size[:2] != (w, h):
            self._size = (w, h, clip_size(w, h, self.rec.width))
        cw, ch = self._size[2]
        small = (
            image.copy()
            if (cw, ch) == (w, h)
            else cv2.resize(image, (cw, ch), interpolation=cv2.INTER_AREA)
        )
        boxes = None
        if self.rec.annotated and len(dets):
            k = np.array([cw / w, ch / h, cw / w, ch / h], dtype=np.float32)
            boxes = Detections(
                dets.xyxy * k, dets.score, dets.class_id, dets.names, dets.tracker_id
            )
        return Shot(ts, small, boxes)

    def _keep(self, shot: Shot) -> None:
        ring = self._ring
        if len(ring) == ring.maxlen:
            self._ring_bytes -= ring[0].image.nbytes
        ring.append(shot)
        self._ring_bytes += shot.image.nbytes

    def start(self, name: str, ts: float, preroll: bool) -> float:
        if preroll:
            shots = [s for s in self._ring if s.ts >= ts - self.rec.pre_s]
        else:
            shots = [self._shot] if self._shot is not None else []
        t0 = shots[0].ts if shots else ts
        self._clock = ClipClock(t0)
        self.queue.put(("start", (name, t0)))
        for s in shots:
            self._send(s)
        return t0

    def record(self) -> None:
        if self._shot is not None:
            self._send(self._shot)

    def _send(self, shot: Shot) -> None:
        """Queue `shot` for the encoder, on the clip's clock: camera time less the gaps cut out.
        Frames the encoder drops are gaps it holds (real time); a gap in what the camera sent
        is held for `MAX_HOLD_S` at most (the module docstring says why)."""
        placed = self._clock.place(shot.ts)
        if placed != shot.ts:
            shot = Shot(placed, shot.image, shot.dets)
        if self.slots.acquire(blocking=False):
            self.queue.put(("shot", shot))
        else:  # the encoder is behind: never wait on it
            self.count("dropped")

    def end(self) -> None:
        self.queue.put(("end", self._clock.newest))

    def close(self, timeout: float, exiting: bool = False) -> None:
        self.queue.put(("stop", None))
        # Free the pre-roll now: the recorder and this writer refer to each other, so without
        # this a reload's old ring (14 MiB by default) waited for a cyclic garbage collection.
        self._ring.clear()
        self._ring_bytes = 0
        self._shot = None
        self._thread.join(timeout)
        still_busy(self._thread, timeout, exiting)


class _Encoder:
    """The encoder thread's state: one clip at a time, written frame by frame."""

    def __init__(self, rec: OpenCVClipWriter, retention: FolderRetention) -> None:
        self.rec = rec
        self.retention = retention
        self.max_frames = math.ceil(rec.max_s * rec.fps) + 1
        self._reset("", 0.0)

    def _reset(self, name: str, t0: float) -> None:
        self.name, self.t0 = name, t0
        self.writer: cv2.VideoWriter | None = None
        self.written = 0
        self.last: np.ndarray | None = None
        self.size = (0, 0)
        self.broken = ""  # why this clip cannot be written ("" = fine so far)

    @property
    def part(self) -> Path:
        return part_path(self.retention.dir, self.name)

    def run(self) -> None:
        while True:
            kind, arg = self.rec.queue.get()
            try:
                if kind == "shot":
                    self._write(arg)
                elif kind == "start":
                    self._reset(*arg)
                elif kind == "end":
                    self._finish(arg)
                else:
                    return
            except Exception as e:  # never let the thread die: the next episode is tried afresh
                self.broken = self.broken or f"{type(e).__name__}: {e}"
            finally:
                if kind == "shot":
                    self.rec.slots.release()

    def _open(self, size: tuple[int, int]) -> None:
        try:
            self.retention.ensure_dir()  # scans the first time; makes a deleted folder again
        except OSError as e:
            self.broken = f"cannot use folder {self.retention.dir} ({e.strerror or e})"
            return
        self.retention.make_room()  # a full disk: the oldest clips go, not every new one
        writing(self.part)  # until publish(): the page's "recording" while it is finished
        self.writer = open_writer(self.part, self.rec.fps, size)
        if self.writer is None:
            self.broken = f"cannot open {self.part} for writing ({'/'.join(CODECS)})"

    def _write(self, shot: Shot) -> None:
        if self.broken or not self.name:
            return
        image = shot.image
        size = (image.shape[1], image.shape[0])
        if self.writer is None:
            self._open(size)
            if self.writer is None:
                return
            self.size = size
        if size != self.size:
            return  # the camera changed size mid-clip: keep the clip's size, skip the odd frame
        if shot.dets is not None:
            image = draw_detections(image, shot.dets)
        self._hold(shot.ts)
        self.writer.write(image)
        self.written += 1
        self.last = image

    def _hold(self, ts: float) -> None:
        """Repeat the last picture up to the frame due at `ts`: a gap (frames dropped, a slow
        camera) keeps the clip's real duration (a camera gap over `MAX_HOLD_S` arrives here
        already shortened to that, see `OpenCVClipWriter._send`)."""
        due = min(round((ts - self.t0) * self.rec.fps), self.max_frames - 1)
        while self.writer is not None and self.last is not None and self.written < due:
            self.writer.write(self.last)
            self.written += 1

    def _finish(self, last_ts: float) -> None:
        if not self.name:
            return
        if not self.broken:
            self._hold(last_ts + 1.0 / self.rec.fps)  # frames dropped at the end, too
        name, writer, why, part = self.name, self.writer, self.broken, self.part
        self._reset("", 0.0)
        if writer is not None:
            writer.release()
            if not why and not part.exists():
                why = f"{part.name} was deleted while it was written (the folder removed?)"
        if not why and writer is None:
            why = "no frames"
        publish(self.retention, name, why, self.rec.count, unreadable)


def unreadable(path: Path) -> str:
    """Why the MP4 at `path` cannot be played ("" = it opens and has frames)."""
    cap = cv2.VideoCapture(str(path))  # a full disk leaves an MP4 without its index
    try:
        if not cap.isOpened() or cap.get(cv2.CAP_PROP_FRAME_COUNT) < 1:
            return "the file is incomplete (disk full?)"
    finally:
        cap.release()
    return ""
