"""Frame sources: files, folders, globs, spec errors, unreadable images, picam off the Pi."""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path

import cv2
import numpy as np
import pytest

from edgedetect.errors import ImageError, SourceError, SourceLost
from edgedetect.frame import Frame
from edgedetect.sources import (
    ImageFilesSource,
    PicameraSource,
    SourceUnavailable,
    VideoCaptureSource,
    bundled_sample_path,
    default_source_spec,
    lores_to_bgr,
    open_source,
    parse_size,
    picamera_available,
)

COLORS = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0), (0, 255, 255), (255, 0, 255)]


@pytest.fixture()
def clip(tmp_path: Path) -> Path:
    """A 12-frame 160x120 clip at 10 fps: frame k is a flat colour with k drawn on it."""
    path = tmp_path / "clip.mp4"
    w = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"mp4v"), 10.0, (160, 120))
    assert w.isOpened()
    for k in range(12):
        img = np.full((120, 160, 3), COLORS[k % len(COLORS)], np.uint8)
        cv2.putText(img, str(k), (50, 80), cv2.FONT_HERSHEY_SIMPLEX, 2, (0, 0, 0), 3)
        w.write(img)
    w.release()
    return path


@pytest.fixture()
def folder(tmp_path: Path) -> Path:
    d = tmp_path / "imgs"
    d.mkdir()
    for name, color in (("b.png", COLORS[1]), ("a.png", COLORS[0]), ("c.jpg", COLORS[2])):
        cv2.imwrite(str(d / name), np.full((40, 60, 3), color, np.uint8))
    (d / "notes.txt").write_text("not an image, ignored")
    return d


def _drain(source) -> list:
    frames = []
    while (f := source.read()) is not None:
        frames.append(f)
    return frames


@pytest.mark.parametrize("prefix", ["", "file:"])
def test_video_file_frames_ids_timestamps(clip: Path, prefix: str):
    with open_source(prefix + str(clip)) as src:
        assert isinstance(src, VideoCaptureSource) and not src.live
        assert src.fps == pytest.approx(10.0)
        frames = _drain(src)
        assert src.read() is None
    assert [f.id for f in frames] == list(range(12))
    assert all(b.timestamp >= a.timestamp for a, b in zip(frames[:-1], frames[1:], strict=True))
    assert all(
        f.size == (160, 120) and f.image.dtype == np.uint8 and f.lores is None for f in frames
    )
    # decoded content is the right frame: the flat colour of frame k (BGR order kept)
    for f in frames:
        assert np.abs(f.image[5, 5].astype(int) - COLORS[f.id % len(COLORS)]).max() < 40


def test_video_loop_keeps_counting_ids(clip: Path):
    frames: list[Frame] = []
    with open_source(str(clip), loop=True) as src:
        for _ in range(30):
            frame = src.read()
            assert frame is not None
            frames.append(frame)
    assert [f.id for f in frames] == list(range(30))
    assert np.abs(frames[12].image.astype(int) - frames[0].image.astype(int)).mean() < 3


def test_folder_in_name_order_skipping_non_images(folder: Path):
    for spec in (str(folder), f"dir:{folder}", str(folder / "*.*"), f"dir:{folder}/*.*"):
        with open_source(spec) as src:
            frames = _drain(src)
        assert [Path(f.source).name for f in frames] == ["a.png", "b.png", "c.jpg"], spec
        assert [f.id for f in frames] == [0, 1, 2]
        assert tuple(frames[1].image[0, 0]) == COLORS[1]


def test_single_image_path(folder: Path):
    with open_source(str(folder / "b.png")) as src:
        frames = _drain(src)
    assert len(frames) == 1 and frames[0].size == (60, 40)


def test_unreadable_image_in_folder_is_skipped_with_warning(folder: Path, caplog):
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    with caplog.at_level(logging.WARNING), open_source(str(folder)) as src:
        frames = _drain(src)
        assert isinstance(src, ImageFilesSource)
        assert src.unreadable == [folder / "broken.png"]
    assert [Path(f.source).name for f in frames] == ["a.png", "b.png", "c.jpg"]
    assert "broken.png" in caplog.text and "skipping" in caplog.text


def test_empty_image_file_in_folder_is_skipped_like_any_unreadable_one(folder: Path):
    """A 0-byte file (a camera or a copy still writing it) is unreadable, not an internal error."""
    (folder / "b2.jpg").write_bytes(b"")
    with open_source(str(folder)) as src:
        frames = _drain(src)
        assert isinstance(src, ImageFilesSource)
        assert src.unreadable == [folder / "b2.jpg"]
    assert [Path(f.source).name for f in frames] == ["a.png", "b.png", "c.jpg"]


