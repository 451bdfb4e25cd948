"""PicameraClipWriter against a fake picamera2 package written into tmp_path and put on sys.path.

The fake records every call and stands for picamera2's API (Picamera2.start_encoder /
stop_encoder, H264Encoder, CircularOutput2.open_output / close_output, PyavOutput), with a
PyavOutput that writes a small real MP4 when stopped. These are unit tests of the calls we make,
the file naming, rename, retention and failure counting; they say nothing about the real
encoder, which only a Raspberry Pi has. Also: which writer the service picks.
"""

from __future__ import annotations

import importlib
import sys
import textwrap
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from test_service_support import poll, write_config

from edgedetect.detections import Detections
from edgedetect.frame import Frame
from edgedetect.service.clip_picamera import PicameraClipWriter, camera_of, choose_writer
from edgedetect.service.clip_recorder import MAX_HOLD_S, ClipRecorder, OpenCVClipWriter
from edgedetect.service.events import utc_stamp
from edgedetect.sources import PicameraSource

WALL0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z
NO_DETS = Detections.empty()

FAKE_INIT = """
CALLS = []  # (what, details) in call order, shared by the fake's modules


class Picamera2:
    def __init__(self, name="cam"):
        self.name = name

    def start_encoder(self, encoder=None, output=None, pts=None, quality=None, name=None):
        CALLS.append(("start_encoder", self.name))
        encoder.output = output
        output.start()

    def stop_encoder(self, encoders=None):
        CALLS.append(("stop_encoder", self.name))
        if getattr(self, "dead", False):
            raise RuntimeError("camera closed")
        encoders.output.stop()
"""

FAKE_ENCODERS = """
from picamera2 import CALLS


class {name}:
    def __init__(self, bitrate=None, repeat=True, iperiod=None):
        CALLS.append(("H264Encoder", (bitrate, repeat, iperiod)))
        self.output = None
"""

FAKE_OUTPUTS = """
import cv2
import numpy as np

from picamera2 import CALLS


class CircularOutput2:
    def __init__(self, pts=None, buffer_duration_ms=5000):
        CALLS.append(("CircularOutput2", buffer_duration_ms))
        self._output = None

    def start(self):
        pass

    def open_output(self, output):
        if self._output:
            raise RuntimeError("Underlying output must be closed first")
        CALLS.append(("open_output", output.name))
        self._output = output  # kept even when start() fails, like picamera2's
        output.start()

    def close_output(self):
        if not self._output:
            raise RuntimeError("No underlying output has been opened")
        CALLS.append(("close_output", self._output.name))
        self._output.stop()
        self._output = None

    def outputframe(self, frame, keyframe=True, timestamp=None, packet=None, audio=False):
        if self._output:  # the real one writes what it buffered pre_s ago; this one at once
            self._output.outputframe(frame, keyframe, timestamp, packet, audio)

    def stop(self):  # the encoder stops: what is buffered goes to an open output
        if self._output:
            CALLS.append(("flush", self._output.name))
            self._output.stop()
            self._output = None


class PyavOutput:
    garbage = False  # tests set it: the next file is not a playable MP4

    def __init__(self, output_name, format=None, pts=None):
        self.name = output_name
        self.error_callback = None

    def start(self):
        open(self.name, "wb").close()

    def outputframe(self, frame, keyframe=True, timestamp=None, packet=None, audio=False):
        CALLS.append(("frame", timestamp))

    def stop(self):
        if PyavOutput.garbage:
            with open(self.name, "wb") as f:
                f.write(b"not an mp4")
            return
        w = cv2.VideoWriter(self.name, cv2.VideoWriter.fourcc(*"mp4v"), 5.0, (32, 32))
        for _ in range(3):
            w.write(np.zeros((32, 32, 3), np.uint8))
        w.release()
"""


@pytest.fixture
def fake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[types.ModuleType]:
    """The fake picamera2 package, importable for this test only."""
    yield _install(tmp_path, monkeypatch, "H264Encoder")


