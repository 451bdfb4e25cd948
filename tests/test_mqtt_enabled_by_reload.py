"""MQTT turned on by a reload (`[mqtt] enabled = true`, then `systemctl reload`) while a person
is in view: found by trying it with a real mosquitto. The new client had no MQTT output to take
the counts over from, so it announced count 0, occupancy OFF and the zone's count 0 (retained)
with the person still there, and Home Assistant read an empty room until someone left and
another came. The real service on a folder of astronaut photos (always someone in view).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from test_service import broker  # noqa: F401 - a fixture: mosquitto on a free port
from test_service_support import RunningService, image_dir, poll, service_config, to_toml
from test_service_zones import WHOLE, _retained


def test_mqtt_turned_on_by_a_reload_publishes_the_people_in_view(
    tmp_path: Path,
    broker: int,  # noqa: F811
) -> None:
    (tmp_path / "people").mkdir()
    astronaut = image_dir(tmp_path / "people", people=6, empty=0)
    sections: dict[str, dict[str, Any]] = {
        "source": {"spec": f"dir:{astronaut}"},
        "zones.all": {"polygon": WHOLE, "inertia": 1},
    }
    cfg = tmp_path / "config.toml"
    cfg.write_text(to_toml(service_config(tmp_path, **sections)))
    with RunningService(cfg) as rs:
        assert poll(lambda: rs.svc.health()[1]["zones"] == {"all": 1}, 30)
        mqtt = {"enabled": True, "host": "127.0.0.1", "port": broker, "topic_prefix": "edon"}
        cfg.write_text(to_toml(service_config(tmp_path, mqtt=mqtt, **sections)))
        rs.svc.request_reload()
        assert poll(lambda: rs.svc.reloads == 1, 20), rs.svc.last_reload_error
        assert poll(lambda: "edon/count" in _retained(broker, ("edon",), 0.2), 20)
        want = {"edon/count": b"1", "edon/occupancy": b"ON", "edon/zone/all/count": b"1"}

        def present() -> dict[str, Any]:
            got = _retained(broker, ("edon",), 0.2)
            return got if all(got.get(k) == v for k, v in want.items()) else {}

        got = poll(present, 20) or _retained(broker, ("edon",))
        assert rs.svc.health()[1]["persons"] == 1, "the astronaut never left"
    assert {k: got.get(k) for k in want} == want