def test_folder_with_only_unreadable_images_is_an_error(tmp_path: Path):
    (tmp_path / "x.jpg").write_text("nope")
    (tmp_path / "y.png").write_text("nope")
    src = open_source(str(tmp_path))
    with pytest.raises(ImageError, match="no readable image.*x.jpg"):
        src.read()


def test_single_unreadable_image_is_an_error(tmp_path: Path):
    bad = tmp_path / "bad.jpg"
    bad.write_text("not a jpeg")
    src = open_source(str(bad))
    assert isinstance(src, ImageFilesSource)
    with pytest.raises(ImageError, match="bad.jpg"):
        src.read()


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        ("foo:bar", "unknown source spec 'foo:bar'.*usb:N"),
        ("usb:front", "bad USB camera spec"),
        ("picam:big", "bad size 'big'"),
        ("", "empty source spec"),
        ("/no/such/clip.mp4", "no such file or folder /no/such/clip.mp4"),
        ("dir:/no/such/folder", "no such folder"),
        ("/no/such/*.png", "matches no image files"),
    ],
)
def test_bad_specs_raise_source_error_naming_the_value(spec: str, match: str):
    with pytest.raises(SourceError, match=match):
        open_source(spec)


def test_sizes_read_as_tiles_are_in_either_case() -> None:
    """`--size 640X480` was refused while `tiles = "2X2"` was accepted."""
    assert parse_size("640X480", "--size") == parse_size(" 640x480 ", "--size") == (640, 480)
    for bad in ("640x", "x480", "0x480", "640*480", "640 x 480"):
        with pytest.raises(SourceError, match="WIDTHxHEIGHT"):
            parse_size(bad, "--size")


def test_empty_folder_and_file_prefix_on_folder(tmp_path: Path):
    with pytest.raises(SourceError, match="has no images"):
        open_source(str(tmp_path))
    with pytest.raises(SourceError, match="is a folder: use dir:"):
        open_source(f"file:{tmp_path}")


def test_undecodable_video_file(tmp_path: Path):
    bad = tmp_path / "clip.mp4"
    bad.write_bytes(b"\x00" * 2048)
    with pytest.raises(SourceError, match="clip.mp4"):
        src = open_source(str(bad))
        src.read()


def test_missing_usb_camera_is_unavailable_not_a_crash():
    with pytest.raises(SourceUnavailable, match="usb:63") as info:
        open_source("usb:63")
    assert isinstance(info.value, SourceLost)  # the service retries these


def test_unreachable_stream_is_unavailable():
    with pytest.raises(SourceUnavailable, match="http://127.0.0.1:9/"):
        open_source("http://127.0.0.1:9/stream.mjpg")


@pytest.mark.skipif(
    importlib.util.find_spec("picamera2") is not None,
    reason="picamera2 is installed: this checks the off-Pi message",
)
def test_picam_off_the_pi_fails_with_a_clear_message():
    with pytest.raises(SourceError, match="picamera2.*Raspberry Pi.*usb:0"):
        open_source("picam")
    assert picamera_available() is False


def test_default_source_off_the_pi_is_the_bundled_sample():
    if picamera_available():
        pytest.skip("a Pi camera is attached: the default is picam")
    sample = bundled_sample_path()
    if sample is None:
        pytest.skip("bundled sample missing (run python data/make_sample.py)")
    assert default_source_spec() == str(sample)


