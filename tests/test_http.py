"""HTTP endpoints against the real service on 127.0.0.1 (real detector, real photos)."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from test_service_support import RunningService, metric, poll, write_config


@pytest.fixture(scope="module")
def service_root(tmp_path_factory) -> Path:
    """The service's folder: config, events.jsonl, snapshots."""
    return tmp_path_factory.mktemp("http")


@pytest.fixture(scope="module")
def service(service_root):
    cfg = write_config(
        service_root,
        http={"token": "s3cret", "stream_fps": 10.0},
        motion={"enabled": True, "max_interval_s": 0.5, "hold_s": 0.0},
        tracker={"enter_frames": 1},
    )  # photos switch instantly: one motion frame each
    with RunningService(cfg) as rs:
        assert poll(lambda: rs.get("/healthz", token="s3cret")[0] == 200, 20.0), (
            "service never healthy"
        )
        yield rs


def test_token_required(service) -> None:
    assert service.get("/healthz")[0] == 401
    assert service.get("/metrics", token="wrong")[0] == 401
    status, _, _ = service.get("/healthz?token=s3cret")
    assert status == 200


def test_healthz_json(service) -> None:
    status, headers, body = service.get("/healthz", token="s3cret")
    info = json.loads(body)
    assert status == 200 and headers["Content-Type"] == "application/json"
    assert info["status"] == "ok" and info["model_loaded"] is True
    assert 0 <= info["last_frame_age_s"] < info["stall_timeout_s"]


def test_metrics_prometheus_text(service) -> None:
    # wait until the tracker has seen the astronaut enter
    text = poll(
        lambda: (
            (t := service.get("/metrics", token="s3cret")[2].decode())
            and metric(t, 'edgedetect_events_total{type="person_entered"}') >= 1
            and t
        ),
        20.0,
    )
    assert text, "no person_entered event counted"
    for name in (
        "edgedetect_frames_total",
        "edgedetect_inference_seconds_count",
        "edgedetect_uptime_seconds",
        "edgedetect_skipped_frames_total",
        "edgedetect_persons",
        "edgedetect_healthy",
        'edgedetect_stage_fps{stage="inference"}',
        'edgedetect_dropped_frames_total{stage="capture"}',
    ):
        metric(text, name)  # raises KeyError when missing
    assert metric(text, "edgedetect_inference_seconds_count") >= 1
    assert (
        metric(text, "edgedetect_healthy") == 1.0 and metric(text, "edgedetect_uptime_seconds") > 0
    )
    assert 'edgedetect_inference_seconds_bucket{le="0.1"}' in text
    # the folder repeats each photo 6 times: the motion gate skips the repeats (between the
    # forced runs every 0.5 s), and the skips are reported
    assert poll(
        lambda: (
            metric(
                service.get("/metrics", token="s3cret")[2].decode(),
                "edgedetect_skipped_frames_total",
            )
            >= 3
        ),
        15,
    )


def test_snapshot_jpg(service) -> None:
    status, headers, body = service.get("/snapshot.jpg", token="s3cret")
    assert status == 200 and headers["Content-Type"] == "image/jpeg"
    img = cv2.imdecode(np.frombuffer(body, np.uint8), cv2.IMREAD_COLOR)
    assert img is not None and img.shape[:2] in ((512, 512), (400, 600))  # astronaut / coffee


def test_stream_mjpg_parts(service) -> None:
    s = socket.create_connection(("127.0.0.1", service.svc.http.port), timeout=5)
    s.sendall(b"GET /stream.mjpg HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer s3cret\r\n\r\n")
    data = b""
    deadline = time.monotonic() + 10
    while data.count(b"--edgedetectframe") < 3 and time.monotonic() < deadline:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    s.close()
    head, _, rest = data.partition(b"\r\n\r\n")
    assert b"200 OK" in head and b"multipart/x-mixed-replace; boundary=edgedetectframe" in head
    parts = rest.split(b"--edgedetectframe\r\n")[1:]
    assert len(parts) >= 2
    hdr, _, jpeg = parts[0].partition(b"\r\n\r\n")
    length = int(hdr.split(b"Content-Length: ")[1].split(b"\r\n")[0])
    img = cv2.imdecode(np.frombuffer(jpeg[:length], np.uint8), cv2.IMREAD_COLOR)
    assert img is not None and img.ndim == 3


def test_events_and_snapshots_written(service, service_root: Path) -> None:
    root = service_root
    lines = poll(
        lambda: (
            (root / "events.jsonl").exists() and (root / "events.jsonl").read_text().splitlines()
        ),
        15,
    )
    events = [json.loads(line) for line in lines]
    entered = [e for e in events if e["type"] == "person_entered"]
    assert entered and entered[0]["score"] >= 0.5 and entered[0]["track_id"] >= 1
    snap = Path(entered[0]["snapshot"])
    assert snap.parent == root / "snaps" and cv2.imread(str(snap)) is not None


def test_unknown_path_and_method(service) -> None:
    assert service.get("/nope", token="s3cret")[0] == 404
