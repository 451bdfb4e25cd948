"""Output sinks of ``edgedetect run``: an annotated video file and a JSON-lines detection log.

Both are plain pipeline sinks (``sink(result)`` + ``close()``), run in the output thread, and
flush/close in ``close()``, which the pipeline calls on every kind of shutdown.
"""

from __future__ import annotations

import json
import logging
import os
import stat
from datetime import datetime, timezone
from pathlib import Path

import cv2
import numpy as np

from edgedetect.errors import EdgeDetectError
from edgedetect.frame import Result
from edgedetect.images import free_bytes, opencv_path
from edgedetect.linefile import LineFile
from edgedetect.overlay import draw_detections

log = logging.getLogger(__name__)

# Container -> FourCC that the opencv-python wheels can write without extra codecs.
_FOURCC = {".mp4": "mp4v", ".m4v": "mp4v", ".mov": "mp4v", ".avi": "MJPG", ".mkv": "mp4v"}
# Frame sides (px) each codec's encoder accepts, measured with the opencv-python wheel's FFmpeg:
# MPEG-4 Part 2 stores width and height in 13 bits (2..8191; 1 px is refused too); JPEG in 16.
_SIDES = {"mp4v": (2, 8191), "MJPG": (1, 65535)}


def check_parent_folder(path: Path, what: str) -> None:
    """A file about to be written whose folder is missing: said with the fix, before writing."""
    parent = path.resolve().parent
    if not parent.is_dir():
        raise EdgeDetectError(
            f"cannot write {what} {path}: folder {parent} does not exist; create it or name "
            "a file in an existing folder"
        )


# OpenCV's VideoWriter.write returns nothing and drops frames silently on a full disk; below this
# much free space the sink stops and says so, instead of writing a file that will not play.
MIN_FREE_BYTES = 1 << 20


