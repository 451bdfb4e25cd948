"""The service as a real subprocess: SIGTERM, SIGHUP reload, start-up errors, check-config, MQTT."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from conftest import mosquitto_exe
from test_service_support import http_get, metric, poll, service_config, to_toml, write_config

REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def start(config: Path, *extra: str, env: dict | None = None) -> subprocess.Popen:
    e = dict(os.environ, PYTHONPATH=str(REPO), **(env or {}))
    return subprocess.Popen(
        [sys.executable, "-m", "edgedetect.service", "run", "--config", str(config), *extra],
        cwd=REPO,
        env=e,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def stop(proc: subprocess.Popen) -> tuple[int, str]:
    if proc.poll() is None:
        proc.kill()
    _, err = proc.communicate(timeout=10)
    return proc.returncode, err


def healthy(url: str) -> bool:
    try:
        return http_get(url + "/healthz", timeout=1)[0] == 200
    except OSError:
        return False


@pytest.fixture
def served(tmp_path: Path):
    port = free_port()
    cfg = write_config(tmp_path, http={"listen": f"127.0.0.1:{port}"})
    proc = start(cfg)
    url = f"http://127.0.0.1:{port}"
    try:
        if not poll(lambda: healthy(url) or proc.poll() is not None, 30) or proc.poll() is not None:
            pytest.fail(f"service did not become healthy: {stop(proc)[1][-2000:]}")
        yield proc, url, cfg, tmp_path
    finally:
        stop(proc)


def test_sigterm_stops_within_3s_and_flushes(served) -> None:
    proc, url, _, root = served
    assert poll(
        lambda: (
            metric(
                http_get(url + "/metrics")[2].decode(),
                'edgedetect_events_total{type="person_entered"}',
            )
            >= 1
        ),
        20,
    )
    t0 = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    code = proc.wait(timeout=10)
    elapsed = time.monotonic() - t0
    _, err = stop(proc)
    assert code == 0, err[-2000:]
    assert elapsed < 3.0, f"took {elapsed:.2f} s to stop"
    events = [json.loads(line) for line in (root / "events.jsonl").read_text().splitlines()]
    assert events[-1]["type"] == "count_changed" and events[-1]["count"] == 0  # open tracks closed
    assert "stopped in" in err


def test_sighup_reloads_threshold_without_reopening(served) -> None:
    proc, url, cfg, root = served
    text = http_get(url + "/metrics")[2].decode()
    assert metric(text, "edgedetect_source_reconnects_total") == 0
    raw = service_config(
        root, http={"listen": url.replace("http://", "")}, model={"threshold": 0.99}
    )
    raw["source"]["spec"] = cfg.read_text().split('spec = "')[1].split('"')[0]  # same source
    cfg.write_text(to_toml(raw))
    frames_before = metric(text, "edgedetect_frames_total")
    assert metric(text, "edgedetect_reloads_total") == 0
    proc.send_signal(signal.SIGHUP)
    # Wait for the reload itself: the looping folder's coffee frames also bring persons to 0.
    assert poll(
        lambda: metric(http_get(url + "/metrics")[2].decode(), "edgedetect_reloads_total") == 1, 15
    )
    # at 0.99 the astronaut (0.64) is no longer detected: persons drop to 0 after leave_frames
    assert poll(
        lambda: (
            metric(http_get(url + "/metrics")[2].decode(), "edgedetect_persons") == 0
            and metric(http_get(url + "/metrics")[2].decode(), "edgedetect_detections") == 0
        ),
        15,
    )
    text = http_get(url + "/metrics")[2].decode()
    assert metric(text, "edgedetect_frames_total") > frames_before
    assert metric(text, "edgedetect_source_reconnects_total") == 0
    assert healthy(url)
    # a broken config on reload is refused; the service keeps running on the old one
    cfg.write_text("[model]\nthreshhold = 0.2\n")
    proc.send_signal(signal.SIGHUP)
    assert poll(
        lambda: (
            metric(
                http_get(url + "/metrics")[2].decode(),
                'edgedetect_errors_total{component="config"}',
            )
            >= 1
        ),
        10,
    )
    assert (
        metric(http_get(url + "/metrics")[2].decode(), "edgedetect_reloads_total") == 1
    )  # refused
    assert healthy(url)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=10) == 0
    _, err = stop(proc)
    assert (
        "reloaded" in err
        and "reload failed, keeping the running configuration" in err
        and "did you mean 'threshold'" in err
    )


@pytest.mark.parametrize("content", [None, b"", b"this is not a flatbuffer" * 100])
def test_missing_or_corrupt_model_exits_2(tmp_path: Path, content: bytes | None) -> None:
    model = tmp_path / "broken.tflite"
    if content is not None:
        model.write_bytes(content)
    raw = service_config(tmp_path, model={"path": str(model), "labels": ""})
    cfg = tmp_path / "c.toml"
    cfg.write_text(to_toml(raw))
    proc = start(cfg)
    code, err = stop(proc) if proc.wait(timeout=60) is not None else (None, "")
    lines = [line for line in err.strip().splitlines() if line.startswith("edgedetect: error:")]
    assert code == 2, err[-2000:]
    assert len(lines) == 1 and "broken.tflite" in lines[0] and "Traceback" not in err


def test_check_config_cli(tmp_path: Path) -> None:
    good = write_config(tmp_path)
    env = dict(os.environ, PYTHONPATH=str(REPO))
    ok = subprocess.run(
        [sys.executable, "-m", "edgedetect.service", "check-config", str(good)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert ok.returncode == 0 and "OK" in ok.stdout
    bad = tmp_path / "bad.toml"
    bad.write_text("[http]\nlisten = 8080\n")
    res = subprocess.run(
        [sys.executable, "-m", "edgedetect.service", "check-config", str(bad)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert res.returncode == 2
    assert (
        res.stderr.strip() == f"edgedetect: error: {bad}: [http] listen must be a string, got 8080"
    )


@pytest.fixture
def broker(tmp_path: Path):
    exe = mosquitto_exe()
    port = free_port()
    conf = tmp_path / "mosquitto.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n")
    proc = subprocess.Popen(
        [exe, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    if not poll(lambda: _connectable(port), 10):
        proc.kill()
        pytest.fail("mosquitto did not start")
    yield port
    proc.terminate()
    proc.wait(timeout=5)


def _connectable(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        return True
    except OSError:
        return False


def test_mqtt_events_discovery_and_last_will(tmp_path: Path, broker: int) -> None:
    import paho.mqtt.client as mqtt

    got: dict[str, list[bytes]] = {}
    lock = threading.Lock()

    def on_message(client, userdata, msg) -> None:
        with lock:
            got.setdefault(msg.topic, []).append(msg.payload)

    sub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    sub.on_message = on_message
    sub.connect("127.0.0.1", broker)
    sub.subscribe([("edtest/#", 1), ("homeassistant/#", 1)])
    sub.loop_start()
    port = free_port()
    cfg = write_config(
        tmp_path,
        http={"listen": f"127.0.0.1:{port}"},
        mqtt={
            "enabled": True,
            "host": "127.0.0.1",
            "port": broker,
            "topic_prefix": "edtest",
            "device_name": "porch",
            "keepalive_s": 5,
        },
    )
    proc = start(cfg)
    try:
        assert poll(lambda: b"1" in got.get("edtest/count", []), 30), f"no count: {list(got)}"
        with lock:
            assert got["edtest/availability"][-1] == b"online"
            assert b"ON" in got["edtest/occupancy"]
            events = [json.loads(p) for p in got["edtest/event"]]
            cfg_topics = [t for t in got if t.startswith("homeassistant/")]
        assert any(e["type"] == "person_entered" for e in events)
        assert sorted(cfg_topics) == [
            "homeassistant/binary_sensor/porch/camera/config",
            "homeassistant/binary_sensor/porch/occupancy/config",
            "homeassistant/sensor/porch/person_count/config",
        ]
        # a crash (no clean disconnect): the broker publishes the last will
        proc.kill()
        proc.wait(timeout=10)
        assert poll(lambda: got["edtest/availability"][-1] == b"offline", 15), "no last will"
    finally:
        stop(proc)
        sub.loop_stop()
        sub.disconnect()
