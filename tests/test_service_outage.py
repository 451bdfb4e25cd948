"""A camera or stream that goes away in the middle of a person's visit.

The person stayed counted for the whole outage (/healthz `persons`, the events' `count`, MQTT
occupancy "on" while nothing could be seen), `person_left` came only once the stream was back,
and the open clip was padded with the frozen last frame through the gap. Now the visit ends while
the source is down: `person_left` and `count_changed` to 0, the clip finished with what it held.

The real service (shared COCO model, real pipeline, tracker, outputs, clips and HTTP); only the
stream is a test double, of real photos, that the test unplugs and plugs back.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from pathlib import Path
from typing import Any

import cv2
from conftest import skimage_bgr
from test_service_support import RunningService, poll, write_config

from edgedetect.errors import SourceLost
from edgedetect.sources import FrameSource

SPEC = "http://cam.local/stream.mjpg"


class Stream:
    """The opener of an MJPEG stream the test controls: `down()` ends the open stream and refuses
    new opens until `up()`; `freeze()` blocks reads with the connection kept (no error)."""

    def __init__(self) -> None:
        self.image = skimage_bgr("astronaut")
        self.available = threading.Event()
        self.available.set()
        self.frozen = threading.Event()
        self.thawed = threading.Event()
        self.opens = 0

    def __call__(self, spec: str) -> StreamFeed:
        self.opens += 1
        if not self.available.is_set():
            raise SourceLost(f"cannot open {spec}: connection refused")
        return StreamFeed(self)

    def down(self) -> None:
        self.available.clear()

    def up(self) -> None:
        self.available.set()

    def freeze(self) -> None:
        self.frozen.set()

    def thaw(self) -> None:
        self.thawed.set()


class StreamFeed(FrameSource):
    live = True

    def __init__(self, stream: Stream) -> None:
        super().__init__(SPEC)
        self.stream = stream

    def _grab(self) -> Any:
        time.sleep(1 / 30)
        s = self.stream
        if s.frozen.is_set():
            s.thawed.wait(60)  # a read that never returns while the stream hangs
        if not s.available.is_set():
            raise SourceLost("stream ended")
        return s.image, None, ""


def events(root: Path) -> list[dict[str, Any]]:
    path = root / "events.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def of_type(root: Path, kind: str, **match: Any) -> list[dict[str, Any]]:
    return [
        e
        for e in events(root)
        if e["type"] == kind and all(e.get(k) == v for k, v in match.items())
    ]


def healthz(rs: RunningService) -> tuple[int, dict[str, Any]]:
    code, _, body = rs.get("/healthz")
    return code, json.loads(body)


def visit_begins(root: Path) -> int:
    """The first person's track id, once the service has seen them enter."""
    entered = poll(lambda: of_type(root, "person_entered"), 30)
    assert entered, "the person in the stream was never seen"
    return int(entered[0]["track_id"])


def test_person_leaves_and_count_drops_to_0_while_the_stream_is_down(tmp_path: Path) -> None:
    stream = Stream()
    cfg = write_config(
        tmp_path,
        source={"spec": SPEC, "reconnect_max_s": 1.0},
        service={"stall_timeout_s": 5.0},
    )
    with RunningService(cfg, opener=stream) as rs:
        first = visit_begins(tmp_path)
        stream.down()
        left = poll(lambda: of_type(tmp_path, "person_left", track_id=first), 20)
        # the stream is still down here: the test brings it back only below
        assert left, "person_left never came while the stream was down"
        assert left[0]["count"] == 0
        zero = of_type(tmp_path, "count_changed", count=0)
        assert zero and zero[-1]["previous_count"] == 1, events(tmp_path)
        code, info = healthz(rs)
        assert code == 503 and info["source_connected"] is False
        assert info["persons"] == 0
        assert "edgedetect_persons 0.0" in rs.metrics()

        stream.up()  # the person is seen again: a new visit, a new track
        again = poll(
            lambda: [e for e in of_type(tmp_path, "person_entered") if e["track_id"] > first], 30
        )
        assert again, "the person was not seen again once the stream came back"
        assert len(of_type(tmp_path, "person_left", track_id=first)) == 1


def test_a_stream_that_hangs_ends_the_visit_after_the_leave_window(tmp_path: Path) -> None:
    """No error, no frame: the reads hang (the source still counts as connected until
    stall_timeout_s, here a minute); the visit ends once no frame came for the leave window."""
    stream = Stream()
    cfg = write_config(
        tmp_path,
        source={"spec": SPEC, "reconnect_max_s": 1.0},
        service={"stall_timeout_s": 60.0},
    )
    try:
        with RunningService(cfg, opener=stream) as rs:
            first = visit_begins(tmp_path)
            stream.freeze()
            left = poll(lambda: of_type(tmp_path, "person_left", track_id=first), 20)
            assert left, "person_left never came while the stream hung"
            assert rs.svc.source is not None and rs.svc.source.connected, "not the time rule"
            assert rs.svc.tracker.count == 0
    finally:
        stream.thaw()