class VideoWriterSink:
    """Write annotated frames to a video file (opened on the first frame, at its size).

    With ``realtime=True`` (live sources, ``--realtime``), frames the pipeline dropped are filled
    by repeating the last written frame, placed by capture time, so that the file plays at
    the speed things happened. Otherwise every result is one video frame.

    The video is written to the hidden ``.NAME.part<ext>`` beside ``path`` (the extension last:
    OpenCV picks the container from it) and renamed to ``path`` by ``close()`` once it plays, so
    a run that is killed or whose disk fills never leaves a video without its index under the
    name asked for (nor destroys a file of that name before the new one is whole). The part file
    a killed run leaves is removed by the next sink writing the same ``path``.
    """

    name = "video"

    def __init__(self, path: str | Path, fps: float, *, realtime: bool = False) -> None:
        self.path = Path(path)
        suffix = self.path.suffix.lower()
        if suffix not in _FOURCC:
            raise EdgeDetectError(
                f"cannot write video {self.path}: unknown extension {suffix or '(none)'}; "
                f"use one of {', '.join(sorted(_FOURCC))}"
            )
        opencv_path(self.path, "video")
        check_parent_folder(self.path, "video")
        self._final = Path(os.path.realpath(self.path))  # a link: its target gets the video
        self.part = self._final.with_name(f".{self._final.name}.part{self._final.suffix}")
        self._remove_stale_part()
        self.fps = float(fps) if fps and fps > 0 else 10.0
        self._fourcc = _FOURCC[suffix]
        self._writer: cv2.VideoWriter | None = None
        self._size: tuple[int, int] | None = None
        self.realtime = realtime
        self._t0: float | None = None
        self._last: np.ndarray | None = None
        self.frames = 0
        self.repeated = 0

    def _remove_stale_part(self) -> None:
        """A run killed before ``close()`` (SIGKILL, OOM, power cut) left its part file, which
        nothing else removes; its name is this output's own, so it goes before the first frame.
        Only a regular file: anything else of that name is not a video of ours."""
        try:
            if not stat.S_ISREG(os.lstat(self.part).st_mode):
                return
            self.part.unlink()
        except FileNotFoundError:
            return
        except OSError as exc:  # opening it for the first frame will fail and say why
            log.warning("cannot remove %s, left by an earlier run: %s", self.part, exc.strerror)
            return
        log.info(
            "removed %s, left by an earlier run writing %s that did not finish",
            self.part,
            self.path,
        )

    def __call__(self, result: Result) -> None:
        image = result.annotated
        if image is None:
            image = draw_detections(result.frame.image, result.detections)
        h, w = image.shape[:2]
        if self._writer is None:
            self._writer = cv2.VideoWriter(
                str(self.part), cv2.VideoWriter.fourcc(*self._fourcc), self.fps, (w, h)
            )
            if not self._writer.isOpened():
                self._writer = None
                raise EdgeDetectError(self._open_failure(w, h))
            self._size = (w, h)
        free = free_bytes(self.path.resolve().parent)
        if free < MIN_FREE_BYTES:
            raise EdgeDetectError(
                f"cannot write video {self.path}: its disk is full ({free} bytes free); "
                "free some space or write elsewhere"
            )
        if (w, h) != self._size:  # a folder of mixed sizes: fit into the first frame's size
            image = cv2.resize(image, self._size, interpolation=cv2.INTER_AREA)
        if self.realtime:
            if self._t0 is None:
                self._t0 = result.frame.timestamp
            due = int(round((result.frame.timestamp - self._t0) * self.fps))
            while self._last is not None and self.frames < due:
                self._writer.write(self._last)
                self.frames += 1
                self.repeated += 1
            self._last = image
        self._writer.write(image)
        self.frames += 1

    def _open_failure(self, w: int, h: int) -> str:
        """Why the encoder refused to open: the frame size when the codec cannot take it (the
        path is fine then), else the path."""
        low, high = _SIDES[self._fourcc]
        if low <= w <= high and low <= h <= high:
            return f"cannot open {self.path} for writing ({self._fourcc})"
        fix = "resize the input"
        if self._fourcc != "MJPG" and w <= _SIDES["MJPG"][1] and h <= _SIDES["MJPG"][1]:
            fix += f" or write an .avi (MJPG takes up to {_SIDES['MJPG'][1]} px per side)"
        return (
            f"cannot write video {self.path}: its {self._fourcc} encoder refuses {w}x{h} frames "
            f"(it takes {low} to {high} px per side); {fix}"
        )

    def close(self) -> None:
        if self._writer is not None:
            self._writer.release()
            self._writer = None
            try:
                self._check_playable()
                os.replace(self.part, self._final)
            except OSError as exc:
                self.part.unlink(missing_ok=True)
                raise EdgeDetectError(
                    f"cannot save the video {self.path}: {exc.strerror or exc}"
                ) from None
            except EdgeDetectError:
                self.part.unlink(missing_ok=True)
                raise
            log.info("wrote %d frames to %s", self.frames, self.path)

    def _check_playable(self) -> None:
        """Open the finished file again: a disk that filled up leaves one without its index."""
        cap = cv2.VideoCapture(str(self.part))
        try:
            ok = cap.isOpened() and cap.read()[0]
        finally:
            cap.release()
        if not ok:
            free = free_bytes(self.path.resolve().parent)
            raise EdgeDetectError(
                f"the video {self.path} does not play after {self.frames} frames were written "
                f"(a full disk or a file size limit; {free} bytes free); "
                "nothing was saved under that name"
            )


class JsonlSink:
    """One JSON object per line for every inferred frame with at least one detection.

    Fields: ``frame`` (id), ``time`` (UTC ISO-8601 of capture), ``source``, ``inference_ms``,
    ``detections`` (``[{"label", "score", "box"}]``, boxes in frame pixels). Each line is written
    whole or not at all (``LineFile``), so a crash, a power cut or a full disk loses lines, never
    leaves half of one.
    """

    name = "events"

    def __init__(self, path: str | Path, *, all_frames: bool = False) -> None:
        self.path = Path(path)
        check_parent_folder(self.path, "events file")
        self._file: LineFile | None = LineFile(self.path, "--events")
        try:
            self._file.size()  # opens (creates) it now: a bad path fails before the first frame
        except OSError as exc:
            raise EdgeDetectError(
                f"cannot write events file {self.path}: {exc.strerror or exc}; "
                "pick a writable folder"
            ) from None
        self.all_frames = all_frames
        self.lines = 0

    def __call__(self, result: Result) -> None:
        if (
            self._file is None
            or result.skipped
            or (not len(result.detections) and not self.all_frames)
        ):
            return
        record = {
            "frame": result.frame.id,
            "time": datetime.fromtimestamp(result.frame.wall_time, timezone.utc).isoformat(
                timespec="milliseconds"
            ),
            "source": result.frame.source,
            "inference_ms": round(result.inference_ms, 2),
            "detections": result.detections.to_json(),
        }
        self._file.append((json.dumps(record) + "\n").encode(), self._file.size())
        self.lines += 1

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
