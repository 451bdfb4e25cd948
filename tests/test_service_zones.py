"""Zones, masks and lines in the real service: the bundled clip through the project's own model,
a reload that changes the zones, and the MQTT topics of zones and lines.

The clip (data/sample.mp4, see data/sample.json) shows a person in frames 0-29 and 60-89; the
service plays it once and stops at its end, so each run is bounded by the clip, not by a timer.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest
from test_service import broker, free_port, start, stop  # noqa: F401 - broker is a fixture
from test_service_support import (
    RunningService,
    image_dir,
    metric,
    poll,
    service_config,
    to_toml,
    write_config,
)

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "data" / "sample.mp4"
DEFAULT_MODEL = REPO / "models" / "person_ssdlite_int8.tflite"
WHOLE = [[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]]
CORNER = [[0.0, 0.0], [0.05, 0.0], [0.05, 0.05], [0.0, 0.05]]  # top left: sky in every photo


def play_clip(root: Path, **sections: dict[str, Any]) -> tuple[list[dict], str, RunningService]:
    """Run the service once over the clip; its events (JSONL) and metrics at the end."""
    if not DEFAULT_MODEL.exists():
        pytest.skip(f"project model {DEFAULT_MODEL} not built yet")
    cfg = write_config(
        root,
        source={"spec": f"file:{SAMPLE}", "loop": False},
        model={"path": "", "labels": ""},
        snapshots={"enabled": False},
        **sections,
    )
    rs = RunningService(cfg)
    with rs:
        assert poll(lambda: rs.exit_code is not None, 60), (
            "service did not stop at the end of the clip"
        )
    assert rs.exit_code == 0
    jsonl = root / "events.jsonl"
    lines = jsonl.read_text().splitlines() if jsonl.exists() else []
    return [json.loads(line) for line in lines], rs.svc.metrics.render().decode(), rs


def test_clip_enters_a_whole_frame_zone_and_never_a_corner(tmp_path: Path) -> None:
    zones: dict[str, dict[str, Any]] = {
        "zones.all": {"polygon": WHOLE, "inertia": 2},
        "zones.corner": {"polygon": CORNER},
    }
    events, text, _ = play_clip(tmp_path, **zones)
    entered = {e["track_id"] for e in events if e["type"] == "person_entered"}
    in_zone = [e for e in events if e["type"] == "zone_entered"]
    assert entered, "the model found nobody in the clip"
    assert {e["track_id"] for e in in_zone} == entered and {e["zone"] for e in in_zone} == {"all"}
    assert len(in_zone) == len(entered)  # once each: a person cut off by the frame edge stays in
    # each zone_entered is followed by that track's zone_left, before its person_left
    for e in in_zone:
        later = [x["type"] for x in events if x.get("track_id") == e["track_id"]]
        assert later.index("zone_left") < later.index("person_left")
    assert metric(text, 'edgedetect_events_total{type="zone_entered"}') == len(in_zone)
    assert metric(text, 'edgedetect_zone_people{zone="corner"}') == 0
    assert metric(text, 'edgedetect_zone_people{zone="all"}') == 0  # everyone left at the end


def test_clip_under_a_whole_frame_mask_has_no_person_events(tmp_path: Path) -> None:
    events, text, _ = play_clip(tmp_path, masks={"polygons": [WHOLE]})
    assert events == []
    assert metric(text, 'edgedetect_filtered_total{reason="mask"}') > 0
    assert metric(text, 'edgedetect_events_total{type="person_entered"}') == 0


def test_reload_swaps_zones_and_keeps_an_unchanged_one(tmp_path: Path) -> None:
    (tmp_path / "people").mkdir()
    astronaut = image_dir(tmp_path / "people", people=6, empty=0)
    zones: dict[str, dict[str, Any]] = {
        "zones.all": {"polygon": WHOLE, "inertia": 1},
        "zones.gone": {"polygon": CORNER},
        "source": {"spec": f"dir:{astronaut}"},
    }
    cfg = write_config(tmp_path, **zones)  # the astronaut only: always one person in view
    with RunningService(cfg) as rs:
        assert poll(lambda: rs.svc.health()[1]["zones"].get("all") == 1, 20), rs.svc.health()[1]
        assert 'edgedetect_zone_people{zone="gone"}' in rs.metrics()
        raw = service_config(
            tmp_path,
            **{
                "zones.all": zones["zones.all"],
                "zones.new": {"polygon": WHOLE},
                "lines.door": {"points": [[0.2, 0.9], [0.8, 0.9]]},
                "source": zones["source"],
            },
        )
        cfg.write_text(to_toml(raw))
        rs.svc.request_reload()
        assert poll(lambda: rs.svc.reloads == 1, 10), rs.svc.last_reload_error
        assert poll(lambda: set(rs.svc.health()[1]["zones"]) == {"all", "new"}, 10)
        info = rs.svc.health()[1]
        assert info["zones"]["all"] == 1 and info["lines"] == {"door": {"in": 0, "out": 0}}
        text = rs.metrics()
        assert 'zone="gone"' not in text
        assert metric(text, 'edgedetect_line_crossings_total{direction="in",line="door"}') == 0
    events = [json.loads(x) for x in (tmp_path / "events.jsonl").read_text().splitlines()]
    entered_all = [e for e in events if e["type"] == "zone_entered" and e["zone"] == "all"]
    assert len(entered_all) == len({e["track_id"] for e in entered_all})  # not entered twice


def test_mqtt_zone_and_line_topics(tmp_path: Path, broker: int) -> None:  # noqa: F811
    import paho.mqtt.client as mqtt

    got: dict[str, list[bytes]] = {}
    lock = threading.Lock()

    def on_message(client: Any, userdata: Any, msg: Any) -> None:
        with lock:
            got.setdefault(msg.topic, []).append(msg.payload)

    sub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    sub.on_message = on_message
    sub.connect("127.0.0.1", broker)
    sub.subscribe([("edz/#", 1), ("homeassistant/#", 1)])
    sub.loop_start()
    scene: dict[str, dict[str, Any]] = {
        "zones.all": {"polygon": WHOLE, "inertia": 1},
        "lines.door": {"points": [[0.2, 0.9], [0.8, 0.9]]},
    }
    cfg = write_config(
        tmp_path,
        http={"listen": f"127.0.0.1:{free_port()}"},
        mqtt={
            "enabled": True,
            "host": "127.0.0.1",
            "port": broker,
            "topic_prefix": "edz",
            "device_name": "porch",
            "keepalive_s": 5,
        },
        **scene,
    )
    proc = start(cfg)
    try:
        assert poll(lambda: b"1" in got.get("edz/zone/all/count", []), 30), (
            f"no zone count: {list(got)}"
        )
        with lock:
            events = [json.loads(p) for p in got["edz/event"]]
            zone_cfg = json.loads(got["homeassistant/sensor/porch/zone_all_count/config"][-1])
            lines = {t: v[-1] for t, v in got.items() if t.startswith("edz/line/")}
        assert any(e["type"] == "zone_entered" and e["zone"] == "all" for e in events)
        assert zone_cfg["state_topic"] == "edz/zone/all/count"
        assert zone_cfg["unique_id"] == "porch_zone_all_count"
        assert lines == {"edz/line/door/in": b"0", "edz/line/door/out": b"0"}
    finally:
        stop(proc)
        sub.loop_stop()
        sub.disconnect()


def _retained(
    port: int, prefixes: tuple[str, ...], settle_s: float = 0.5
) -> dict[str, bytes | bytearray]:
    """What a client connecting now receives: the broker's retained messages under `prefixes`."""
    import paho.mqtt.client as mqtt

    got: dict[str, bytes | bytearray] = {}  # MQTTMessage.payload's type
    sub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    sub.on_message = lambda client, userdata, msg: got.__setitem__(msg.topic, msg.payload)
    sub.connect("127.0.0.1", port)
    sub.subscribe([(f"{p}/#", 1) for p in prefixes])
    sub.loop_start()
    poll(lambda: any(t.endswith("/availability") for t in got), 5)
    threading.Event().wait(settle_s)  # the rest of the retained burst; absences are checked
    sub.loop_stop()
    sub.disconnect()
    return {t: v for t, v in got.items() if not t.endswith("/event")}