def _install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, encoder: str) -> types.ModuleType:
    pkg = tmp_path / "fakepkgs" / "picamera2"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text(textwrap.dedent(FAKE_INIT))
    (pkg / "encoders.py").write_text(textwrap.dedent(FAKE_ENCODERS.format(name=encoder)))
    if encoder != "H264Encoder":  # a Pi 5: picamera2 names its software encoder H264Encoder
        (pkg / "encoders.py").write_text(
            (pkg / "encoders.py").read_text() + f"\nH264Encoder = {encoder}\n"
        )
    (pkg / "outputs.py").write_text(textwrap.dedent(FAKE_OUTPUTS))
    for mod in [m for m in sys.modules if m == "picamera2" or m.startswith("picamera2.")]:
        monkeypatch.delitem(sys.modules, mod)
    monkeypatch.syspath_prepend(str(pkg.parent))
    importlib.invalidate_caches()
    names = ("picamera2", "picamera2.encoders", "picamera2.outputs")
    for mod in names:  # recorded as absent, so undoing removes the fake modules after the test
        monkeypatch.setitem(sys.modules, mod, types.ModuleType(mod))
        del sys.modules[mod]
    for mod in names:
        importlib.import_module(mod)
    return sys.modules["picamera2"]


def frame(i: int) -> Frame:
    t = i / 10.0
    return Frame(i, 1000.0 + t, WALL0 + t, np.zeros((48, 64, 3), np.uint8))


def recorder(d: Path, cams: list[Any], **kw: float) -> ClipRecorder:
    """A recorder on PicameraClipWriter; `cams[0]` is the camera it sees now."""
    opts: dict[str, Any] = dict(
        pre_s=30.0,  # the delayed close never comes by itself in a test: start/stop decide
        post_s=0.5,
        max_s=60.0,
        fps=5.0,
        width=160,
        annotated=False,
        max_bytes=10**9,
        max_files=100,
    )
    opts.update(kw)
    return ClipRecorder(
        d, writer=lambda rec: PicameraClipWriter(rec, lambda: cams[0] if cams else None), **opts
    )


def play(rec: ClipRecorder, people: list[int], first: int = 0) -> list[str]:
    return [rec.push(frame(first + i), NO_DETS, n) for i, n in enumerate(people)]


def mp4s(d: Path) -> list[str]:
    return sorted(p.name for p in d.glob("*.mp4"))


def hidden(d: Path) -> list[str]:
    return sorted(p.name for p in d.glob(".*"))


def test_episodes_open_and_close_outputs_on_the_running_encoder(
    tmp_path: Path, fake: types.ModuleType
) -> None:
    cam = fake.Picamera2("cam1")
    rec = recorder(tmp_path, [cam])
    names = play(rec, [0] * 5 + [1] * 5 + [0] * 10 + [1] * 5 + [0] * 10)  # two episodes
    rec.close()
    a, b = (n for n in dict.fromkeys(names) if n)
    assert a == f"{utc_stamp(WALL0 + 0.5)}_clip.mp4" and b == f"{utc_stamp(WALL0 + 2.0)}_clip.mp4"
    pa, pb = (str(tmp_path / f".{n}.part.mp4") for n in (a, b))
    assert fake.CALLS == [
        ("H264Encoder", (2_000_000, True, 30)),
        ("CircularOutput2", 30_000),  # pre_s of encoded video
        ("start_encoder", "cam1"),  # at the first frame: the pre-roll fills from then on
        ("open_output", pa),
        ("close_output", pa),  # delayed past the end; the next episode closes it at once
        ("open_output", pb),
        ("stop_encoder", "cam1"),  # close: picamera2 flushes the buffer into the open clip
        ("flush", pb),
    ]
    assert mp4s(tmp_path) == [a, b] and hidden(tmp_path) == []
    assert rec.saved == 2 and rec.failed == 0 and rec.dropped == 0


def test_end_closes_the_output_once_the_buffer_is_written(
    tmp_path: Path, fake: types.ModuleType
) -> None:
    rec = recorder(tmp_path, [fake.Picamera2()], pre_s=0.0, post_s=0.0)  # buffer: MIN_BUFFER_S
    names = play(rec, [0, 1, 1, 0, 0])
    assert poll(lambda: rec.saved == 1), "the delayed close never came"
    assert ("close_output", str(tmp_path / f".{names[1]}.part.mp4")) in fake.CALLS
    assert ("CircularOutput2", 100) in fake.CALLS  # 0 ms would record nothing at all
    rec.close()
    assert mp4s(tmp_path) == [names[1]] and not [c for c in fake.CALLS if c[0] == "flush"]


