"""Event outputs: JSONL rotation, snapshots retention and disk-full handling, webhook, MQTT."""

from __future__ import annotations

import errno
import json
import os
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from conftest import skimage_bgr

from edgedetect.service.events import JsonlWriter, LogOutput, make_event, utc_stamp
from edgedetect.service.outputs import MqttOutput, WebhookOutput, discovery_messages
from edgedetect.service.snapshots import SnapshotStore
from edgedetect.service.tracker import TrackEvent

DAY0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z


def event(i: int = 1, kind: str = "person_entered"):
    te = TrackEvent(kind, i, (10.0, 20.0, 110.0, 220.0), 0.81, 1, 0, 2.5)
    return make_event(te, 1_700_000_000.25 + i, frame_id=100 + i)


def test_event_json_shape() -> None:
    d = json.loads(event().to_json())
    assert d["type"] == "person_entered" and d["track_id"] == 1 and d["count"] == 1
    assert d["time"] == "2023-11-14T22:13:21.250Z" and d["box"] == [10.0, 20.0, 110.0, 220.0]
    assert d["score"] == 0.81 and d["frame_id"] == 101
    assert "duration_s" not in d and "previous_count" not in d
    left = json.loads(event(2, "person_left").to_json())
    assert left["duration_s"] == 2.5
    count = json.loads(event(3, "count_changed").to_json())
    assert count["count"] == 1 and count["previous_count"] == 0 and "box" not in count
    assert utc_stamp(1_700_000_000.25) == "20231114T221320.250Z"


def test_jsonl_rotation_keeps_backups(tmp_path: Path) -> None:
    path = tmp_path / "ev" / "events.jsonl"
    w = JsonlWriter(path, max_bytes=1000, backups=2)
    for i in range(60):
        w.send(event(i))
    w.close()
    files = sorted(p.name for p in path.parent.iterdir())
    assert files == ["events.jsonl", "events.jsonl.1", "events.jsonl.2"]
    lines = [
        json.loads(line)
        for p in (path.with_name("events.jsonl.2"), path.with_name("events.jsonl.1"), path)
        for line in p.read_text().splitlines()
    ]
    ids = [d["track_id"] for d in lines]
    assert ids == sorted(ids) and ids[-1] == 59  # newest kept, in order, oldest dropped
    assert all(p.stat().st_size < 1000 + 300 for p in path.parent.iterdir())


@pytest.mark.parametrize("backups", [2, 0])
def test_jsonl_fewer_backups_after_a_reload_drops_the_extra_old_files(
    tmp_path: Path, backups: int
) -> None:
    # backups lowered from 5 (a reload or a restart): events.jsonl.3 .. .5 were kept for ever,
    # the folder never came back under what the config says.
    path = tmp_path / "events.jsonl"
    for i in range(1, 6):
        path.with_name(f"events.jsonl.{i}").write_text(f"old {i}\n")
    (tmp_path / "events.jsonl.notes").write_text("the user's file\n")
    w = JsonlWriter(path, max_bytes=1000, backups=backups)
    for i in range(20):
        w.send(event(i))
    w.close()
    kept = [f"events.jsonl.{i}" for i in range(1, backups + 1)]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["events.jsonl", "events.jsonl.notes", *kept]
    )


def test_jsonl_refuses_a_device() -> None:
    if not Path("/dev/full").exists():
        pytest.skip("/dev/full not available")
    w = JsonlWriter("/dev/full", max_bytes=10_000_000, backups=0)
    with pytest.raises(OSError, match="not a regular file \\(a character device\\)"):
        w.send(event())
    assert w.lost == 1  # (recovery once a file is there: tests/test_service_files.py, FIFO)


