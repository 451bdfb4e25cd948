"""Frame sources behind one spec string: ``picam``, ``usb:N``, files, streams, folders, globs.

``open_source(spec)`` returns a :class:`FrameSource`; ``read()`` gives the next :class:`Frame`,
``None`` at the end of a file or folder, and raises :class:`~edgedetect.errors.SourceLost` when a
live source (camera, stream) stops delivering, so a caller can tell "finished" from "went away";
:class:`~edgedetect.resilient.ResilientSource` reopens such a source with back-off. Each source
numbers its own frames from ``next_id``, which a caller may set so that ids keep counting across
a reopen.

Spec forms (see docs/pipeline.md):
  picam | picam:WxH        Raspberry Pi camera via picamera2 (main stream + lores stream)
  usb:N                    V4L2 / USB webcam number N
  file:PATH | PATH         a video file (or a single image when PATH is an image)
  dir:PATH | PATH/         a folder of images, in name order (listed again at each loop)
  a glob ("imgs/*.jpg")    matching images, in name order (matched again at each loop)
  rtsp://… http(s)://…     a network stream through FFmpeg
"""

from __future__ import annotations

import fnmatch
import glob as globlib
import logging
import os
import re
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import cv2
import numpy as np

from edgedetect.errors import ImageError, SourceError, SourceLost, closest
from edgedetect.frame import Frame
from edgedetect.images import opencv_path, read_bgr
from edgedetect.linefile import file_kind
from edgedetect.runtime import quiet_opencv

log = logging.getLogger(__name__)

# .jfif and .jpe are JPEGs too (.jfif is what Windows names many saved web photos): read as
# images, not through FFmpeg, which ignores the EXIF orientation and the size limit.
IMAGE_EXTENSIONS = (
    ".jpg",
    ".jpeg",
    ".jfif",
    ".jpe",
    ".png",
    ".bmp",
    ".tif",
    ".tiff",
    ".webp",
    ".pgm",
    ".ppm",
)
SPEC_HELP = (
    "use picam, picam:WxH, usb:N, file:PATH, dir:PATH, rtsp://..., http(s)://..., "
    "a glob like 'imgs/*.jpg', or a path to a video, image or folder"
)
_URL_CREDENTIALS = re.compile(r"(\b[A-Za-z][A-Za-z0-9+.-]*://[^:/@\s]*):[^@/\s]*@")
# Query parameters that carry a secret (cameras' ?user=admin&password=..., webhooks' ?token=...).
_QUERY_SECRETS = re.compile(
    r"([?&](?:password|passwd|pass|pwd|token|access_token|api_key|apikey|key|secret|auth|sig"
    r"|signature)=)[^&#\s'\"]*",
    re.IGNORECASE,
)


def redact(text: str) -> str:
    """Hide passwords in URLs: 'rtsp://admin:hunter2@host/s' -> 'rtsp://admin:***@host/s', and
    secret query values: 'http://cam/snap?user=admin&password=x' -> '...&password=***'.

    Camera URLs often carry credentials; every log line and error that names a source goes
    through this so that logs and /healthz can be shared.
    """
    return _QUERY_SECRETS.sub(r"\1***", _URL_CREDENTIALS.sub(r"\1:***@", text))


# Network streams, opened through FFmpeg: live, like cameras.
STREAM_SCHEMES = ("rtsp://", "rtsps://", "http://", "https://", "rtmp://", "udp://", "tcp://")
# Seconds FFmpeg may block opening or reading a network stream before we call it lost.
STREAM_TIMEOUT_MS = 5000
# Frames a video file may end short of its container's count without a warning: some containers
# only estimate the count (duration x fps). The larger of this and 1 % of the count.
SHORT_VIDEO_SLACK = 3


class SourceUnavailable(SourceLost):
    """A live source that cannot be reached right now (camera absent or busy, stream down).

    A subclass of ``SourceLost`` so that one ``except SourceLost`` in the service covers both
    "never came up" and "went away": both mean *retry later*.
    """


