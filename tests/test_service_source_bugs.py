"""Sources the service mishandled: tiny images, unreadable files, URLs with no host, a stale
/healthz error, a slow stop in a reconnect backoff, and a video too large for its encoder.

Service tests run the real service (shared COCO model, real pipeline and HTTP); only a camera is a
test double (real photos behind it). Files are real images written with OpenCV.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import REPO, skimage_bgr
from test_service_support import RunningService, poll, write_config
from test_source_bugs import small_video

from edgedetect.detections import Detections
from edgedetect.errors import EdgeDetectError, SourceError, SourceLost
from edgedetect.frame import Frame, Result
from edgedetect.resilient import ResilientSource
from edgedetect.service.cli import CHECK_IMAGES_MAX, check_config
from edgedetect.service.daemon import make_service
from edgedetect.sources import FrameSource
from edgedetect.writers import VideoWriterSink


def tiny_folder(root: Path, ones: int, photo: bool) -> Path:
    """`ones` 1x1 PNGs, then a 5x5 JPEG, then (if `photo`) a real photo named z.jpg last."""
    d = root / "tiny"
    d.mkdir()
    for i in range(ones):
        cv2.imwrite(str(d / f"a{i:02d}.png"), np.full((1, 1, 3), i, np.uint8))
    cv2.imwrite(str(d / "b.jpg"), np.full((5, 5, 3), 50, np.uint8))
    if photo:
        cv2.imwrite(str(d / "z.jpg"), skimage_bgr("astronaut"))
    return d


def float_tiff(path: Path) -> Path:
    """A 32-bit float TIFF: a real image file OpenCV cannot turn into BGR."""
    assert cv2.imwrite(str(path), np.random.default_rng(0).random((20, 20, 3), np.float32))
    return path


def unreadable_folder(root: Path, n: int = 3) -> Path:
    """`n` image files none of which decodes: empty, truncated JPEG, float TIFF, ..."""
    d = root / "bad"
    d.mkdir()
    jpeg = cv2.imencode(".jpg", skimage_bgr("astronaut"))[1].tobytes()
    for i in range(n):
        kind = i % 3
        if kind == 0:
            (d / f"f{i:02d}.jpg").write_bytes(b"")
        elif kind == 1:
            (d / f"f{i:02d}.jpg").write_bytes(jpeg[:400])
        else:
            float_tiff(d / f"f{i:02d}.tiff")
    return d


def edgedetect_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """The real command line in a child process, as a user or systemd runs it."""
    return subprocess.run(
        [sys.executable, "-m", "edgedetect", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


def finished(rs: RunningService) -> bool:
    return rs.exit_code is not None


# ---------------------------------------------------------------- 1: tiny images, garbage rule
@pytest.mark.parametrize(("ones", "photo"), [(5, False), (35, True)])
def test_service_processes_tiny_images_and_ends(tmp_path: Path, ones: int, photo: bool) -> None:
    """Every decodable image is a frame, as in `edgedetect run`: 1x1 PNGs were dropped (exit 0,
    nothing processed), and 30 of them in a row restarted the folder forever."""
    folder = tiny_folder(tmp_path, ones, photo)
    cfg = write_config(tmp_path, source={"spec": f"dir:{folder}", "loop": False})
    with RunningService(cfg) as rs:
        assert poll(lambda: finished(rs), 60), "the service never reached the end of the folder"
    assert rs.exit_code == 0
    assert rs.svc.pipeline is not None
    stats = rs.svc.pipeline.stats()
    assert stats["output"] == ones + 1 + photo
    assert rs.svc.source is not None and rs.svc.source.reconnects == 0


class FiniteGarbage(FrameSource):
    """A file-like (not live) source: `bad` frames that are no BGR image, then one good frame."""

    def __init__(self, bad: int) -> None:
        super().__init__("finite")
        self.bad = bad

    def _grab(self):
        if self.next_id < self.bad:
            return np.zeros((4, 4), np.uint8), None, f"bad{self.next_id}"
        if self.next_id == self.bad:
            return skimage_bgr("astronaut"), None, "good"
        return None


def test_finite_source_is_not_reopened_by_the_garbage_rule(
    caplog: pytest.LogCaptureFixture,
) -> None:
    opens: list[FiniteGarbage] = []

    def opener(spec: str) -> FiniteGarbage:
        if opens:  # a reopen would start the file over; end the test's read instead
            src.close()
        opens.append(FiniteGarbage(35))
        return opens[-1]

    src = ResilientSource("finite", opener, reconnect_min_s=0.01).open()
    with caplog.at_level(logging.WARNING, logger="edgedetect.source"):
        frame = src.read()
        assert frame is not None and frame.source == "good" and frame.id == 35
        assert src.read() is None
    src.close()
    assert len(opens) == 1 and src.garbage == 35
    assert "skipping frame 0 (bad0)" in caplog.text and "reopening" not in caplog.text


# ---------------------------------------------------------------- 2: unreadable file sources
def test_unreadable_single_image_ends_the_service_with_exit_2(tmp_path: Path) -> None:
    tiff = float_tiff(tmp_path / "float.tiff")
    cfg = write_config(tmp_path, source={"spec": str(tiff), "loop": False})
    with RunningService(cfg) as rs:
        assert poll(lambda: finished(rs), 30), "the service kept retrying an unreadable file"
    assert rs.exit_code == 2
    assert str(cfg) in rs.svc.fatal and "cannot read image" in rs.svc.fatal
    assert str(tiff) in rs.svc.fatal and "\n" not in rs.svc.fatal


def test_folder_without_a_readable_image_exits_2_with_one_line(tmp_path: Path) -> None:
    folder = unreadable_folder(tmp_path)
    cfg = write_config(tmp_path, source={"spec": f"dir:{folder}", "loop": False})
    res = edgedetect_cli("run", "--config", str(cfg), cwd=REPO)
    assert res.returncode == 2, res.stderr[-2000:]
    assert "Traceback" not in res.stderr
    last = res.stderr.strip().splitlines()[-1]
    assert last.startswith(f"edgedetect: error: {cfg}: [source] spec: no readable image in")


def test_check_config_decodes_a_single_image_source(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = write_config(tmp_path, source={"spec": str(float_tiff(tmp_path / "float.tiff"))})
    assert check_config(str(cfg)) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"edgedetect: error: {cfg}: [source] spec: cannot read image")


def test_check_config_refuses_a_folder_with_no_decodable_image(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = write_config(tmp_path, source={"spec": f"dir:{unreadable_folder(tmp_path)}"})
    assert check_config(str(cfg)) == 2
    assert "no readable image in" in capsys.readouterr().err


@pytest.mark.parametrize("inside", ["", "snaps", "a/b"])
@pytest.mark.parametrize("prefix", ["dir:", ""])
def test_snapshots_inside_the_source_folder_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], inside: str, prefix: str
) -> None:
    """A looping folder is listed again at each pass: snapshots saved in it would be read back
    as camera frames, and each would make more."""
    photos = tmp_path / "imgs"  # write_config's looping photo folder, made by it
    source = {"spec": f"{prefix}{photos}", "loop": True}
    cfg = write_config(tmp_path, source=source, snapshots={"dir": str(photos / inside)})
    assert check_config(str(cfg)) == 2
    err = capsys.readouterr().err
    assert f"[snapshots] dir = '{photos / inside}'" in err and "in the source folder" in err
    beside = write_config(tmp_path, source=source, snapshots={"dir": str(tmp_path / "snaps")})
    assert check_config(str(beside)) == 0


def test_check_config_caps_its_search_for_a_readable_image(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Past CHECK_IMAGES_MAX unreadable images it stops looking and warns (the service skips
    them); it does not decode a whole folder."""
    folder = unreadable_folder(tmp_path, CHECK_IMAGES_MAX + 5)
    cv2.imwrite(str(folder / "z.jpg"), skimage_bgr("astronaut"))
    cfg = write_config(tmp_path, source={"spec": f"dir:{folder}"})
    assert check_config(str(cfg)) == 0
    err = capsys.readouterr().err
    assert f"the first {CHECK_IMAGES_MAX} of {CHECK_IMAGES_MAX + 6} images" in err


