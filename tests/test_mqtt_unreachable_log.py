"""A broker that cannot be reached is logged, once: with the broker down (or a host name that
does not resolve, e.g. host = "mqtt://broker") at start, the service logged nothing at all about
MQTT while paho retried in the background and the events waited in its queue; docs/service.md
says a broker that is down is logged and counted."""

from __future__ import annotations

import logging
import time

import pytest
from test_events import _closed_port

from edgedetect.service.outputs import MqttOutput


@pytest.mark.parametrize("host", ["127.0.0.1", "mqtt://127.0.0.1"])
def test_an_unreachable_broker_is_logged_once(caplog: pytest.LogCaptureFixture, host: str) -> None:
    port = _closed_port()
    with caplog.at_level(logging.INFO, logger="edgedetect"):
        out = MqttOutput(host, port, topic_prefix="edtest", queue_size=10)
        try:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and "MQTT broker" not in caplog.text:
                time.sleep(0.05)
            time.sleep(2.5)  # paho retries after 1 s, then 2 s: not logged again
        finally:
            out.close(0.3)
    lines = [r.getMessage() for r in caplog.records if "MQTT broker" in r.getMessage()]
    assert len(lines) == 1, caplog.text
    assert f"{host}:{port}" in lines[0] and "cannot be reached" in lines[0], lines[0]
    assert [r.levelno for r in caplog.records if "MQTT broker" in r.getMessage()] == [
        logging.WARNING
    ]