class FrameSource(ABC):
    """Base of all sources: numbering, timestamps and the context-manager protocol.

    Attributes:
        spec: the spec string the source was opened from.
        live: True for cameras and streams (frames arrive in real time whether or not we read
            them, so the pipeline always uses drop-oldest hand-over for them, and a source that
            stops is worth reopening); False for files and folders, which end.
        fps: nominal frame rate (a file's fps, a camera's configured rate) or None if unknown.
        next_id: the id of the next frame. The only frame counter: a wrapper that replaces a
            lost source sets it on the new one, so ids stay strictly increasing across reopens.
    """

    live: bool = False

    def __init__(self, spec: str) -> None:
        self.spec = spec
        self.fps: float | None = None
        self.next_id = 0
        self._closed = False

    @abstractmethod
    def _grab(self) -> tuple[np.ndarray, np.ndarray | None, str] | None:
        """Return ``(image, lores, name)``, None at the end, or raise ``SourceLost``."""

    def read(self) -> Frame | None:
        """Next frame stamped with id and capture time, or None at the end of the source."""
        if self._closed:
            return None
        got = self._grab()
        if got is None:
            return None
        image, lores, name = got
        # a stream's spec may hold a password: frames (and the --events lines) carry it hidden
        source = name or redact(self.spec)
        frame = Frame(self.next_id, time.monotonic(), time.time(), image, lores, source)
        self.next_id += 1
        return frame

    def stats(self) -> dict[str, Any]:
        """JSON-ready counters of the source itself (a reconnecting wrapper adds its own)."""
        return {"live": self.live, "next_id": self.next_id}

    def input_files(self) -> list[Path]:
        """The files this source reads (a video, images), so no output is written over them."""
        return []

    def close(self) -> None:
        """Release the device or file; safe to call twice."""
        self._closed = True

    def __enter__(self) -> FrameSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.spec!r})"


def _opened_capture(error: SourceError, *args: Any) -> cv2.VideoCapture:
    """``cv2.VideoCapture(*args)`` that opened; else it is released (no device or socket left
    held) and ``error`` is raised."""
    cap = cv2.VideoCapture(*args)
    if not cap.isOpened():
        cap.release()
        raise error
    return cap