# ---------------------------------------------------------------- 3: stream URL with no host
@pytest.mark.parametrize("spec", ["rtsp://", "rtsp:///stream", "http://"])
def test_stream_url_without_a_host_is_refused(
    tmp_path: Path, spec: str, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = write_config(tmp_path, source={"spec": spec})
    assert check_config(str(cfg)) == 2
    assert "no host" in capsys.readouterr().err
    svc = make_service(str(cfg), install_signals=False)
    try:
        with pytest.raises(SourceError, match=f"{cfg}: \\[source\\] spec: .*no host"):
            svc.start()
    finally:
        svc.shutdown()


# ---------------------------------------------------------------- 4 and 5: live camera doubles
class Camera(FrameSource):
    """A live camera of real photos: `lose` after `good` frames when told, else endless."""

    live = True

    def __init__(self, good: int | None) -> None:
        super().__init__("camera")
        self.good, self.image = good, skimage_bgr("astronaut")

    def _grab(self):
        time.sleep(1 / 30)
        if self.good is not None and self.next_id >= self.good:
            raise SourceLost("camera unplugged")
        return self.image, None, ""


class Openings:
    """The k-th open: 'ok', 'lose' (after 10 frames) or 'refuse' (the last one repeats)."""

    def __init__(self, plan: list[str]) -> None:
        self.plan, self.count = plan, 0

    def __call__(self, spec: str) -> Camera:
        mode = self.plan[min(self.count, len(self.plan) - 1)]
        self.count += 1
        if mode == "refuse":
            raise SourceLost("cannot open stream: no such device")
        return Camera(10 if mode == "lose" else None)


def test_healthz_source_error_clears_once_frames_flow_again(tmp_path: Path) -> None:
    opener = Openings(["lose", "refuse", "ok"])
    cfg = write_config(tmp_path, source={"spec": "usb:9", "reconnect_max_s": 1.0})
    with RunningService(cfg, opener=opener) as rs:

        def recovered() -> dict | None:
            code, _, body = rs.get("/healthz")
            info = json.loads(body)
            src = rs.svc.source
            flowing = opener.count >= 3 and src is not None and src.next_id >= 15  # 10 before
            return info if flowing and code == 200 else None

        info = poll(recovered, 30)
        assert info, "the camera never came back"
        assert info["source_connected"] is True and info["source_error"] is None


def test_a_looping_video_file_deleted_while_running_is_retried_not_fatal(tmp_path: Path) -> None:
    """The service exited 2 (systemd does not restart that) when its looping file was deleted;
    now /healthz shows the source down while it is gone, and frames flow once it is back."""
    clip = small_video(tmp_path / "clip.mp4", 10)
    saved = clip.read_bytes()
    source = {"spec": f"file:{clip}", "loop": True, "reconnect_max_s": 0.5}
    with RunningService(write_config(tmp_path, source=source)) as rs:

        def health() -> tuple[int, dict]:
            code, _, body = rs.get("/healthz")
            return code, json.loads(body)

        assert poll(lambda: health()[0] == 200, 30), "never healthy"
        clip.unlink()
        down = poll(lambda: (got := health())[0] == 503 and got, 30)
        assert down, "/healthz never showed the file gone"
        assert down[1]["source_connected"] is False and "clip.mp4" in down[1]["source_error"]
        assert rs.exit_code is None, "the service stopped"
        clip.write_bytes(saved)
        back = poll(lambda: (got := health())[0] == 200 and got, 30)
        assert back and back[1]["source_connected"] is True and back[1]["source_error"] is None


def test_stop_during_a_reconnect_backoff_is_not_a_blocked_thread(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    opener = Openings(["refuse"])
    cfg = write_config(tmp_path, source={"spec": "usb:9", "reconnect_max_s": 30.0})
    with caplog.at_level(logging.INFO):
        with RunningService(cfg, opener=opener):
            assert poll(lambda: opener.count >= 3, 30), "the capture thread never retried"
    # said once at start; the identical failures of the retries are at debug level only
    assert caplog.text.count("no such device") == 1
    assert "did not stop" not in caplog.text


def test_reload_to_another_source_during_a_backoff_is_not_a_blocked_thread(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A reload that replaces a camera the service keeps retrying: the old capture thread is
    told to stop first, so the reload does not wait out its backoff ("did not stop")."""
    from test_service_support import metric, service_config, to_toml

    from edgedetect.sources import open_source

    refused = Openings(["refuse"])

    def opener(spec: str) -> FrameSource:
        return refused(spec) if spec == "usb:9" else open_source(spec, loop=True)

    cfg = write_config(tmp_path, source={"spec": "usb:9", "reconnect_max_s": 30.0})
    with caplog.at_level(logging.INFO):
        with RunningService(cfg, opener=opener) as rs:
            assert poll(lambda: refused.count >= 3, 30), "the capture thread never retried"
            cfg.write_text(to_toml(service_config(tmp_path)))  # its looping photo folder
            rs.svc.request_reload()
            assert poll(lambda: metric(rs.metrics(), "edgedetect_reloads_total") == 1, 30)
            assert poll(lambda: rs.get("/healthz")[0] == 200, 30)
    assert "restarting the pipeline" in caplog.text
    assert "did not stop" not in caplog.text


def test_close_while_reopening_releases_the_new_camera() -> None:
    """close() (a stop, a reload) while the capture thread reopens: the camera opened meanwhile is
    closed, not left open and busy for the next source."""
    opened: list[Camera] = []

    def opener(spec: str) -> Camera:
        if opened:
            src.close()  # lands while this reopen is under way
        opened.append(Camera(2 if not opened else None))  # the second one would read forever
        return opened[-1]

    src = ResilientSource("usb:9", opener, reconnect_min_s=0.01).open()
    assert src.read() is not None and src.read() is not None
    assert src.read() is None  # lost after 2 frames, reopened while closing
    assert len(opened) == 2 and opened[1]._closed


def test_close_between_a_reopen_and_its_read_returns_none() -> None:
    """close() from another thread right after a reopen: read() ends with None, no
    AssertionError in the capture thread."""

    class CloseAfterReopen(ResilientSource):
        def _connect(self) -> bool:
            ok = super()._connect()
            self.close()
            return ok

    src = CloseAfterReopen("usb:9", lambda spec: Camera(2), reconnect_min_s=0.01).open()
    assert src.read() is not None and src.read() is not None
    assert src.read() is None


# ---------------------------------------------------------------- 6: frame too large to encode
def _result(w: int, h: int) -> Result:
    image = np.full((h, w, 3), 90, np.uint8)
    frame = Frame(0, time.monotonic(), time.time(), image, None, "t")
    return Result(frame, Detections.empty({0: "person"}), 1.0)


@pytest.mark.parametrize(("w", "h"), [(8200, 16), (16, 9000), (1, 1)])
def test_video_sink_names_a_frame_size_the_codec_refuses(tmp_path: Path, w: int, h: int) -> None:
    sink = VideoWriterSink(tmp_path / "x.mp4", fps=10)
    with pytest.raises(EdgeDetectError) as err:
        sink(_result(w, h))
    msg = str(err.value)
    assert f"refuses {w}x{h} frames" in msg and "2 to 8191 px per side" in msg
    assert "resize the input" in msg and ".avi" in msg and "\n" not in msg


def test_video_sink_takes_the_largest_mp4v_frame(tmp_path: Path) -> None:
    sink = VideoWriterSink(tmp_path / "x.mp4", fps=10)
    sink(_result(8191, 16))
    sink.close()
    assert sink.frames == 1


def test_run_output_of_a_too_wide_image_says_the_size(tmp_path: Path) -> None:
    cv2.imwrite(str(tmp_path / "wide.jpg"), np.full((600, 9000, 3), 90, np.uint8))
    res = edgedetect_cli(
        "run", "--no-preview", "--source", "wide.jpg", "--output", "x.mp4", cwd=tmp_path
    )
    assert res.returncode == 1, res.stderr[-2000:]
    assert "Traceback" not in res.stderr
    assert "refuses 9000x600 frames (it takes 2 to 8191 px per side)" in res.stderr