def test_log_output(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("INFO", logger="edgedetect.events"):
        LogOutput().send(event(7))
    assert "person_entered track=7 score=0.81" in caplog.text


def test_snapshots_retention_by_count_and_size(tmp_path: Path) -> None:
    img = skimage_bgr("astronaut")
    store = SnapshotStore(tmp_path / "snaps", max_bytes=10**9, max_files=3, quality=80)
    paths = [store.save(img, DAY0 + i * 86400, i) for i in range(5)]
    assert sorted(p.name for p in (tmp_path / "snaps").iterdir()) == [p.name for p in paths[2:]]
    size = paths[-1].stat().st_size
    store2 = SnapshotStore(tmp_path / "snaps", max_bytes=int(size * 2.5), max_files=100)
    store2.save(img, DAY0 + 8 * 86400, 9)  # indexes the 3 old files first
    names = sorted(p.name for p in (tmp_path / "snaps").iterdir())
    assert (
        len(names) == 2 and names[-1].endswith("person9.jpg") and store2.total_bytes <= size * 2.5
    )
    assert not list((tmp_path / "snaps").glob(".*tmp"))


def test_snapshots_full_disk_frees_oldest_then_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    img = skimage_bgr("astronaut")
    store = SnapshotStore(tmp_path, max_bytes=10**9, max_files=100)
    old = [store.save(img, DAY0 + i, i) for i in range(4)]
    real_write = SnapshotStore._write
    calls = {"n": 0}

    def full_once_test_double(path: Path, data: bytes) -> None:
        calls["n"] += 1
        if calls["n"] == 1:
            raise OSError(errno.ENOSPC, "No space left on device")
        real_write(path, data)

    monkeypatch.setattr(SnapshotStore, "_write", staticmethod(full_once_test_double))
    p = store.save(img, DAY0 + 10, 10)
    assert p.exists() and not old[0].exists() and old[3].exists()
    # a disk that stays full: the error propagates (the service logs and counts it)
    monkeypatch.setattr(
        SnapshotStore,
        "_write",
        staticmethod(
            lambda path, data: (_ for _ in ()).throw(
                OSError(errno.ENOSPC, "No space left on device")
            )
        ),
    )
    with pytest.raises(OSError):
        store.save(img, DAY0 + 11, 11)


class _Recorder(BaseHTTPRequestHandler):
    """A loopback webhook endpoint: fails the first `fail_first` POSTs with 503."""

    bodies: list[dict] = []
    fail_first = 0
    calls = 0

    def do_POST(self) -> None:  # noqa: N802
        cls = type(self)
        cls.calls += 1
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if cls.calls <= cls.fail_first:
            self.send_response(503)
        else:
            cls.bodies.append({"body": json.loads(body), "auth": self.headers.get("Authorization")})
            self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *a) -> None:
        pass


@pytest.fixture
def endpoint():
    handler = type("Rec", (_Recorder,), {"bodies": [], "fail_first": 2, "calls": 0})
    srv = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}/hook", handler
    srv.shutdown()
    srv.server_close()


def wait_for(cond, timeout: float = 5.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.02)
    return cond()


def test_webhook_retries_then_delivers(endpoint) -> None:
    url, handler = endpoint
    out = WebhookOutput(
        url,
        events=["person_entered"],
        retries=3,
        backoff_s=0.05,
        headers={"Authorization": "Bearer s3"},
    )
    out.send(event(1))
    out.send(event(2, "count_changed"))  # filtered out by `events`
    assert wait_for(lambda: len(handler.bodies) == 1)
    assert handler.calls == 3  # two 503s, then success
    assert handler.bodies[0]["body"]["track_id"] == 1 and handler.bodies[0]["auth"] == "Bearer s3"
    out.close(0.5)
    assert out.delivered == 1 and out.failed == 0


def _closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def test_dead_webhook_never_blocks_and_stays_bounded() -> None:
    errors: list[str] = []
    drops: list[str] = []
    out = WebhookOutput(
        f"http://127.0.0.1:{_closed_port()}/x",
        retries=2,
        queue_size=5,
        backoff_s=0.2,
        on_error=errors.append,
        on_drop=drops.append,
    )
    t0 = time.perf_counter()
    for i in range(200):
        out.send(event(i))
    assert time.perf_counter() - t0 < 0.5, "send() must not wait for the network"
    assert out.pending <= 5 and out.dropped >= 190 and len(drops) == out.dropped
    assert wait_for(lambda: out.failed >= 1, 5.0) and errors[0] == "webhook"
    t0 = time.perf_counter()
    out.close(0.3)
    assert time.perf_counter() - t0 < 1.5


def test_mqtt_dead_broker_never_blocks() -> None:
    out = MqttOutput("127.0.0.1", _closed_port(), topic_prefix="edtest", queue_size=10)
    t0 = time.perf_counter()
    for i in range(100):
        out.send(event(i))
    assert time.perf_counter() - t0 < 0.5
    assert not out.connected.is_set() and out.pending <= 10
    t0 = time.perf_counter()
    out.close(0.3)
    assert time.perf_counter() - t0 < 2.0