class VideoCaptureSource(FrameSource):
    """A video file, a USB camera or a network stream, all through ``cv2.VideoCapture``."""

    def __init__(
        self,
        spec: str,
        target: str | int,
        *,
        live: bool,
        loop: bool = False,
        size: tuple[int, int] | None = None,
        decode_threads: int | None = None,
    ) -> None:
        """``decode_threads``: FFmpeg decoder threads for files (None: FFmpeg's default, one per
        core). Video *files* default to 1 in :func:`open_source`: in the pipeline the decode
        of the next frame overlaps inference, and a decoder spreading over every core slows
        the interpreter far more than it speeds the decode (measured in docs/pipeline.md)."""
        super().__init__(spec)
        self.live = live
        self._decode_threads = decode_threads
        self._target = target
        self._loop = loop and not live
        self._size = size
        self._cap: cv2.VideoCapture | None = None
        self._delivered_since_open = 0
        self._frame_count = 0  # what a file's container says it holds; 0 when unknown
        self._warned_short = False
        self._open()

    def input_files(self) -> list[Path]:
        return [] if self.live or isinstance(self._target, int) else [Path(self._target)]

    def _open(self) -> None:
        quiet_opencv()  # FFmpeg reads its log level at the first capture: before it
        target = self._target
        if isinstance(target, int):
            cap = self._open_usb(target)
        elif self.live:
            cap = self._open_stream(target)
        else:
            cap = self._open_file(target)
        fps = cap.get(cv2.CAP_PROP_FPS)
        self.fps = float(fps) if fps and 0 < fps < 1000 else None
        count = cap.get(cv2.CAP_PROP_FRAME_COUNT)
        self._frame_count = int(count) if not self.live and 0 < count < 1e9 else 0
        self._cap = cap
        self._delivered_since_open = 0

    def _open_usb(self, target: int) -> cv2.VideoCapture:
        """A USB camera through V4L2 where there is one, with the driver's queue kept short."""
        api = cv2.CAP_V4L2 if os.name == "posix" and os.path.isdir("/dev") else cv2.CAP_ANY
        cap = _opened_capture(
            SourceUnavailable(
                f"cannot open USB camera {self.spec!r} (/dev/video{target}): check that it is "
                "plugged in and not used by another program (ls /dev/video*)"
            ),
            target,
            api,
        )
        cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)  # keep the driver queue short: newest frame wins
        if self._size:
            cap.set(cv2.CAP_PROP_FRAME_WIDTH, self._size[0])
            cap.set(cv2.CAP_PROP_FRAME_HEIGHT, self._size[1])
        return cap

    def _open_stream(self, target: str) -> cv2.VideoCapture:
        """A network stream, with open and read timeouts so a dead server is not waited on."""
        params = [
            cv2.CAP_PROP_OPEN_TIMEOUT_MSEC,
            STREAM_TIMEOUT_MS,
            cv2.CAP_PROP_READ_TIMEOUT_MSEC,
            STREAM_TIMEOUT_MS,
        ]
        url = opencv_path(
            target, "stream URL", SourceError, "percent-encode it (%XX)", redact(str(target))
        )
        return _opened_capture(
            SourceUnavailable(
                f"cannot open stream {redact(self.spec)!r}: check the URL, credentials and "
                "that the camera or server is reachable"
            ),
            url,
            cv2.CAP_FFMPEG,
            params,
        )

    def _open_file(self, target: str) -> cv2.VideoCapture:
        """A video file through FFmpeg, with the decoder threads it was given."""
        if not Path(target).is_file():
            raise SourceError(f"video file not found: {target}: check the path")
        if Path(target).stat().st_size == 0:  # "cannot decode ... convert it" would mislead
            raise SourceError(f"video file {target} is empty (0 bytes); copy or export it again")
        params = (
            [cv2.CAP_PROP_N_THREADS, self._decode_threads]
            if self._decode_threads is not None
            else []
        )
        name = opencv_path(target, "video file", SourceError)
        return _opened_capture(
            SourceError(
                f"cannot decode video file {target}: OpenCV/FFmpeg does not read it; check "
                "that it plays (ffprobe) or convert it to H.264/MPEG-4 .mp4"
            ),
            name,
            cv2.CAP_FFMPEG,
            params,
        )

    def _grab(self) -> tuple[np.ndarray, np.ndarray | None, str] | None:
        if self._cap is None:
            return None
        ok, image = self._cap.read()
        if (not ok or image is None) and isinstance(self._target, int):
            # USB cameras often fail the first reads after opening or a hiccup; give them
            # a second before calling the device lost
            for _ in range(10):
                time.sleep(0.1)
                ok, image = self._cap.read()
                if ok and image is not None:
                    break
        if not ok or image is None:
            if self.live:
                raise SourceLost(
                    f"source {redact(self.spec)!r} stopped delivering frames "
                    "(unplugged, or stream dropped)"
                )
            self._warn_if_short()
            if self._delivered_since_open == 0 and self.next_id == 0:
                raise SourceError(
                    f"video file {self._target} opened but no frame could be decoded: the file is "
                    "empty or its codec is not supported; convert it to H.264/MPEG-4 .mp4"
                )
            if self._loop:
                self._reopen_loop()
                return self._grab()
            return None
        self._delivered_since_open += 1
        return image, None, ""

    def _reopen_loop(self) -> None:
        """Start a looping file again. Once frames have flowed, a file that is gone, no longer
        decodes or has no frame left is lost, not the user's error: SourceLost, so the service
        keeps running and retries it with backoff (as a folder), instead of exiting."""
        target = str(self._target)  # a file: never a camera index
        if self._cap is not None:
            self._cap.release()
            self._cap = None
        if self._delivered_since_open == 0:  # a pass that read nothing: do not spin on it
            raise SourceLost(f"video file {target} has no frame left (truncated?)")
        if not Path(target).is_file():
            raise SourceLost(f"video file {target} is gone (deleted or moved)")
        try:
            self._open()
        except SourceError:
            raise SourceLost(
                f"video file {target} can no longer be decoded (replaced or truncated?)"
            ) from None

    def _warn_if_short(self) -> None:
        """Warn once when a file ends well before the frame count its container states: a
        truncated copy or a damaged file would otherwise pass silently as a shorter clip."""
        got, expected = self._delivered_since_open, self._frame_count
        if self._warned_short or got == 0 or expected <= 0:
            return
        if expected - got > max(SHORT_VIDEO_SLACK, expected // 100):
            self._warned_short = True
            log.warning(
                "%s ended after %d of %d frames (truncated or damaged file?)",
                self._target,
                got,
                expected,
            )

    def close(self) -> None:
        super().close()
        if self._cap is not None:
            self._cap.release()
            self._cap = None


def first_names(paths: Sequence[Path]) -> str:
    """The first three paths, and '...' when there are more: for one-line messages."""
    return ", ".join(str(p) for p in paths[:3]) + (" ..." if len(paths) > 3 else "")


def no_readable_image(spec: str, tried: Sequence[Path]) -> ImageError:
    """The error for images or folders none of whose ``tried`` images decodes (the reader's and
    check-config's, worded once)."""
    return ImageError(
        f"no readable image in {spec!r}: {first_names(tried)} could not be decoded; "
        "check the files are JPEG/PNG images"
    )


class ImageFilesSource(FrameSource):
    """Still images (a folder, a glob or one file), in name order.

    Policy for an unreadable image in a folder or glob: skip it with a warning and count it
    (``unreadable``), so one bad file does not stop a long offline run; if *no* image can be read,
    or the single image a user named cannot be read, raise ``ImageError`` naming the file (a
    looping single image that frames came from, rewritten in place: ``SourceLost``).

    Looping, ``relist`` (the folder or glob listed again) gives the next pass's files, so a folder
    that a camera or script keeps filling is followed; a pass that reads no image at all raises
    ``SourceLost`` (the service reopens it later) instead of spinning over the same dead list.
    """

    def __init__(
        self,
        spec: str,
        paths: Sequence[Path],
        *,
        single: bool = False,
        loop: bool = False,
        relist: Callable[[], list[Path]] | None = None,
        label: str | None = None,
    ) -> None:
        """``label`` names the source in errors ("folder F", "glob 'x/*.jpg'")."""
        super().__init__(spec)
        self.paths = list(paths)
        self._single = single
        self._loop = loop
        self._relist = relist
        self._label = label or f"source {spec!r}"
        self._pos = 0
        self._decoded = 0
        self._decoded_this_pass = 0
        self._last_error = ""
        self.unreadable: list[Path] = []

    def input_files(self) -> list[Path]:
        return list(self.paths)

    def _grab(self) -> tuple[np.ndarray, np.ndarray | None, str] | None:
        while True:
            if self._pos >= len(self.paths):
                if not self._wrap():
                    return None
                continue  # the new listing may be empty
            path = self.paths[self._pos]
            self._pos += 1
            try:
                image = read_bgr(path)
            except ImageError as err:
                if self._single and self._loop and (self._decoded or self.next_id):
                    # a picture rewritten in place (half-written, or between delete and copy)
                    # after frames flowed: retry later, as a looping folder or video
                    raise SourceLost(f"the looping image can no longer be read: {err}") from None
                if self._single:
                    raise
                self._skip(path, err)
                continue
            self._decoded += 1
            self._decoded_this_pass += 1
            return image, None, str(path)

    def _skip(self, path: Path, err: ImageError) -> None:
        """Count an unreadable image; warn once, in ImageError's words (empty, truncated, gone)."""
        self._last_error = str(err)
        if path not in self.unreadable:
            self.unreadable.append(path)
            log.warning("skipping unreadable image: %s", err)

    def _wrap(self) -> bool:
        """At the end of the list: False to end, True to start a new pass (looping) on a fresh
        listing. Raises when nothing could be read, so a loop never spins on dead files: the
        user's ImageError at the start, SourceLost (retry later) once frames have flowed, also
        in a source reopened after one (``next_id`` > 0), e.g. on a half-written file."""
        if self._decoded == 0 and (not self._loop or self.next_id == 0):
            raise no_readable_image(self.spec, self.unreadable)
        if not self._loop:
            return False
        if self._decoded_this_pass == 0:
            why = (
                f"none of its {len(self.paths)} image files could be read; last: {self._last_error}"
                if self.paths
                else "no image files left in it"
            )
            raise SourceLost(f"{self._label} has no readable images ({why})")
        self._decoded_this_pass = 0
        self._pos = 0
        if self._relist is not None:
            self.paths = self._relist()
        return True


class PicameraSource(FrameSource):
    """Raspberry Pi camera through picamera2, with a lores stream for the detector.

    picamera2 is imported here and only here, so the package works off the Pi. The camera object
    is created once per source (creating it is slow and it holds the device). The
    main stream (BGR, for display and recording) and the lores stream (YUV420 on a Pi 4, for the
    detector: the ISP scales it, so no CPU resize) are taken from the same request so they show
    the same instant.
    """

    live = True

    def __init__(
        self,
        spec: str,
        size: tuple[int, int] = (1280, 720),
        lores_size: tuple[int, int] | None = (320, 240),
        fps: float = 30.0,
    ) -> None:
        super().__init__(spec)
        try:
            from picamera2 import Picamera2  # noqa: PLC0415 - Pi-only dependency, lazy on purpose
        except ImportError as exc:
            raise SourceError(
                "source 'picam' needs picamera2, which is not installed here "
                f"({exc.__class__.__name__}: {exc}); it only works on a Raspberry Pi "
                "(sudo apt install python3-picamera2; create the venv with "
                "--system-site-packages); elsewhere use usb:0, a video file or a folder"
            ) from None
        try:
            cameras = Picamera2.global_camera_info()
        except Exception as exc:  # libcamera raises assorted errors when the stack is broken
            raise SourceUnavailable(f"picam: libcamera cannot list cameras ({exc})") from None
        if not cameras:
            raise SourceUnavailable(
                "picam: no camera detected; check the ribbon cable and run 'rpicam-hello --list'"
            )
        self.fps = fps
        self._size = size
        # the ISP cannot scale the lores stream *up*: keep it within the main stream
        self._lores_size = (
            None
            if lores_size is None
            else (min(lores_size[0], size[0]), min(lores_size[1], size[1]))
        )
        self._lores_format: str | None = None
        try:
            self._cam = Picamera2()
            self._configure()
            self._cam.start()
        except Exception as exc:
            raise SourceUnavailable(
                f"picam: cannot start the camera ({exc}); is it in use?"
            ) from None

    @property
    def camera(self) -> Any:
        """The running Picamera2 object: the hardware clip encoder (`service/clip_picamera.py`)
        is started on it."""
        return self._cam

    def _configure(self) -> None:
        cam = self._cam
        main = {"size": tuple(self._size), "format": "RGB888"}  # RGB888 is BGR in memory
        kwargs: dict[str, Any] = {"main": main, "controls": {"FrameRate": self.fps}}
        if self._lores_size:
            kwargs["lores"] = {"size": tuple(self._lores_size), "format": "YUV420"}
        config = cam.create_video_configuration(**kwargs)
        cam.align_configuration(config)  # the ISP needs aligned sizes; read back what we got
        cam.configure(config)
        if self._lores_size:
            self._lores_size = tuple(config["lores"]["size"])
            self._lores_format = str(config["lores"]["format"])

    def _grab(self) -> tuple[np.ndarray, np.ndarray | None, str] | None:
        names = ["main", "lores"] if self._lores_size else ["main"]
        try:
            arrays, _meta = self._cam.capture_arrays(names)
        except Exception as exc:
            raise SourceLost(f"picam stopped delivering frames ({exc})") from None
        image = np.ascontiguousarray(arrays[0][..., :3])
        lores = None
        if self._lores_size:
            lores = lores_to_bgr(arrays[1], self._lores_size, self._lores_format or "YUV420")
        return image, lores, "picam"

    def close(self) -> None:
        if not self._closed:
            try:
                self._cam.stop()
                self._cam.close()
            except Exception as exc:  # closing must not raise during shutdown
                log.warning("picam: error while closing the camera: %s", exc)
        super().close()


def lores_to_bgr(array: np.ndarray, size: tuple[int, int], fmt: str = "YUV420") -> np.ndarray:
    """Convert a picamera2 lores buffer to BGR of ``size`` (w, h).

    A YUV420 buffer arrives as (h * 3 / 2, stride) with stride >= w (row padding): converting the
    whole padded buffer and then cropping keeps the U/V planes aligned, which cropping the raw
    buffer first would not. libcamera's YUV420 is I420 (Y, then U, then V). Note that OpenCV's
    ``COLOR_YUV420p2BGR`` is an alias of ``COLOR_YUV2BGR_YV12`` (V before U) and would swap the
    chroma planes (tests/test_sources.py measures it); ``COLOR_YUV2BGR_I420`` is the right code.
    """
    w, h = size
    if fmt.upper() in ("YUV420", "YVU420"):
        code = cv2.COLOR_YUV2BGR_I420 if fmt.upper() == "YUV420" else cv2.COLOR_YUV2BGR_YV12
        return np.ascontiguousarray(cv2.cvtColor(array, code)[:h, :w])
    return np.ascontiguousarray(array[:h, :w, :3])  # Pi 5 can give RGB888/XBGR lores directly


_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*):(.*)$")
_SIZE = re.compile(r"^(\d+)[xX](\d+)$")  # as tiles = "2X2" is read