def clip_seconds(path: Path) -> float:
    cap = cv2.VideoCapture(str(path))
    try:
        assert cap.isOpened(), path
        frames = cap.get(cv2.CAP_PROP_FRAME_COUNT)
        fps = cap.get(cv2.CAP_PROP_FPS)
    finally:
        cap.release()
    assert frames >= 1 and fps > 0, path
    return float(frames / fps)


def test_the_clip_open_at_the_outage_ends_at_the_last_real_frame(tmp_path: Path) -> None:
    outage_s = 8.0
    stream = Stream()
    clips = tmp_path / "clips"
    cfg = write_config(
        tmp_path,
        source={"spec": SPEC, "reconnect_max_s": 1.0},
        service={"stall_timeout_s": 5.0},
        clips={
            "enabled": True,
            "dir": str(clips),
            "pre_s": 0.5,
            "post_s": 0.5,
            "fps": 5.0,
            "width": 320,
            "annotated": False,
        },
    )
    with RunningService(cfg, opener=stream) as rs:
        first = visit_begins(tmp_path)
        recorder = rs.svc.sink.recorder
        assert recorder is not None and recorder.clip, "no clip open for the visit"
        time.sleep(1.0)  # a second of the visit in the clip
        stream.down()
        down_at = time.monotonic()
        saved = poll(lambda: sorted(clips.glob("*_clip.mp4")), 20)
        assert saved, "the clip open at the outage was not finished while the stream was down"
        left = of_type(tmp_path, "person_left", track_id=first)
        assert left and left[0]["clip"] == saved[0].name
        time.sleep(max(0.0, outage_s - (time.monotonic() - down_at)))
        stream.up()
        assert poll(
            lambda: [e for e in of_type(tmp_path, "person_entered") if e["track_id"] > first], 30
        ), "the person was not seen again once the stream came back"
    outage_clip = saved[0]
    seconds = clip_seconds(outage_clip)
    # pre-roll 0.5 s + about 1 s of the visit; through the 8 s outage it was over 9 s
    assert seconds < outage_s / 2, f"{outage_clip.name}: {seconds:.1f} s"
    files = sorted(clips.glob("*_clip.mp4"))
    assert len(files) == 2 and files[0] == outage_clip, files  # the return is a new episode


class StreamViewer:
    """A /stream.mjpg client on a thread: `parts` holds every JPEG it was sent, in order."""

    def __init__(self, rs: RunningService) -> None:
        assert rs.svc.http is not None
        self.sock = socket.create_connection(("127.0.0.1", rs.svc.http.port), timeout=30)
        self.sock.sendall(b"GET /stream.mjpg HTTP/1.1\r\nHost: x\r\n\r\n")
        self.parts: list[bytes] = []
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        data = b""
        try:
            while chunk := self.sock.recv(65536):
                data += chunk
                while True:  # each part: boundary, headers with Content-Length, the JPEG
                    start = data.find(b"--edgedetectframe\r\n")
                    head_end = data.find(b"\r\n\r\n", start)
                    if start < 0 or head_end < 0:
                        break
                    head = data[start:head_end]
                    length = int(head.split(b"Content-Length: ")[1].split(b"\r\n")[0])
                    if len(data) < head_end + 4 + length:
                        break
                    self.parts.append(data[head_end + 4 : head_end + 4 + length])
                    data = data[head_end + 4 + length :]
        except OSError:
            pass

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
        self._thread.join(5)


def test_the_live_view_shows_no_person_once_the_visit_ended_by_the_outage(
    tmp_path: Path,
) -> None:
    """The JPEG was cached per frame: after the outage ended the visit, /snapshot.jpg (200) and
    /stream.mjpg still showed the person boxed while the count was 0 and the stream gone. Now
    /snapshot.jpg is 503 "source lost" (as before the first frame: no current picture) and the
    stream's last part is the last picture without the boxes."""
    stream = Stream()
    bare = cv2.imencode(".jpg", stream.image, [cv2.IMWRITE_JPEG_QUALITY, 75])[1].tobytes()
    cfg = write_config(
        tmp_path,
        source={"spec": SPEC, "reconnect_max_s": 1.0},
        service={"stall_timeout_s": 5.0},
        http={"listen": "127.0.0.1:0", "jpeg_quality": 75},
    )
    with RunningService(cfg, opener=stream) as rs:
        first = visit_begins(tmp_path)
        viewer = StreamViewer(rs)
        try:
            boxed = poll(lambda: [p for p in viewer.parts if p != bare], 20)
            assert boxed, "the stream never showed the person boxed"
            code, _, body = rs.get("/snapshot.jpg")
            assert code == 200 and body != bare  # boxed while the person is in view
            stream.down()
            assert poll(lambda: of_type(tmp_path, "person_left", track_id=first), 20)
            # the stream is still down here
            assert poll(lambda: viewer.parts[-1] == bare, 20), "the stream still shows the boxes"
            code, _, body = rs.get("/snapshot.jpg")
            assert code == 503 and body == b"source lost; no current frame\n", (code, body[:40])
            assert healthz(rs)[1]["persons"] == 0
            stream.up()
            assert poll(lambda: rs.get("/snapshot.jpg")[0] == 200, 30), "no snapshot once back"
        finally:
            viewer.close()