def test_home_assistant_discovery_payloads() -> None:
    msgs = dict(discovery_messages("edgedetect/door", "homeassistant", "Front door"))
    count = json.loads(msgs["homeassistant/sensor/Front_door/person_count/config"])
    occ = json.loads(msgs["homeassistant/binary_sensor/Front_door/occupancy/config"])
    assert count["state_topic"] == "edgedetect/door/count" and count["state_class"] == "measurement"
    assert occ["device_class"] == "occupancy" and occ["payload_on"] == "ON"
    camera = json.loads(msgs["homeassistant/binary_sensor/Front_door/camera/config"])
    assert camera["device_class"] == "connectivity" and camera["payload_off"] == "OFF"
    assert camera["state_topic"] == "edgedetect/door/camera"
    for cfg in (count, occ, camera):
        assert cfg["availability_topic"] == "edgedetect/door/availability"
        assert cfg["unique_id"].startswith("Front_door_") and cfg["device"]["name"] == "Front door"
    assert len({cfg["unique_id"] for cfg in (count, occ, camera)}) == 3
    assert np.unique([c["device"]["identifiers"][0] for c in (count, occ, camera)]).size == 1


@pytest.mark.parametrize("how", ["folder in the way", "rename refused"])
def test_jsonl_rotation_that_fails_keeps_writing_logs_once_and_retries_later(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    how: str,
) -> None:
    # The events folder turned read-only (or a rename is refused otherwise): every later event
    # was lost (rotation raised before the write) although the file itself was writable.
    path = tmp_path / "events.jsonl"
    backup = path.with_name("events.jsonl.1")
    real_replace = os.replace
    if how == "folder in the way":  # a real failure: a file cannot replace a non-empty folder
        backup.mkdir()
        (backup / "x").write_text("x")
    else:  # root ignores permission bits, so refuse the rename as a read-only folder would

        def refuse(src: object, dst: object) -> None:
            raise PermissionError(errno.EACCES, "Permission denied", str(src))

        monkeypatch.setattr(os, "replace", refuse)
    now = [0.0]
    errors: list[str] = []
    w = JsonlWriter(path, max_bytes=1000, backups=1, on_error=errors.append, clock=lambda: now[0])
    with caplog.at_level("INFO", logger="edgedetect.events"):
        for i in range(30):  # ~4x max_bytes
            w.send(event(i))
        assert w.lost == 0 and len(path.read_text().splitlines()) == 30
        assert errors == ["jsonl_rotate"]  # one attempt until the retry interval has passed
        now[0] = JsonlWriter.ROTATE_RETRY_S + 1
        w.send(event(30))
        assert errors == ["jsonl_rotate"] * 2 and w.rotate_failures == 2
        failed = [r.getMessage() for r in caplog.records if "cannot rotate" in r.getMessage()]
        assert len(failed) == 1, failed  # logged once, not per event nor per attempt
        assert str(tmp_path) in failed[0] and "writable" in failed[0]
        # the cause goes away: the next attempt after the interval rotates
        if how == "folder in the way":
            (backup / "x").unlink()
            backup.rmdir()
        else:
            monkeypatch.setattr(os, "replace", real_replace)
        w.send(event(31))  # still within the interval: no attempt
        assert errors == ["jsonl_rotate"] * 2
        now[0] = 2 * JsonlWriter.ROTATE_RETRY_S + 2
        w.send(event(32))
    w.close()
    assert errors == ["jsonl_rotate"] * 2 and "rotates again" in caplog.text
    old = [json.loads(line)["track_id"] for line in backup.read_text().splitlines()]
    new = [json.loads(line)["track_id"] for line in path.read_text().splitlines()]
    assert old == list(range(32)) and new == [32]  # nothing lost, in order


def test_a_failed_rotation_is_counted_in_the_service_metrics(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from edgedetect.service.config import load_config
    from edgedetect.service.metrics import ServiceMetrics
    from edgedetect.service.outputset import Outputs

    config = tmp_path / "config.toml"
    config.write_text(
        f'[events]\njsonl = "{tmp_path / "events.jsonl"}"\nmax_mb = 0.01\nlog = false\n'
        "[snapshots]\nenabled = false\n"
    )
    metrics = ServiceMetrics()
    outputs = Outputs.from_config(load_config(config, check_files=False), metrics)

    def refuse(src: object, dst: object) -> None:
        raise PermissionError(errno.EACCES, "Permission denied", str(src))

    monkeypatch.setattr(os, "replace", refuse)
    for i in range(200):  # about 30 kB, 3x max_mb
        outputs.dispatch(event(i))
    outputs.close()
    text = metrics.render().decode()
    assert 'edgedetect_errors_total{component="jsonl_rotate"} 1.0' in text
    assert 'edgedetect_errors_total{component="jsonl"} 0.0' in text
    assert len((tmp_path / "events.jsonl").read_text().splitlines()) == 200