def test_lores_yuv420_with_row_padding_converts_to_bgr(astronaut_bgr):
    """picamera2 lores buffers are (h*3/2, stride) with stride > w: convert, then crop."""
    w, h, stride = 320, 240, 384
    bgr = cv2.resize(astronaut_bgr, (w, h))
    i420 = cv2.cvtColor(bgr, cv2.COLOR_BGR2YUV_I420)  # (h*3/2, w), no padding
    y = i420[:h]
    u = i420[h : h + h // 4].reshape(h // 2, w // 2)
    v = i420[h + h // 4 :].reshape(h // 2, w // 2)
    pad = np.zeros((h * 3 // 2, stride), np.uint8)
    pad[:h, :w] = y
    uu = np.zeros((h // 2, stride // 2), np.uint8)
    vv = np.zeros((h // 2, stride // 2), np.uint8)
    uu[:, : w // 2], vv[:, : w // 2] = u, v
    pad[h : h + h // 4] = uu.reshape(h // 4, stride)
    pad[h + h // 4 :] = vv.reshape(h // 4, stride)
    out = lores_to_bgr(pad, (w, h), "YUV420")
    assert out.shape == (h, w, 3) and out.flags["C_CONTIGUOUS"]
    # 4:2:0 chroma subsampling loses some colour detail, nothing more
    assert np.abs(out.astype(int) - bgr.astype(int)).mean() < 6
    # the chroma-swapping code the picamera2 examples suggest would be far off: the test can fail
    swapped = cv2.cvtColor(pad, cv2.COLOR_YUV420p2BGR)[:h, :w]
    assert np.abs(swapped.astype(int) - bgr.astype(int)).mean() > 20


class FakePicamera2:
    """Test double of picamera2.Picamera2: the calls PicameraSource makes, with real buffers.

    The main stream is a BGR photo; the lores stream is that photo in I420 with row padding
    (stride 384 for a 320-wide lores), as the Pi 4 ISP delivers it.
    """

    photo: np.ndarray
    instances = 0

    def __init__(self) -> None:
        FakePicamera2.instances += 1
        self.started = 0
        self.closed = False
        self.config: dict = {}

    @staticmethod
    def global_camera_info() -> list[dict]:
        return [{"Model": "imx219", "Num": 0}]

    def create_video_configuration(self, main, lores=None, controls=None) -> dict:
        return {"main": dict(main), "lores": dict(lores) if lores else None, "controls": controls}

    def align_configuration(self, config: dict) -> None:
        w, h = config["lores"]["size"]
        config["lores"]["size"] = ((w + 31) // 32 * 32, (h + 1) // 2 * 2)  # 300 -> 320

    def configure(self, config: dict) -> None:
        self.config = config

    def start(self) -> None:
        self.started += 1

    def stop(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True

    def capture_arrays(self, names: list[str]):
        mw, mh = self.config["main"]["size"]
        main = cv2.resize(self.photo, (mw, mh))
        w, h = self.config["lores"]["size"]
        stride = 384
        i420 = cv2.cvtColor(cv2.resize(self.photo, (w, h)), cv2.COLOR_BGR2YUV_I420)
        buf = np.zeros((h * 3 // 2, stride), np.uint8)
        buf[:h, :w] = i420[:h]
        for k, start in enumerate((h, h + h // 4)):
            plane = np.zeros((h // 2, stride // 2), np.uint8)
            plane[:, : w // 2] = i420[start : start + h // 4].reshape(h // 2, w // 2)
            buf[h + k * h // 4 : h + (k + 1) * h // 4] = plane.reshape(h // 4, stride)
        return [main, buf], {}


def test_picam_source_gives_main_and_converted_lores(monkeypatch, astronaut_bgr):
    import sys
    import types

    FakePicamera2.photo = astronaut_bgr
    FakePicamera2.instances = 0
    monkeypatch.setitem(sys.modules, "picamera2", types.SimpleNamespace(Picamera2=FakePicamera2))
    src = open_source("picam:640x480", lores_size=(300, 300))
    assert src.live and FakePicamera2.instances == 1
    assert isinstance(src, PicameraSource)
    f0, f1 = src.read(), src.read()
    assert f0 is not None and f1 is not None and f0.lores is not None
    assert (f0.id, f1.id) == (0, 1) and f0.size == (640, 480)
    assert f0.lores.shape == (300, 320, 3)  # the aligned lores size, padding cropped away
    expected = cv2.resize(astronaut_bgr, (320, 300))
    assert np.abs(f0.lores.astype(int) - expected.astype(int)).mean() < 6
    assert f0.detector_input is f0.lores
    assert FakePicamera2.instances == 1 and src._cam.started == 1
    src.close()
    assert src._cam.closed and src.read() is None


def test_picam_lores_never_larger_than_main(monkeypatch, astronaut_bgr):
    import sys
    import types

    FakePicamera2.photo = astronaut_bgr
    monkeypatch.setitem(sys.modules, "picamera2", types.SimpleNamespace(Picamera2=FakePicamera2))
    with open_source("picam:320x240", lores_size=(300, 300)) as src:
        frame = src.read()
    assert frame is not None and frame.lores is not None
    assert frame.size == (320, 240) and frame.lores.shape == (240, 320, 3)
