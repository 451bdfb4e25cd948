"""Tester's source bugs: looping folders that empty or grow, skip reasons, prefix and URL spec
errors, truncated videos and images too large for a Pi. Each test failed before its fix."""

from __future__ import annotations

import logging
import os
import re
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

import edgedetect.images as images_mod
import edgedetect.sources as sources_mod
from edgedetect.errors import ImageError, SourceError, SourceLost
from edgedetect.images import MAX_IMAGE_PIXELS, image_size, read_bgr
from edgedetect.resilient import ResilientSource
from edgedetect.sources import ImageFilesSource, check_stream_url, open_source

REPO = Path(__file__).resolve().parents[1]
PHOTOS = sorted((REPO / "data" / "images").glob("*.jpg"))
SAMPLE = REPO / "data" / "sample.mp4"


@pytest.fixture()
def photos(tmp_path: Path) -> Path:
    """A folder with two real photos, a.jpg and b.jpg."""
    folder = tmp_path / "photos"
    folder.mkdir()
    for name, src in zip(("a.jpg", "b.jpg"), PHOTOS, strict=False):
        shutil.copy(src, folder / name)
    return folder


def _names(source, n: int) -> list[str]:
    return [Path(source.read().source).name for _ in range(n)]


@pytest.fixture()
def no_spin(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail (instead of hanging) if a source tries hundreds of images for one frame."""
    real, calls = sources_mod.read_bgr, [0]

    def counted(path, what="image"):
        calls[0] += 1
        assert calls[0] < 500, "the source spins over unreadable images"
        return real(path, what)

    monkeypatch.setattr(sources_mod, "read_bgr", counted)


@pytest.mark.usefixtures("no_spin")
@pytest.mark.parametrize("replaced", [False, True])
def test_looping_folder_without_readable_images_raises_instead_of_spinning(
    photos: Path, replaced: bool
) -> None:
    src = open_source(f"dir:{photos}", loop=True)
    assert _names(src, 2) == ["a.jpg", "b.jpg"]
    for p in photos.iterdir():
        p.unlink()
    if replaced:  # new names, none readable
        (photos / "c.jpg").write_bytes(b"")
    with pytest.raises(SourceLost, match=f"folder {photos} has no readable images") as info:
        src.read()
    assert ("is empty (0 bytes)" in str(info.value)) is replaced


def test_reopened_looping_folder_with_only_unreadable_images_is_lost_not_a_user_error(
    photos: Path,
) -> None:
    """The service reopens an emptied folder as soon as a file shows up, maybe half-written:
    that is "retry later" (SourceLost), not the start-up error that stops the service."""
    for p in photos.iterdir():
        p.unlink()
    (photos / "c.jpg").write_bytes(b"")
    src = open_source(f"dir:{photos}", loop=True)
    src.next_id = 7  # as ResilientSource sets it on a reopened source
    with pytest.raises(SourceLost, match="has no readable images.*c.jpg is empty"):
        src.read()
    fresh = open_source(f"dir:{photos}", loop=True)
    with pytest.raises(ImageError, match="no readable image"):
        fresh.read()


@pytest.mark.parametrize("form", ["dir:{}", "{}", "{}/*.jpg"])
def test_looping_folder_or_glob_is_listed_again_at_each_pass(photos: Path, form: str) -> None:
    src = open_source(form.format(photos), loop=True)
    assert _names(src, 2) == ["a.jpg", "b.jpg"]
    shutil.copy(photos / "a.jpg", photos / "c.jpg")
    (photos / "a.jpg").unlink()
    assert _names(src, 3) == ["b.jpg", "c.jpg", "b.jpg"]
    assert isinstance(src, ImageFilesSource)
    assert src.unreadable == []  # a removed file is dropped from the list, not skipped


def test_service_wrapper_reopens_an_emptied_looping_folder(photos: Path) -> None:
    """The SourceLost reaches ResilientSource as an error (not a stall): it reopens the folder,
    which by then has a new image."""
    (photos / "b.jpg").unlink()

    def on_event(kind: str) -> None:
        assert kind != "stall", "the folder source spun until the stuck-read watchdog fired"
        if kind == "error":
            shutil.copy(PHOTOS[0], photos / "z.jpg")

    src = looping_source(f"dir:{photos}", on_event)
    src.open()
    try:
        assert _names(src, 1) == ["a.jpg"]
        (photos / "a.jpg").unlink()
        # the reader thread may have read a.jpg once more before it was removed
        assert "z.jpg" in _names(src, 2)
        assert src.errors >= 1 and src.stalls == 0
    finally:
        src.close()


@pytest.mark.parametrize("how", ["deleted", "half-written"])
def test_looping_single_image_that_goes_away_is_retried_like_a_folder(
    tmp_path: Path, how: str
) -> None:
    """`spec = "latest.jpg"`, a picture another program rewrites in place: once frames had
    flowed, reading it half-written (or between a delete and a new copy) raised the user's
    ImageError, and the service stopped with exit 2; now it is lost and reopened with backoff."""
    image = tmp_path / "latest.jpg"
    shutil.copy(PHOTOS[0], image)
    saved = image.read_bytes()
    errors: list[str] = []

    def on_event(kind: str) -> None:
        assert kind != "stall"
        if kind == "reconnect" and src.last_error:
            errors.append(src.last_error)
            if len(errors) == 3:  # the writer is done
                image.write_bytes(saved)

    src = looping_source(f"file:{image}", on_event, reconnect_max_s=0.05)
    src.open()
    try:
        assert src.read() is not None
        if how == "deleted":
            image.unlink()
        else:
            image.write_bytes(saved[: len(saved) // 2])
        for _ in range(10):  # through the lost file and back
            frame = src.read()
            assert frame is not None and frame.source == str(image)
        assert len(errors) >= 3 and src.errors >= 1
        # how the read failed depends on where it met the writer (gone, empty, truncated)
        assert "the looping image can no longer be read" in errors[0], errors
        assert str(image) in errors[0], errors
    finally:
        src.close()


def looping_source(spec: str, on_event, reconnect_max_s: float = 30.0) -> ResilientSource:
    """``spec`` opened with loop = true, as the service opens it, with quick reconnects."""
    return ResilientSource(
        spec,
        lambda s: open_source(s, loop=True),
        loop=True,
        reconnect_min_s=0.01,
        stall_timeout_s=5,
        reconnect_max_s=reconnect_max_s,
        on_event=on_event,
    )


def small_video(path: Path, frames: int = 6) -> Path:
    """A real mp4v clip of `frames` 64x48 frames (FFmpeg writes its index at the end)."""
    out = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"mp4v"), 10.0, (64, 48))
    for i in range(frames):
        out.write(np.full((48, 64, 3), 20 * i % 256, np.uint8))
    out.release()
    return path


@pytest.mark.parametrize("how", ["deleted", "truncated"])
def test_looping_video_file_that_goes_away_is_retried_like_a_folder(
    tmp_path: Path, how: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A looping file deleted or cut while the service ran raised the user's SourceError (exit 2,
    which systemd does not restart); now it is lost and reopened with backoff, as a folder is."""
    clip = small_video(tmp_path / "clip.mp4")
    saved = clip.read_bytes()
    errors: list[str] = []

    def on_event(kind: str) -> None:
        assert kind != "stall"
        if kind == "reconnect" and src.last_error:
            errors.append(src.last_error)
            if len(errors) == 4:  # reopens failed too: put the file back
                clip.write_bytes(saved)

    src = looping_source(f"file:{clip}", on_event, reconnect_max_s=0.05)
    src.open()
    caplog.set_level(logging.WARNING, logger="edgedetect.source")
    try:
        assert src.read() is not None
        if how == "deleted":
            clip.unlink()
        else:
            clip.write_bytes(saved[: len(saved) // 2])  # a copy still being written
        for _ in range(20):  # through the end, the lost file and back
            assert src.read() is not None
        assert len(errors) >= 4 and src.errors >= 1
        expected = "is gone" if how == "deleted" else "can no longer be decoded"
        assert expected in errors[0], errors
        assert caplog.text.count("reopen failed") == 1  # not one line per retry
    finally:
        src.close()


def test_skipped_image_log_says_why(photos: Path, caplog: pytest.LogCaptureFixture) -> None:
    (photos / "b.jpg").write_bytes(b"")
    src = open_source(f"dir:{photos}")
    (photos / "a.jpg").unlink()  # gone between listing and reading
    with caplog.at_level(logging.WARNING, logger="edgedetect"), pytest.raises(ImageError):
        src.read()
    assert "image not found: " + str(photos / "a.jpg") in caplog.text
    assert "is empty (0 bytes)" in caplog.text
    assert "not a decodable image" not in caplog.text


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        ("dir:{clip}", r"source 'dir:.*sample.mp4' is a file: use file:.*sample.mp4 or the path"),
        ("file:", r"empty path in source spec 'file:'"),
        ("dir:", r"empty path in source spec 'dir:'"),
        ("dir:  ", r"empty path in source spec 'dir:'"),
    ],
)
def test_file_and_dir_prefix_errors(spec: str, match: str) -> None:
    with pytest.raises(SourceError, match=match):
        open_source(spec.format(clip=SAMPLE))


@pytest.mark.parametrize("spec", ["/dev/zero", "file:/dev/null", "fifo"])
def test_a_device_or_pipe_is_named_as_such_not_as_a_missing_file(tmp_path: Path, spec: str) -> None:
    if spec == "fifo":
        spec = str(tmp_path / "frames")
        os.mkfifo(spec)  # opened for reading, it would wait for a writer forever
    with pytest.raises(SourceError) as info:
        open_source(spec)
    message = str(info.value)
    assert "not found" not in message
    assert re.search(r"is a (character device|FIFO), not a video file", message)
    assert "usb:N" in message and "\n" not in message


@pytest.mark.parametrize(
    "url", ["rtsp://", "rtsp:///stream", "http://", "tcp://:554", "rtsp://admin:pw@/live"]
)
def test_stream_url_without_host_is_a_spec_error(url: str) -> None:
    with pytest.raises(SourceError, match=r"no host in the URL \(write \w+://HOST") as info:
        open_source(url)
    assert not isinstance(info.value, SourceLost)  # not "retry later": it can never connect
    assert "pw" not in str(info.value)


def test_check_stream_url_accepts_hosts_and_local_listeners() -> None:
    for spec in ("rtsp://cam.local:554/s", "http://10.0.0.2/x.mjpg", "udp://@:1234", "clip.mp4"):
        check_stream_url(spec)
    with pytest.raises(SourceError, match="bad port"):
        check_stream_url("rtsp://cam.local:99999/s")


def _avi_from_sample(path: Path, frames: int) -> Path:
    """An MJPG AVI of the first ``frames`` frames of the real sample clip."""
    cap = cv2.VideoCapture(str(SAMPLE))
    ok, image = cap.read()
    assert ok, SAMPLE
    fps = cap.get(cv2.CAP_PROP_FPS)
    out = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), fps, image.shape[1::-1])
    for _ in range(frames):
        out.write(image)
        ok, image = cap.read()
        assert ok
    out.release()
    cap.release()
    return path


