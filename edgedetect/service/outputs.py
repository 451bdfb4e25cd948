"""Network outputs (MQTT, webhook) behind a bounded queue and their own worker thread.

The pipeline's output thread only ever does `queue.put_nowait`: a dead broker, a hanging
endpoint or a slow DNS lookup can delay the worker, never detection. When the queue is full
the oldest message is dropped and counted (newest events matter most, memory stays bounded).
"""

from __future__ import annotations

import contextlib
import json
import logging
import queue
import re
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from edgedetect.service.events import Event

log = logging.getLogger("edgedetect.outputs")

EVENT_MESSAGES = 3  # the most an MQTT event publishes: the event, count and occupancy
PUBACK_WAIT_S = 2.0  # how long the MQTT worker waits for the broker to take an event
# CONNACK codes of a refused login: MQTT 3.1.1 bad user name or password, not authorized; MQTT 5
# the same two (134, 135)
LOGIN_REFUSED = frozenset({4, 5, 134, 135})


@dataclass(frozen=True)
class SceneCounts:
    """The scene now (the tracker's person count, each zone's head count, each line's totals):
    what an MQTT output turned on by a reload publishes, having no output to take it from."""

    count: int = 0
    zones: Mapping[str, int] = field(default_factory=dict)
    lines: Mapping[str, Mapping[str, int]] = field(default_factory=dict)


class QueuedOutput:
    """Base: `send()` enqueues without blocking; `_deliver()` runs on the worker thread."""

    name = "queued"
    config: Any = None  # what `from_config` made it from; None: not to be kept by a reload

    def __init__(
        self,
        maxsize: int,
        on_error: Callable[[str], None] | None = None,
        on_drop: Callable[[str], None] | None = None,
    ) -> None:
        self._q: queue.Queue = queue.Queue(maxsize=maxsize)
        self._stop = threading.Event()
        self._on_error = on_error or (lambda name: None)
        self._on_drop = on_drop or (lambda name: None)
        self.delivered = 0
        self.dropped = 0
        self.failed = 0
        self._thread = threading.Thread(target=self._run, name=f"out-{self.name}", daemon=True)
        self._thread.start()

    def send(self, event: Event) -> None:
        self._put(event)

    def _put(self, item: Any) -> None:
        while True:
            try:
                self._q.put_nowait(item)
                return
            except queue.Full:
                try:
                    self._q.get_nowait()  # drop the oldest
                    self.dropped += 1
                    self._on_drop(self.name)
                except queue.Empty:
                    pass

    def _run(self) -> None:
        while True:
            if not self._ready(0.2):  # nothing leaves the queue meanwhile (it drops the oldest)
                if self._stop.is_set():
                    return
                continue
            try:
                item = self._q.get(timeout=0.2)
            except queue.Empty:
                if self._stop.is_set():
                    return
                continue
            if item is None:
                return
            try:
                self._deliver(item)
                self.delivered += 1
            except Exception as e:  # logged and counted; the next message still goes out
                self.failed += 1
                self._on_error(self.name)
                log.warning("%s output failed: %s", self.name, e)

    def _ready(self, timeout: float) -> bool:
        """Whether `_deliver` can go on now (waiting up to `timeout` s); always, here."""
        return True

    def _deliver(self, item: Any) -> None:
        raise NotImplementedError

    @property
    def pending(self) -> int:
        return self._q.qsize()

    def close(self, timeout: float = 1.0) -> None:
        """Give queued messages up to `timeout` s to go out, then stop (bounded shutdown)."""
        self._stop.set()
        deadline = time.monotonic() + timeout
        while self._q.qsize() and time.monotonic() < deadline and self._thread.is_alive():
            time.sleep(0.02)
        self._put(None)
        self._thread.join(max(0.0, deadline - time.monotonic()) + 0.1)