def _is_image(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_EXTENSIONS


def _image_entry(path: Path) -> bool:
    """An image file to read, or a broken link named like one: listed too, so that reading it
    warns and counts it as unreadable (an image left out without a word could go unnoticed)."""
    return _is_image(path) and (path.is_file() or (path.is_symlink() and not path.exists()))


def _list_images(folder: Path) -> list[Path]:
    """The images in ``folder`` in name order; [] when it is gone or cannot be listed."""
    try:
        return sorted(p for p in folder.iterdir() if _image_entry(p))
    except OSError:
        return []


def _glob_images(pattern: str) -> list[Path]:
    """The image files ``pattern`` matches, in name order."""
    pattern = os.path.expanduser(pattern)
    found = _walk_glob(pattern) if "**" in pattern.split("/") else globlib.glob(pattern)
    matches = sorted(Path(p) for p in found)
    return [p for p in matches if _image_entry(p)]


def _name_matches(name: str, pattern: str) -> bool:
    """One file or folder name against one part of a glob, as ``glob.glob`` matches it: a
    wildcard does not match a leading dot (hidden files, macOS's ``._IMG.jpg``)."""
    return fnmatch.fnmatchcase(name, pattern) and not (
        name.startswith(".") and not pattern.startswith(".")
    )


def _parts_match(names: Sequence[str], parts: Sequence[str]) -> bool:
    """Path ``names`` against glob ``parts``, where a ``**`` part stands for any number of
    folders (none too), as in ``glob.glob(recursive=True)``, pathlib and most shells."""
    if not parts:
        return not names
    if parts[0] == "**":
        return any(
            _parts_match(names[i:], parts[1:])
            for i in range(len(names) + 1)
            if not any(n.startswith(".") for n in names[:i])
        )
    return bool(names) and _name_matches(names[0], parts[0]) and _parts_match(names[1:], parts[1:])


def glob_matches(path: str, pattern: str) -> bool:
    """True when the file ``path`` is one that the glob source ``pattern`` reads (both written
    alike: absolute, or relative to the same folder)."""
    return _parts_match(path.split("/"), pattern.split("/"))


def _walk_glob(pattern: str) -> list[str]:
    """The files a pattern with a ``**`` part matches. ``glob.glob(recursive=True)`` follows
    links to folders, and two links to each other's folders make it walk for ever;
    ``os.walk`` does not follow them."""
    parts = pattern.split("/")
    head = "/".join(parts[: parts.index("**")])  # the part before the first **, globbed plainly
    if head:
        bases = globlib.glob(head) if any(c in head for c in "*?[") else [head]
    else:
        bases = ["/" if pattern.startswith("/") else "."]
    found = []
    for base in bases:
        for root, _dirs, files in os.walk(base):
            for name in files:
                path = os.path.join(root, name)
                path = path if head else path.removeprefix("./")  # "./a.jpg" as "a.jpg"
                if glob_matches(path, pattern):
                    found.append(path)
    return found


def _folder_source(spec: str, folder: Path, loop: bool) -> ImageFilesSource:
    """A folder's images; looping, it is listed again at each pass so new images are read."""
    images = _list_images(folder)
    if not images:
        raise SourceError(
            f"folder {folder} has no images ({', '.join(IMAGE_EXTENSIONS)}) for source {spec!r}"
        )
    return ImageFilesSource(
        spec, images, loop=loop, relist=lambda: _list_images(folder), label=f"folder {folder}"
    )


def _glob_source(spec: str, pattern: str, loop: bool) -> ImageFilesSource:
    """A glob's images; looping, it is matched again at each pass so new images are read."""
    images = _glob_images(pattern)
    if not images:
        raise SourceError(f"glob {spec!r} matches no image files ({', '.join(IMAGE_EXTENSIONS)})")
    return ImageFilesSource(
        spec, images, loop=loop, relist=lambda: _glob_images(pattern), label=f"glob {spec!r}"
    )


def _usb_source(spec: str, number: str, size: tuple[int, int] | None) -> VideoCaptureSource:
    """``usb:N``: the N of /dev/videoN, a number or a one-line error."""
    if not number.isdigit():
        raise SourceError(f"bad USB camera spec {spec!r}: write usb:N, e.g. usb:0")
    return VideoCaptureSource(spec, int(number), live=True, size=size)


def _path_source(
    spec: str, path_text: str, loop: bool, decode_threads: int | None = 1
) -> FrameSource:
    path = Path(path_text).expanduser()
    if path.is_dir():
        return _folder_source(spec, path, loop)
    if not path.exists():
        if path_text.isdigit():  # OpenCV's VideoCapture(0) habit: a camera number
            raise SourceError(
                f"source {spec!r}: no such file or folder; for USB camera {path_text} write "
                f"usb:{int(path_text)}"
            )
        if m := re.fullmatch(r"/dev/video(\d+)", path_text):
            raise SourceError(
                f"source {spec!r}: no camera at {path_text} (unplugged? ls /dev/video* lists "
                f"those there are); for USB camera {m[1]} write usb:{m[1]}"
            )
        # a bare word ('webcam') may be a mistyped spec: the list of specs; a path is a path
        looks_like_path = bool(path.suffix) or len(path.parts) > 1 or path_text.startswith("~")
        raise SourceError(
            f"source {spec!r}: no such file or folder {path}",
            hint="" if looks_like_path else SPEC_HELP,
        )
    if not path.is_file():
        raise _not_media(spec, path)
    if _is_image(path):
        return ImageFilesSource(spec, [path], single=True, loop=loop)
    return VideoCaptureSource(spec, str(path), live=False, loop=loop, decode_threads=decode_threads)


def _not_media(spec: str, path: Path) -> SourceError:
    """A path that exists but holds no file to decode (``/dev/zero``, ``/dev/video0``, a FIFO):
    said for what it is, not as a missing video, with the spec that reads a camera."""
    kind = file_kind(path.stat().st_mode)
    m = re.fullmatch(r"/dev/video(\d+)", str(path))
    fix = f"use usb:{m[1]} for that camera" if m else "for a camera write picam or usb:N"
    return SourceError(
        f"source {spec!r}: {path} is {kind}, not a video file, image or folder; "
        f"give the path of one ({fix})"
    )


def _prefixed_path_source(
    spec: str, scheme: str, rest: str, loop: bool, decode_threads: int | None
) -> FrameSource:
    """``file:PATH`` or ``dir:PATH``: the prefix must match what PATH is."""
    if not rest.strip():
        raise SourceError(f"empty path in source spec {spec!r}: write {scheme}:PATH")
    path = Path(rest).expanduser()
    if scheme == "file":
        if path.is_dir():
            raise SourceError(f"source {spec!r} is a folder: use dir:{rest}")
        return _path_source(spec, rest, loop, decode_threads)
    if path.is_file():
        raise SourceError(f"source {spec!r} is a file: use file:{rest} or the path alone")
    if not path.is_dir():
        raise SourceError(f"source {spec!r}: no such folder {path}")
    return _folder_source(spec, path, loop)


def check_stream_url(spec: str) -> None:
    """Raise SourceError when a stream URL names no host (``rtsp://``, ``tcp://:554``) or has a
    bad port: it could never connect, and the service would retry it forever as a camera that
    is down. udp:// (and tcp://...?listen) may leave the host out: they receive on a local port.
    Does nothing for a spec that is not a stream URL."""
    if not spec.strip().lower().startswith(STREAM_SCHEMES):
        return
    scheme = spec.strip().partition("://")[0].lower()
    form = f"write {scheme}://HOST[:PORT]/PATH"
    try:
        url = urlsplit(spec.strip())
    except ValueError as err:  # an unclosed [ of an IPv6 address
        raise SourceError(f"source {redact(spec)!r}: not a valid URL ({err}; {form})") from None
    try:
        host, port = url.hostname, url.port
    except ValueError as err:  # a port that is not a number or is out of range
        raise SourceError(f"source {redact(spec)!r}: bad port in the URL ({err}; {form})") from None
    listens = scheme == "udp" or (scheme == "tcp" and "listen" in url.query)
    if not host and not (listens and port):
        raise SourceError(f"source {redact(spec)!r}: no host in the URL ({form})")


def parse_size(text: str, what: str) -> tuple[int, int]:
    """Parse ``WxH`` (e.g. ``1280x720``) or raise ``SourceError`` naming ``what``."""
    m = _SIZE.match(text.strip())
    if not m or int(m.group(1)) <= 0 or int(m.group(2)) <= 0:
        raise SourceError(f"bad size {text!r} in {what}: write it as WIDTHxHEIGHT, e.g. 1280x720")
    return int(m.group(1)), int(m.group(2))


def open_source(
    spec: str,
    *,
    size: tuple[int, int] | None = None,
    lores_size: tuple[int, int] | None = (320, 240),
    loop: bool = False,
    fps: float = 30.0,
    decode_threads: int | None = 1,
) -> FrameSource:
    """Open the source named by ``spec``.

    Args:
        spec: see the module docstring.
        size: capture size for cameras (picam main stream, USB), ignored for files.
        lores_size: picam only: size of the lores stream the detector reads (pass the detector's
            input size to skip every CPU resize); None to use the main stream only.
        loop: files/folders only: start again at the end (benchmarks, demos).
        fps: picam frame rate.
        decode_threads: video files only: FFmpeg decoder threads (None = one per core). 1 by
            default, so decoding the next frame does not take cores from the interpreter.

    Raises:
        SourceError: unknown spec, missing file, undecodable video, stream URL without a host.
        SourceUnavailable: a camera or stream that cannot be opened now (retry later).
    """
    spec = spec.strip()
    if not spec:
        raise SourceError("empty source spec", hint=SPEC_HELP)
    low = spec.lower()
    if low == "picam" or low.startswith("picam:"):
        main = parse_size(spec[6:], f"source {spec!r}") if ":" in spec else (size or (1280, 720))
        return PicameraSource(spec, main, lores_size, fps)
    if low.startswith(STREAM_SCHEMES):
        check_stream_url(spec)
        return VideoCaptureSource(spec, spec, live=True)
    m = _SCHEME.match(spec)
    scheme, rest = (m.group(1).lower(), m.group(2)) if m else ("", spec)
    spec_path = rest if scheme in ("file", "dir") else spec
    if any(ch in spec_path for ch in "*?[") and not Path(spec_path).exists():
        return _glob_source(spec, spec_path, loop)
    if m and len(scheme) > 1:  # one letter would be a Windows drive, e.g. C:\clips
        if scheme == "usb":
            return _usb_source(spec, rest, size)
        if scheme in ("file", "dir"):
            return _prefixed_path_source(spec, scheme, rest, loop, decode_threads)
        if not Path(spec).exists():
            raise _unknown_scheme(spec, scheme)
    return _path_source(spec, spec, loop, decode_threads)


def _unknown_scheme(spec: str, scheme: str) -> SourceError:
    """``rstp://cam``: the scheme it is likely a typo of, else the list of every spec form."""
    typed = scheme + ("://" if spec[len(scheme) :].startswith("://") else ":")
    likely = closest(typed, [*STREAM_SCHEMES, "picam:", "usb:", "file:", "dir:"])
    if likely:
        return SourceError(f"unknown source spec {spec!r}; did you mean {likely!r}?")
    return SourceError(f"unknown source spec {spec!r}", hint=SPEC_HELP)


def bundled_sample_path() -> Path | None:
    """The sample clip shipped in ``data/`` (repo checkout or installed share dir), if present."""
    from edgedetect.installed import find_shipped_file

    return find_shipped_file("data/sample.mp4", ("sample/sample.mp4", "data/sample.mp4"))


def picamera_available() -> bool:
    """True on a Raspberry Pi with picamera2 installed and at least one camera attached."""
    try:
        model = Path("/proc/device-tree/model").read_text(errors="ignore")
    except OSError:
        return False
    if "Raspberry Pi" not in model:
        return False
    try:
        from picamera2 import Picamera2  # noqa: PLC0415 - Pi-only dependency

        return bool(Picamera2.global_camera_info())
    except Exception:  # no picamera2, or libcamera unhappy: not usable, fall back
        return False


def default_source_spec() -> str:
    """``picam`` on a Pi with a camera, else the bundled sample clip."""
    if picamera_available():
        return "picam"
    sample = bundled_sample_path()
    if sample is None:
        raise SourceError(
            "no camera and no bundled sample (data/sample.mp4): pass --source, e.g. "
            "--source usb:0 or --source clip.mp4 (or run python data/make_sample.py)"
        )
    return str(sample)
