"""Two cameras on one Home Assistant: each installed from the example config with its own
`[mqtt] topic_prefix` must become its own device. With the example's device_name
"edgedetect" both published the same discovery topics and unique ids, so the second camera's
entities replaced the first's."""

from __future__ import annotations

import json
from pathlib import Path

from edgedetect.service.config import load_config
from edgedetect.service.outputs import discovery_messages

EXAMPLE = Path(__file__).resolve().parents[1] / "systemd" / "config.example.toml"


def _discovery(tmp_path: Path, prefix: str) -> dict[str, dict[str, object]]:
    """The discovery configs of the example config with MQTT on and `topic_prefix` = prefix."""
    text = EXAMPLE.read_text().replace('topic_prefix = "edgedetect"', f'topic_prefix = "{prefix}"')
    config = tmp_path / f"{prefix.replace('/', '_')}.toml"
    config.write_text(text)
    mqtt = load_config(config).mqtt
    assert mqtt.topic_prefix == prefix
    messages = discovery_messages(mqtt.topic_prefix, mqtt.discovery_prefix, mqtt.device_name)
    return {topic: json.loads(payload) for topic, payload in messages}


def test_two_cameras_with_their_own_prefix_are_two_devices(tmp_path: Path) -> None:
    porch, garage = _discovery(tmp_path, "porch"), _discovery(tmp_path, "home/garage")
    assert porch and garage and not porch.keys() & garage.keys()
    ids = [{c["unique_id"] for c in d.values()} for d in (porch, garage)]
    assert not ids[0] & ids[1]
    names = {json.dumps(c["device"]) for d in (porch, garage) for c in d.values()}
    assert len(names) == 2 and any('"name": "home/garage"' in n for n in names)


def test_the_default_prefix_keeps_the_topics_and_ids_it_always_had(tmp_path: Path) -> None:
    """An install that keeps topic_prefix "edgedetect" must not see its entities renamed."""
    default = _discovery(tmp_path, "edgedetect")
    count = default["homeassistant/sensor/edgedetect/person_count/config"]
    assert count["unique_id"] == "edgedetect_person_count"
    assert count["device"] == {
        "identifiers": ["edgedetect_edgedetect"],
        "name": "edgedetect",
        "manufacturer": "edgedetect",
        "model": "edgedetect person detector",
    }