def test_reload_keeps_mqtt_counts_and_drops_a_removed_zone(tmp_path: Path, broker: int) -> None:  # noqa: F811
    """Found by trying a zone edit with Home Assistant watching: the new MQTT client announced
    count 0 and occupancy OFF with the astronaut still in view, and the removed zone's sensor and
    count stayed retained for ever."""
    (tmp_path / "people").mkdir()
    astronaut = image_dir(tmp_path / "people", people=6, empty=0)
    mqtt = {"enabled": True, "host": "127.0.0.1", "port": broker, "topic_prefix": "edr"}
    sections: dict[str, dict[str, Any]] = {
        "mqtt": {**mqtt, "device_name": "hall", "keepalive_s": 5},
        "source": {"spec": f"dir:{astronaut}"},
        "zones.all": {"polygon": WHOLE, "inertia": 1},
    }
    cfg = write_config(tmp_path, **sections, **{"zones.gone": {"polygon": WHOLE}})
    gone_cfg = "homeassistant/sensor/hall/zone_gone_count/config"
    with RunningService(cfg) as rs:
        assert poll(lambda: rs.svc.health()[1]["zones"] == {"all": 1, "gone": 1}, 20)
        assert poll(lambda: _retained(broker, ("edr",), 0).get("edr/zone/gone/count") == b"1", 10)
        before = _retained(broker, ("edr", "homeassistant"))
        assert before["edr/count"] == b"1" and gone_cfg in before
        cfg.write_text(to_toml(service_config(tmp_path, **sections)))
        rs.svc.request_reload()
        assert poll(lambda: rs.svc.reloads == 1, 10), rs.svc.last_reload_error
        assert poll(lambda: "edr/zone/gone/count" not in _retained(broker, ("edr",), 0.2), 10)
        after = _retained(broker, ("edr", "homeassistant"))
        assert rs.svc.health()[1]["zones"] == {"all": 1}  # still in view, never left
    assert after["edr/availability"] == b"online"
    assert (after["edr/count"], after["edr/occupancy"]) == (b"1", b"ON")
    assert after["edr/zone/all/count"] == b"1"
    assert gone_cfg not in after and "edr/zone/gone/count" not in after
    assert "homeassistant/sensor/hall/zone_all_count/config" in after
    events = [json.loads(line) for line in (tmp_path / "events.jsonl").read_text().splitlines()]
    # the removed zone's people left it with the reload: every zone_entered has its zone_left
    assert [e["type"] for e in events if e.get("zone") == "gone"] == ["zone_entered", "zone_left"]