def test_truncated_video_warns_with_frame_counts(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    full = _avi_from_sample(tmp_path / "full.avi", 40)
    trunc = tmp_path / "trunc.avi"
    trunc.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    with caplog.at_level(logging.WARNING, logger="edgedetect"):
        with open_source(str(full)) as src:
            assert len(list(iter(src.read, None))) == 40
        assert caplog.text == ""
        with open_source(str(trunc)) as src:
            got = len(list(iter(src.read, None)))
    assert 0 < got < 36
    assert f"{trunc} ended after {got} of 40 frames (truncated or damaged file?)" in caplog.text


def _with_size(data: bytes, w: int, h: int) -> bytes:
    """``data`` (a real JPEG or PNG) with the width and height in its header replaced."""
    if data.startswith(b"\x89PNG"):
        return data[:16] + w.to_bytes(4, "big") + h.to_bytes(4, "big") + data[24:]
    sof = next(i for i in range(2, len(data) - 9) if data[i] == 0xFF and data[i + 1] == 0xC0)
    return data[: sof + 5] + h.to_bytes(2, "big") + w.to_bytes(2, "big") + data[sof + 9 :]


@pytest.mark.parametrize("ext", [".jpg", ".png"])
def test_huge_image_is_refused_before_decoding(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, ext: str
) -> None:
    ok, buf = cv2.imencode(ext, read_bgr(PHOTOS[0]))
    huge = tmp_path / f"huge{ext}"
    huge.write_bytes(_with_size(buf.tobytes(), 12000, 9000))

    def no_decode(*args, **kwargs):
        raise AssertionError("decoded a 108 MP image")

    monkeypatch.setattr(images_mod.cv2, "imdecode", no_decode)
    with pytest.raises(ImageError, match=r"huge.* is 12000x9000: larger than .* \(max 33 MP\)"):
        read_bgr(huge)


@pytest.mark.parametrize("ext", [".jpg", ".png", ".bmp", ".webp", ".tif", ".ppm", ".pgm"])
def test_image_size_from_the_header_matches_the_decoded_image(ext: str) -> None:
    image = read_bgr(PHOTOS[0])[:301, :457]
    ok, buf = cv2.imencode(ext, image[:, :, 0] if ext == ".pgm" else image)
    assert ok and image_size(buf.tobytes()) == (457, 301)
    assert read_bgr(PHOTOS[0]).size < 3 * MAX_IMAGE_PIXELS  # real photos are far below the limit
