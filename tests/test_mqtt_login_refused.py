"""A broker that refuses the service's login (a wrong `[mqtt] password`, a user the broker does
not know): found with a real mosquitto requiring a login. The journal got two warnings at every
one of paho's retries, for ever (`MQTT connect refused: Not authorized` and `MQTT disconnected
(Unspecified error); paho reconnects in the background`), naming neither the broker nor what
to fix. One warning per spell now, naming the broker and the keys, as an unreachable broker
has. The real service, a real mosquitto (`allow_anonymous false`, no user known).
"""

from __future__ import annotations

import logging
import subprocess
from pathlib import Path

import pytest
from conftest import mosquitto_exe
from test_service import free_port
from test_service_support import RunningService, poll, write_config


def test_a_refused_mqtt_login_is_said_once_naming_the_broker_and_the_keys(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    exe = mosquitto_exe()
    port = free_port()
    conf = tmp_path / "mosquitto.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous false\npersistence false\n")
    broker_log = tmp_path / "mosquitto.log"
    mqtt = {"enabled": True, "host": "127.0.0.1", "port": port, "keepalive_s": 5}
    cfg = write_config(tmp_path, mqtt={**mqtt, "username": "hall", "password": "wrong"})
    with broker_log.open("wb") as out:
        proc = subprocess.Popen([exe, "-c", str(conf)], stdout=out, stderr=subprocess.STDOUT)
        try:
            with caplog.at_level(logging.INFO, logger="edgedetect.outputs"), RunningService(cfg):
                refusals = lambda: broker_log.read_text().count("not authorised")  # noqa: E731
                assert poll(lambda: refusals() >= 3, 60), broker_log.read_text()
        finally:
            proc.terminate()
            proc.wait(10)
    said = [r.getMessage() for r in caplog.records if r.name == "edgedetect.outputs"]
    warned = [m for m in said if "refused" in m or "disconnected" in m]
    assert len(warned) == 1, said
    assert f"127.0.0.1:{port}" in warned[0], warned
    assert "[mqtt] username" in warned[0] and "password" in warned[0], warned