def test_max_s_splits_into_contiguous_files(tmp_path: Path, fake: types.ModuleType) -> None:
    rec = recorder(tmp_path, [fake.Picamera2()], max_s=2.0)
    names = play(rec, [1] * 50 + [0] * 10)  # 5 s episode
    rec.close()
    files = [n for n in dict.fromkeys(names) if n]
    assert len(files) >= 2 and mp4s(tmp_path) == sorted(files) and rec.saved == len(files)
    opened = [c for c in fake.CALLS if c[0] in ("open_output", "close_output", "flush")]
    assert [c[0] for c in opened] == ["open_output", "close_output"] * (len(files) - 1) + [
        "open_output",
        "flush",
    ]


def test_retention_applies_to_hardware_clips(tmp_path: Path, fake: types.ModuleType) -> None:
    old = tmp_path / "20250101T000000.000Z_clip.mp4"
    old.write_bytes(b"x" * 10)
    crash = tmp_path / ".20250101T000001.000Z_clip.mp4.part.mp4"
    crash.write_bytes(b"left by a crash")
    rec = recorder(tmp_path, [fake.Picamera2()], max_files=2)
    names = [n for n in dict.fromkeys(play(rec, ([0] * 10 + [1] * 3) * 3)) if n]
    rec.close()
    assert len(names) == 3 and mp4s(tmp_path) == names[-2:]  # the oldest two deleted
    assert not crash.exists()


def test_unwritable_folder_counts_the_clip_failed_then_recovers(
    tmp_path: Path, fake: types.ModuleType
) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where the folder's parent should be")
    d = blocker / "clips"
    rec = recorder(d, [fake.Picamera2()])
    play(rec, [0, 1, 1, 0, 0, 0, 0, 0])
    rec.close()
    assert rec.failed == 1 and rec.saved == 0
    assert not [c for c in fake.CALLS if c[0] == "open_output"]  # never asked to write there
    blocker.unlink()
    rec = recorder(d, [fake.Picamera2()])
    names = play(rec, [0, 1, 1, 0, 0, 0, 0, 0])
    rec.close()
    assert rec.saved == 1 and rec.failed == 0 and mp4s(d) == [names[1]]


