"""`[mqtt] host` written as other tools take it (`mqtt://broker.local`, `broker.local:1883`) or
mistyped (`192.168.1.300`, a space): check-config said OK, and the service then logged "MQTT
broker ... cannot be reached" and retried for ever. Found by pasting a broker URL from another
tool's settings. Refused up front now, like an empty host, in one line naming the file, the key
and the fix, exit 2.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import run_edgedetect
from test_service_support import to_toml


def _config(root: Path, host: str) -> Path:
    path = root / "config.toml"
    path.write_text(
        to_toml(
            {
                "source": {"spec": "usb:0"},
                "preview": {"enabled": False},
                "events": {"jsonl": ""},
                "snapshots": {"enabled": False},
                "http": {"enabled": False},
                "mqtt": {"enabled": True, "host": host},
            }
        )
    )
    return path


@pytest.mark.parametrize(
    ("host", "fix"),
    [
        ("mqtt://broker.local", "host = 'broker.local'"),
        ("broker.local:1883", "port = 1883"),
        ("192.168.1.300", "not a valid IPv4 address"),
        ("broker .local", "not a host name"),
        ("[::1]", "without the brackets"),
    ],
)
def test_a_broker_host_that_cannot_connect_is_refused_up_front(
    tmp_path: Path, host: str, fix: str
) -> None:
    cfg = _config(tmp_path, host)
    res = run_edgedetect("check-config", str(cfg))
    assert res.returncode == 2, res.stdout + res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in res.stderr, res.stderr
    assert str(cfg) in lines[0] and f"[mqtt] host = {host!r}" in lines[0], lines[0]
    assert fix in lines[0], lines[0]


@pytest.mark.parametrize("host", ["broker.local", "192.168.1.30", "::1", "localhost", "mqtt"])
def test_a_host_name_or_address_still_passes(tmp_path: Path, host: str) -> None:
    from edgedetect.service.config import load_config

    assert load_config(_config(tmp_path, host)).mqtt.host == host
