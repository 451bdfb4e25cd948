"""The MQTT broker down for a while (restarted, or the Home Assistant host rebooting) while
people come and go: what Home Assistant reads once it is back.

paho's own queue (`max_queued_messages_set([mqtt] queue)`) held what was published while the
broker was down and refused the newest once full, also when connected: after an outage that
filled it, the reconnect's republish of `availability` `online` and of the count was refused,
then the old queued messages went out, so the retained occupancy ended on a count of the past
(`ON` with nobody there) and the device stayed unavailable. The real service, a real mosquitto
restarted on the same port, the stream double of test_service_outage.
"""

from __future__ import annotations

import json
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import mosquitto_exe
from test_service import free_port
from test_service_outage import SPEC, Stream, of_type, visit_begins
from test_service_support import RunningService, poll, write_config


class Broker:
    """mosquitto on a fixed loopback port, without persistence (a restart forgets every retained
    message, as after a crash or with the default config); `stop()` and `start()` again."""

    def __init__(self, root: Path) -> None:
        exe = mosquitto_exe()
        self.exe = exe
        self.port = free_port()
        self.conf = root / "mosquitto.conf"
        self.conf.write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
        )
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [self.exe, "-c", str(self.conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        assert poll(self._up, 10), "mosquitto did not start"

    def _up(self) -> bool:
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
            return True
        except OSError:
            return False

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
            self.proc = None

    def retained(self, prefix: str) -> dict[str, str]:
        """The retained messages under `prefix/` now, as a new subscriber gets them."""
        import paho.mqtt.client as mqtt

        got: dict[str, str] = {}
        lock = threading.Lock()

        def on_message(client: object, userdata: object, msg: mqtt.MQTTMessage) -> None:
            if msg.retain:
                with lock:
                    got[msg.topic] = msg.payload.decode()

        sub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
        sub.on_message = on_message
        sub.connect("127.0.0.1", self.port)
        sub.subscribe(f"{prefix}/#", qos=1)
        sub.loop_start()
        try:
            time.sleep(0.5)  # retained messages come right after the subscription
        finally:
            sub.loop_stop()
            sub.disconnect()
        with lock:
            return dict(got)


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    b = Broker(tmp_path)
    b.start()
    yield b
    b.stop()


def stream_config(root: Path, broker: Broker, **mqtt: object) -> Path:
    """The service on the test's stream, publishing to `broker` with these `[mqtt]` keys."""
    return write_config(
        root,
        source={"spec": SPEC, "reconnect_max_s": 1.0},
        service={"stall_timeout_s": 5.0},
        mqtt={"enabled": True, "host": "127.0.0.1", "port": broker.port, "keepalive_s": 5, **mqtt},
    )


def test_home_assistant_reads_the_present_after_a_broker_outage_with_a_full_queue(
    tmp_path: Path, broker: Broker
) -> None:
    stream = Stream()
    prefix = "edout"
    now_empty = {f"{prefix}/availability": "online", f"{prefix}/count": "0"}
    # one visit's enter fills the queue (2 events, count and occupancy)
    cfg = stream_config(tmp_path, broker, topic_prefix=prefix, queue=4)
    with RunningService(cfg, opener=stream) as rs:
        visit_begins(tmp_path)
        stream.down()  # the visit ends while the broker is still up: retained count 0
        assert poll(lambda: broker.retained(prefix).get(f"{prefix}/occupancy") == "OFF", 30)
        broker.stop()
        assert rs.svc.outputs is not None
        out = next(o for o in rs.svc.outputs.items if o.name == "mqtt")
        assert poll(lambda: not out.connected.is_set(), 30), "the service never saw it go"
        stream.up()  # a visit while the broker is down: enter, then leave
        assert poll(lambda: len(of_type(tmp_path, "person_entered")) == 2, 30)
        stream.down()
        assert poll(lambda: len(of_type(tmp_path, "person_left")) == 2, 30)
        broker.start()  # forgot every retained message; the service must tell it the present
        got = poll(
            lambda: (
                (r := broker.retained(prefix)).get(f"{prefix}/occupancy") == "OFF"
                and all(r.get(k) == v for k, v in now_empty.items())
                and r
            ),
            60,
        )
        assert got, f"after the broker came back: {broker.retained(prefix)}"


def test_home_assistant_sees_the_camera_go_and_come_back(tmp_path: Path, broker: Broker) -> None:
    """With the camera gone the visit ends and occupancy is OFF: alone, that read as an empty
    room. The retained `camera` topic (a connectivity sensor in discovery) says the camera is
    gone, and that it is back, while the service's availability stays `online`."""
    stream = Stream()
    prefix = "edcam"
    cfg = stream_config(tmp_path, broker, topic_prefix=prefix, device_name="hall")
    with RunningService(cfg, opener=stream):
        up = poll(lambda: (r := broker.retained(prefix)).get(f"{prefix}/camera") == "ON" and r, 30)
        assert up, f"no camera state: {broker.retained(prefix)}"
        stream.down()
        gone = poll(
            lambda: (r := broker.retained(prefix)).get(f"{prefix}/camera") == "OFF" and r, 30
        )
        assert gone, f"camera down, retained: {broker.retained(prefix)}"
        assert gone[f"{prefix}/availability"] == "online"  # the service is there, its camera not
        stream.up()
        back = poll(lambda: broker.retained(prefix).get(f"{prefix}/camera") == "ON", 30)
        assert back, f"camera back, retained: {broker.retained(prefix)}"
        configs = broker.retained("homeassistant/binary_sensor/hall")
    camera = json.loads(configs["homeassistant/binary_sensor/hall/camera/config"])
    assert camera["state_topic"] == f"{prefix}/camera"
    assert camera["device_class"] == "connectivity"