def test_write_error_and_unplayable_file_are_failures(
    tmp_path: Path, fake: types.ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    cam = fake.Picamera2()
    rec = recorder(tmp_path, [cam])
    play(rec, [0, 1, 1])
    writer = rec.writer
    assert isinstance(writer, PicameraClipWriter)
    assert poll(lambda: writer._output is not None), "the output never opened"
    writer._output.error_callback(OSError(28, "No space left on device"))  # as PyavOutput does
    play(rec, [0] * 10, first=3)
    monkeypatch.setattr(sys.modules["picamera2.outputs"].PyavOutput, "garbage", True)
    play(rec, [1, 1, 0], first=20)
    rec.close()
    assert rec.failed == 2 and rec.saved == 0
    assert mp4s(tmp_path) == [] and hidden(tmp_path) == []


def test_a_camera_gap_plays_for_max_hold_s_only(tmp_path: Path, fake: types.ModuleType) -> None:
    """The encoder stamps frames with their capture time: a camera that sent nothing for 5 s
    left a 5 s frozen picture in the clip, where the OpenCV writer holds it for MAX_HOLD_S."""
    rec = recorder(tmp_path, [fake.Picamera2()])
    play(rec, [0, 1, 1])
    writer = rec.writer
    assert isinstance(writer, PicameraClipWriter)
    assert poll(lambda: writer._output is not None), "the output never opened"
    captured = [10.0, 10.1, 10.2, 15.2, 15.3]  # seconds: nothing from 10.2 to 15.2
    for ts in captured:  # as the encoder's thread hands them on
        writer._circular.outputframe(b"h264", True, round(ts * 1_000_000))
    rec.close()
    stamps = [c[1] / 1_000_000 for c in fake.CALLS if c[0] == "frame"]
    assert stamps[:3] == captured[:3]  # before the gap: as captured
    gaps = np.diff(stamps)
    assert gaps == pytest.approx([0.1, 0.1, MAX_HOLD_S, 0.1])


def test_a_reopened_camera_moves_the_encoder(tmp_path: Path, fake: types.ModuleType) -> None:
    cam1, cam2 = fake.Picamera2("cam1"), fake.Picamera2("cam2")
    cams: list[Any] = [cam1]
    rec = recorder(tmp_path, cams)
    names = play(rec, [0, 1, 1])
    cam1.dead = True  # a ResilientSource reopen: the old camera is closed, a new one runs
    cams[0] = cam2
    names += play(rec, [1, 1, 0, 0, 0, 0, 0, 0] + [0] * 5 + [1, 1, 0, 0, 0, 0, 0], first=3)
    rec.close()
    first, second = (n for n in dict.fromkeys(names) if n)
    starts = [c for c in fake.CALLS if c[0] in ("start_encoder", "stop_encoder")]
    assert starts == [
        ("start_encoder", "cam1"),
        ("stop_encoder", "cam1"),  # raised: the writer closes the output itself
        ("start_encoder", "cam2"),
        ("stop_encoder", "cam2"),
    ]
    # the first episode keeps what it had before the reopen; the next one records on cam2
    assert mp4s(tmp_path) == [first, second] and rec.saved == 2 and rec.failed == 0
    opens = [c[1] for c in fake.CALLS if c[0] == "open_output"]
    assert opens == [str(tmp_path / f".{n}.part.mp4") for n in (first, second)]


def test_buffer_bytes_is_the_encoders_estimate(tmp_path: Path, fake: types.ModuleType) -> None:
    cams: list[Any] = []
    rec = recorder(tmp_path, cams, pre_s=3.0)
    play(rec, [0, 0])
    assert rec.buffer_bytes == 0  # no camera yet: nothing buffered
    cams.append(fake.Picamera2())
    play(rec, [0, 0], first=2)
    assert poll(lambda: rec.buffer_bytes) == 2_000_000 // 8 * 3
    rec.close()


# ---------------------------------------------------------------------------- selection
def picam(cam: Any) -> PicameraSource:
    """A PicameraSource as the opener leaves it, without a camera stack behind it."""
    src = PicameraSource.__new__(PicameraSource)
    src._cam = cam
    return src


def test_selection(tmp_path: Path, fake: types.ModuleType) -> None:
    cam = fake.Picamera2()
    on_pi = types.SimpleNamespace(spec="picam", inner=picam(cam))
    assert camera_of(on_pi) is cam
    assert choose_writer(False, on_pi)[0] is not None
    waiting = types.SimpleNamespace(spec="picam:1920x1080", inner=None)  # camera not there yet
    assert choose_writer(False, waiting)[0] is not None and camera_of(waiting) is None
    assert choose_writer(True, on_pi) == (None, "annotated = true: boxes are drawn in software")
    usb = types.SimpleNamespace(spec="usb:0", inner=object())
    assert choose_writer(False, usb) == (None, "the source is not a Pi camera")
    assert choose_writer(False, types.SimpleNamespace(spec="picam", inner=object()))[0] is None
    assert choose_writer(False, None)[0] is None


def test_selection_without_a_hardware_encoder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _install(tmp_path, monkeypatch, "LibavH264Encoder")  # what picamera2 gives on a Pi 5
    on_pi = types.SimpleNamespace(spec="picam", inner=picam(object()))
    writer, why = choose_writer(False, on_pi)
    assert writer is None and "LibavH264Encoder" in why


def test_selection_without_picamera2_outputs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    picamera2 = _install(tmp_path, monkeypatch, "H264Encoder")
    monkeypatch.delattr(sys.modules["picamera2.outputs"], "PyavOutput")  # an older picamera2
    on_pi = types.SimpleNamespace(spec="picam", inner=picam(picamera2.Picamera2()))
    writer, why = choose_writer(False, on_pi)
    assert writer is None and "PyavOutput" in why


@pytest.mark.parametrize("annotated", [True, False])
def test_service_builds_the_writer_it_selects(
    tmp_path: Path, fake: types.ModuleType, annotated: bool
) -> None:
    from edgedetect.service.config import load_config
    from edgedetect.service.daemon import Service

    clips = {"enabled": True, "dir": str(tmp_path / "clips"), "annotated": annotated}
    cfg = load_config(str(write_config(tmp_path, clips=clips)))
    svc = Service(cfg, install_signals=False)
    on_pi = types.SimpleNamespace(spec="picam", inner=picam(fake.Picamera2()))
    for src, hardware in ((on_pi, not annotated), (types.SimpleNamespace(inner=None), False)):
        rec = svc._make_recorder(cfg, src)  # type: ignore[arg-type]
        assert rec is not None
        kind = PicameraClipWriter if hardware else OpenCVClipWriter
        assert type(rec.writer) is kind, (src, annotated)
        rec.close()