class WebhookOutput(QueuedOutput):
    """POSTs each event as JSON; retries with exponential backoff on network errors and 5xx."""

    name = "webhook"

    def __init__(
        self,
        url: str,
        events: list[str] | None = None,
        timeout_s: float = 5.0,
        retries: int = 3,
        queue_size: int = 100,
        headers: dict[str, str] | None = None,
        backoff_s: float = 0.5,
        **kw: Any,
    ) -> None:
        self.url = url
        self.events = set(events) if events is not None else None
        self.timeout_s = timeout_s
        self.retries = retries
        self.headers = {"Content-Type": "application/json", "User-Agent": "edgedetect"}
        self.headers.update(headers or {})
        self.backoff_s = backoff_s
        super().__init__(queue_size, **kw)

    @classmethod
    def from_config(cls, section: Any, **hooks: Any) -> WebhookOutput:
        """From a validated `[webhook]` section (kept as `config`: a reload that leaves it as it
        was keeps this output, and the events it is still trying to deliver)."""
        output = cls(
            section.url,
            list(section.events),
            section.timeout_s,
            section.retries,
            section.queue,
            dict(section.headers),
            **hooks,
        )
        output.config = section
        return output

    def send(self, event: Event) -> None:
        if self.events is None or event.type in self.events:
            self._put(event)

    def _deliver(self, event: Event) -> None:
        body = event.to_json().encode()
        last: Exception | None = None
        for attempt in range(self.retries + 1):
            if attempt:
                if self._stop.wait(min(self.backoff_s * 2 ** (attempt - 1), 30.0)):
                    break  # shutting down: stop retrying
            req = urllib.request.Request(self.url, data=body, headers=self.headers, method="POST")
            try:
                with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:
                    resp.read(1024)
                return
            except urllib.error.HTTPError as e:
                last = e
                if e.code < 500 and e.code != 429:
                    break  # a 4xx will not get better by retrying
            except (urllib.error.URLError, OSError, TimeoutError) as e:
                last = e
        raise RuntimeError(f"POST {self.url} failed after {attempt + 1} attempt(s): {last}")


def node_id(name: str) -> str:
    """Home Assistant object ids: [a-zA-Z0-9_-] only."""
    return re.sub(r"[^a-zA-Z0-9_-]", "_", name) or "edgedetect"


def _entity(
    base: dict[str, Any], node: str, key: str, name: str, state_topic: str, **extra: Any
) -> dict[str, Any]:
    """One entity's discovery config: its name, id and state topic, `extra` (device class,
    icon, payloads), and the device and availability every entity of the service shares."""
    return {"name": name, "unique_id": f"{node}_{key}", "state_topic": state_topic, **extra, **base}


def discovery_messages(
    prefix: str, discovery_prefix: str, device_name: str, zones: Sequence[str] = ()
) -> list[tuple[str, str]]:
    """Retained Home Assistant MQTT discovery configs: a person-count sensor, occupancy, the
    camera's connectivity (so a dead camera is not read as an empty room), and a person-count
    sensor per zone. An empty `device_name` is the topic prefix: two cameras with their own
    prefixes must not share one device's discovery topics and unique ids."""
    device_name = device_name or prefix
    node = node_id(device_name)
    base = {
        "availability_topic": f"{prefix}/availability",
        "payload_available": "online",
        "payload_not_available": "offline",
        "device": {
            "identifiers": [f"edgedetect_{node}"],
            "name": device_name,
            "manufacturer": "edgedetect",
            "model": "edgedetect person detector",
        },
    }
    count = {"state_class": "measurement", "icon": "mdi:account-multiple"}
    on_off = {"payload_on": "ON", "payload_off": "OFF"}
    entities = [
        ("sensor", "person_count", "Person count", f"{prefix}/count", count),
        (
            "binary_sensor",
            "occupancy",
            "Occupancy",
            f"{prefix}/occupancy",
            {"device_class": "occupancy", **on_off},
        ),
        (
            "binary_sensor",
            "camera",
            "Camera",
            f"{prefix}/camera",
            {"device_class": "connectivity", "entity_category": "diagnostic", **on_off},
        ),
    ]
    for zone in zones:
        topic = f"{prefix}/zone/{zone}/count"
        group = {**count, "icon": "mdi:account-group"}
        entities.append(("sensor", f"zone_{zone}_count", f"Persons in {zone}", topic, group))
    return [
        (
            f"{discovery_prefix}/{kind}/{node}/{key}/config",
            json.dumps(_entity(base, node, key, name, topic, **extra)),
        )
        for kind, key, name, topic, extra in entities
    ]


class MqttOutput(QueuedOutput):
    """paho-mqtt publisher: availability with last will, HA discovery, events, count, occupancy,
    the camera's connectivity (`<prefix>/camera`, `ON` / `OFF`), per-zone counts
    (`<prefix>/zone/NAME/count`) and line counters (`<prefix>/line/NAME/in|out`).

    Availability is the service's (its last will); `camera` is the source's: with the camera
    gone the visit ends and occupancy is `OFF`, which alone reads as an empty room.

    paho runs its own network thread (`loop_start`) and reconnects by itself. Our worker thread
    calls `publish` only while connected and one event at a time (it waits, up to
    `PUBACK_WAIT_S`, until the broker took the event's last message); events wait in our queue
    meanwhile, which drops the oldest when full. So paho's own queue holds one event's messages
    (and what a lost connection left of them) beside the republish on connect (availability,
    discovery, the counts now), which always fits its bound (`_make_room`) and goes out before
    the events that waited, in order. Handed to paho while disconnected, events filled its
    queue, which refuses the newest even when connected: the reconnect's 'online' and counts
    were refused and the retained state stayed as it was when the queue filled.

    A reload builds a new output with `previous=` the running one and calls `adopt(previous)`
    once that one has flushed: the new client then publishes the scene's running counts (the
    tracker and unchanged zones and lines keep theirs across a reload) instead of zeros, and
    empties the retained topics of removed zones and lines, so Home Assistant drops their
    sensors instead of showing stale counts.
    """

    name = "mqtt"

    def __init__(
        self,
        host: str,
        port: int = 1883,
        topic_prefix: str = "edgedetect",
        username: str = "",
        password: str = "",
        client_id: str = "",
        keepalive_s: int = 60,
        queue_size: int = 1000,
        discovery: bool = True,
        discovery_prefix: str = "homeassistant",
        device_name: str = "edgedetect",
        zones: Sequence[str] = (),
        lines: Sequence[str] = (),
        previous: MqttOutput | None = None,
        scene: SceneCounts | None = None,
        **kw: Any,
    ) -> None:
        self.prefix = topic_prefix.strip("/")
        self.discovery = discovery
        self.discovery_prefix = discovery_prefix.strip("/")
        self.device_name = device_name
        self.count = 0
        self.zones = dict.fromkeys(zones, 0)  # retained state, republished on every (re)connect
        self.lines = {(line, d): 0 for line in lines for d in ("in", "out")}
        self.camera: bool | None = None  # unknown until the service says (set_camera)
        self.connected = threading.Event()
        self.avail_topic = f"{self.prefix}/availability"
        self._state_lock = threading.Lock()  # the worker, paho's thread and a reload meet here
        self._heard: set[tuple[str, ...]] = set()  # state set by an event of this output's own
        self._stale: list[str] = []  # retained topics of the output this one replaced, to empty
        if previous is not None:
            self.adopt(previous)
        elif scene is not None:  # before connecting: the first publish is already the present
            self.seed(scene)
        self._queue_size = queue_size
        self.client = self._new_client(client_id, username, password)
        self.address = f"{host}:{port}"
        self._unreachable_said = False  # one line per outage, not one per paho retry
        self._refused_said = False  # the same for a refused login
        super().__init__(queue_size, **kw)
        self.client.connect_async(host, port, keepalive_s)
        self.client.loop_start()

    def _new_client(self, client_id: str, username: str, password: str) -> Any:
        """paho's client, not yet connected: credentials, the last will ('offline'), its queue
        bound (`_make_room`), reconnect backoff 1..60 s, and this output's callbacks."""
        import paho.mqtt.client as mqtt  # lazy: only needed when [mqtt] enabled

        client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id=client_id or "", clean_session=True
        )
        if username:
            client.username_pw_set(username, password or None)
        client.will_set(self.avail_topic, "offline", qos=1, retain=True)
        self._make_room(client)
        client.reconnect_delay_set(1, 60)
        client.on_connect = self._on_connect
        client.on_connect_fail = self._on_connect_fail
        client.on_disconnect = self._on_disconnect
        return client

    @classmethod
    def from_config(
        cls,
        section: Any,
        zones: Sequence[str] = (),
        lines: Sequence[str] = (),
        previous: MqttOutput | None = None,
        scene: SceneCounts | None = None,
        **hooks: Any,
    ) -> MqttOutput:
        """From a validated `[mqtt]` section (password already read from password_file), the
        names of the configured zones and lines, and the output it replaces on a reload (or the
        scene's counts when there is none). What it was made from is kept as `config`: a reload
        that changes none of it keeps this output."""
        output = cls(
            section.host,
            section.port,
            section.topic_prefix,
            section.username,
            section.password,
            section.client_id,
            section.keepalive_s,
            section.queue,
            section.discovery,
            section.discovery_prefix,
            section.device_name,
            zones,
            lines,
            previous,
            scene,
            **hooks,
        )
        output.config = (section, tuple(zones), tuple(lines))
        return output

    def retained_topics(self) -> set[str]:
        """Every retained topic this output publishes (discovery configs when enabled)."""
        topics = {
            self.avail_topic,
            *(f"{self.prefix}/{t}" for t in ("count", "occupancy", "camera")),
        }
        topics |= {f"{self.prefix}/zone/{zone}/count" for zone in self.zones}
        topics |= {f"{self.prefix}/line/{line}/{d}" for line, d in self.lines}
        if self.discovery:
            topics |= {
                topic
                for topic, _ in discovery_messages(
                    self.prefix, self.discovery_prefix, self.device_name, list(self.zones)
                )
            }
        return topics

    def adopt(self, previous: MqttOutput) -> None:
        """Take over from the output this one replaces: its counts for what this one has no
        event of its own for yet, and its retained topics this one does not publish, to empty.
        Republishes at once when connected (else on connect)."""
        with self._state_lock:
            if ("count",) not in self._heard:
                self.count = previous.count
            if self.camera is None:
                self.camera = previous.camera
            for zone in self.zones.keys() & previous.zones.keys():
                if ("zone", zone) not in self._heard:
                    self.zones[zone] = previous.zones[zone]
            for key in self.lines.keys() & previous.lines.keys():
                if ("line", *key) not in self._heard:
                    self.lines[key] = previous.lines[key]
            self._stale = sorted(previous.retained_topics() - self.retained_topics())
        if self.connected.is_set():
            self._publish_retained(self.client)

    def seed(self, scene: SceneCounts) -> None:
        """MQTT turned on by a reload: no output to `adopt` from, so the scene's counts now, for
        what this output has no event of its own for yet (else it announced 0 and OFF with
        people in view until the next event). Republishes at once when connected."""
        with self._state_lock:
            if ("count",) not in self._heard:
                self.count = scene.count
            for zone in self.zones.keys() & scene.zones.keys():
                if ("zone", zone) not in self._heard:
                    self.zones[zone] = scene.zones[zone]
            for line, direction in self.lines:
                total = scene.lines.get(line, {}).get(direction)
                if total is not None and ("line", line, direction) not in self._heard:
                    self.lines[(line, direction)] = total
        if self.connected.is_set():
            self._publish_retained(self.client)

    def set_lines(self, totals: Mapping[str, Mapping[str, int]]) -> None:
        """A reload's lines took over: their totals now (a moved line's restart from 0); each
        one that differs is published, when connected (else on connect)."""
        with self._state_lock:
            for line, direction in self.lines:
                total = totals.get(line, {}).get(direction)
                if total is None:
                    continue
                self._heard.add(("line", line, direction))  # newer than a replaced output's
                if self.lines[(line, direction)] != total:
                    self.lines[(line, direction)] = total
                    if self.client.is_connected():
                        self._publish_line(line, direction, total)

    def _make_room(self, client: Any) -> None:
        """paho's queue bound: `[mqtt] queue` plus every retained message of a (re)connect and
        one event's messages, so that republish always fits beside what a lost connection left
        in it. Set once, before connecting (paho refuses it later): a reload's `previous=`
        has set `_stale` by then."""
        client.max_queued_messages_set(
            self._queue_size + len(self.retained_topics()) + len(self._stale) + EVENT_MESSAGES
        )

    def _on_connect(self, client, userdata, flags, reason_code, properties=None) -> None:
        if getattr(reason_code, "is_failure", False):
            self._refused(reason_code)
            return
        log.info("MQTT connected")
        self._unreachable_said = self._refused_said = False
        self._publish_retained(client)
        self.connected.set()

    def _publish_retained(self, client: Any) -> None:
        """Availability, discovery and every count; the replaced output's leftovers emptied (an
        empty retained message deletes the topic, and a discovery config the sensor)."""
        with self._state_lock:
            for topic in self._stale:
                client.publish(topic, b"", qos=1, retain=True)
            client.publish(self.avail_topic, "online", qos=1, retain=True)
            if self.discovery:
                for topic, payload in discovery_messages(
                    self.prefix, self.discovery_prefix, self.device_name, list(self.zones)
                ):
                    client.publish(topic, payload, qos=1, retain=True)
            self._publish_state(self.count)
            if self.camera is not None:
                self._publish_camera(self.camera)
            for zone, n in self.zones.items():
                self._publish_zone(zone, n)
            for (line, direction), n in self.lines.items():
                self._publish_line(line, direction, n)

    def _refused(self, reason_code: Any) -> None:
        """The broker answered but refused the login: one warning per spell, naming the broker
        and what to check (paho retries every 1 to 60 s; two lines a retry flooded the log)."""
        if self._refused_said:
            log.debug("MQTT broker %s refused the connection again: %s", self.address, reason_code)
            return
        self._refused_said = True
        login = getattr(reason_code, "value", None) in LOGIN_REFUSED
        log.warning(
            "MQTT broker %s refused the connection: %s; %s; retrying in the background, events "
            "wait in the queue",
            self.address,
            reason_code,
            "check [mqtt] username and password (or password_file) against the broker's users"
            if login
            else "see the broker's log for why (and check [mqtt] client_id, username, password)",
        )

    def _on_connect_fail(self, client: Any, userdata: Any) -> None:
        """paho could not open a connection (no such host, refused, unreachable); it retries by
        itself every 1 to 60 s."""
        if not self._unreachable_said:
            self._unreachable_said = True
            log.warning(
                "MQTT broker %s cannot be reached (check [mqtt] host and port, and that the "
                "broker runs); retrying in the background, events wait in the queue",
                self.address,
            )

    def _on_disconnect(self, client, userdata, flags, reason_code, properties=None) -> None:
        was_connected = self.connected.is_set()  # not after a refused login: said by _refused
        self.connected.clear()
        if reason_code != 0 and was_connected:
            log.warning("MQTT disconnected (%s); paho reconnects in the background", reason_code)

    def _publish_state(self, count: int) -> Any:
        self.client.publish(f"{self.prefix}/count", str(count), qos=1, retain=True)
        return self.client.publish(
            f"{self.prefix}/occupancy", "ON" if count else "OFF", qos=1, retain=True
        )

    def set_camera(self, connected: bool) -> None:
        """The source is up or gone (the service's main loop, at each change); retained, so Home
        Assistant's camera sensor reads the present after its own restart too."""
        with self._state_lock:
            if self.camera == connected:
                return
            self.camera = connected
            # paho's own flag, set before on_connect's republish: whichever of the two comes
            # second publishes the present (`connected` is set only after that republish)
            if self.client.is_connected():  # else the next (re)connect publishes it
                self._publish_camera(connected)

    def _publish_camera(self, connected: bool) -> Any:
        return self.client.publish(
            f"{self.prefix}/camera", "ON" if connected else "OFF", qos=1, retain=True
        )

    def _publish_zone(self, zone: str, count: int) -> Any:
        return self.client.publish(
            f"{self.prefix}/zone/{zone}/count", str(count), qos=1, retain=True
        )

    def _publish_line(self, line: str, direction: str, total: int) -> Any:
        return self.client.publish(
            f"{self.prefix}/line/{line}/{direction}", str(total), qos=1, retain=True
        )

    def _ready(self, timeout: float) -> bool:
        return self.connected.wait(timeout)

    def _deliver(self, event: Event) -> None:
        info = last = self.client.publish(f"{self.prefix}/event", event.to_json(), qos=1)
        with self._state_lock:
            if event.type == "count_changed":
                self.count = event.count
                self._heard.add(("count",))
                last = self._publish_state(event.count)
            elif event.type in ("zone_entered", "zone_left") and event.zone in self.zones:
                # count: the zone's head count now; a zone a reload removed (its last zone_left
                # events) keeps no state topic, so it is not published again
                self.zones[event.zone] = event.count
                self._heard.add(("zone", event.zone))
                last = self._publish_zone(event.zone, event.count)
            elif event.type == "line_crossed":  # count: the line's total in that direction
                self.lines[(event.line, event.direction)] = event.count
                self._heard.add(("line", event.line, event.direction))
                last = self._publish_line(event.line, event.direction, event.count)
        # rc 4 (NO_CONN, the connection lost since _ready): queued inside paho until it
        # reconnects, not lost; 15 (QUEUE_SIZE): dropped.
        if info.rc == 15:
            self.dropped += 1
            self._on_drop(self.name)
        elif info.rc not in (0, 4):
            raise RuntimeError(f"MQTT publish failed (rc={info.rc})")
        if last.rc == 0:  # one event in flight at a time: paho's queue never fills (_make_room)
            with contextlib.suppress(ValueError, RuntimeError):  # refused or lost: said above
                last.wait_for_publish(PUBACK_WAIT_S)

    def close(self, timeout: float = 1.0, farewell: bool = True) -> None:
        """Stop; `farewell=False` when another client takes over the same topics (a reload), so
        the retained availability stays 'online' instead of ending as this client's 'offline'."""
        super().close(timeout)
        try:
            if farewell and self.connected.is_set():
                self.client.publish(
                    self.avail_topic, "offline", qos=1, retain=True
                ).wait_for_publish(0.5)
            self.client.disconnect()
        except Exception as e:  # closing must not raise during shutdown
            log.debug("MQTT close: %s", e)
        # loop_stop() joins paho's thread without a timeout; a connect to a black-holed broker
        # can hold it for seconds, so join on a helper thread with a bound (SIGTERM budget).
        stopper = threading.Thread(target=self.client.loop_stop, name="mqtt-stop", daemon=True)
        stopper.start()
        stopper.join(0.5)
