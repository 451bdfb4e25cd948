"""Values `check-config` must refuse because the running service would fail on them: webhook
headers http.client refuses, MQTT topics paho refuses, an empty broker host, an events file that
is not a regular file, an empty class list, self-crossing polygons, and a listen address whose
host is not an address. Each is one line naming the section, the key and the fix."""

from __future__ import annotations

import http.client
import os
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgedetect.errors import LabelsError
from edgedetect.service.cli import check_config
from edgedetect.service.config import parse_listen

BASE = '[source]\nspec = "usb:0"\n[events]\njsonl = ""\n[snapshots]\nenabled = false\n'


def check(
    tmp_path: Path, text: str, capsys: pytest.CaptureFixture[str], base: str = BASE
) -> tuple[int, str]:
    path = tmp_path / "config.toml"
    path.write_text(base + text)
    code = check_config(str(path))
    captured = capsys.readouterr()
    return code, captured.err if code else captured.out


def one_line(code: int, err: str) -> str:
    assert code == 2, err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    return lines[0]


# ----------------------------------------------------------------- 1. webhook headers
@pytest.mark.parametrize(
    "table, words",
    [
        ('{ "X" = "a\\r\\nInjected: 1" }', ["header 'X'", "CR", "LF", "one line"]),
        ('{ "X" = "a\\nb" }', ["header 'X'", "CR", "LF"]),
        ('{ "X" = "a\\u0007b" }', ["header 'X'", "control character"]),
        ('{ "X" = "price \\u20ac" }', ["header 'X'", "Latin-1"]),
        ('{ "Bad Name" = "v" }', ["header name 'Bad Name'", "token", "letters, digits"]),
        ('{ "X-Y:" = "v" }', ["header name 'X-Y:'", "token"]),
        ('{ "" = "v" }', ["header name ''", "token"]),
        ('{ "X\\r\\nY" = "v" }', ["header name", "token"]),
    ],
)
def test_webhook_headers_that_http_client_refuses(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], table: str, words: list[str]
) -> None:
    line = one_line(*check(tmp_path, f"[webhook]\nheaders = {table}\n", capsys))
    assert "[webhook] headers" in line, line
    for w in words:
        assert w in line, line


def test_webhook_headers_that_work_are_accepted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    table = '{ Authorization = "Bearer abc", "X-Tab" = "a\\tb", "X-Empty" = "", "X_1.~!" = "é" }'
    code, out = check(tmp_path, f"[webhook]\nheaders = {table}\n", capsys)
    assert code == 0 and "OK" in out, out
    # a name is an ASCII token, unlike a value
    code, err = check(tmp_path, '[webhook]\nheaders = { "X-Café" = "v" }\n', capsys)
    assert code == 2 and "token" in err


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.text(max_size=8), st.text(max_size=8), max_size=3))
def test_accepted_headers_are_sent_by_http_client(headers: dict[str, str]) -> None:
    """Whatever the check accepts, http.client's putheader accepts too (no connection made)."""
    from edgedetect.service.config_checks import _headers

    if _headers(headers) is not None:
        return
    conn = http.client.HTTPConnection("localhost")
    conn.putrequest("POST", "/")
    for name, value in headers.items():
        conn.putheader(name, value)


# ----------------------------------------------------------------- 2. MQTT topics
@pytest.mark.parametrize(
    "text, key, words",
    [
        ('topic_prefix = "a/#"', "[mqtt] topic_prefix", ["wildcard", "'#'", "'+'"]),
        ('topic_prefix = "home/+/cam"', "[mqtt] topic_prefix", ["wildcard"]),
        ('topic_prefix = "a#b"', "[mqtt] topic_prefix", ["wildcard"]),
        ('discovery_prefix = "ha/#"', "[mqtt] discovery_prefix", ["wildcard"]),
        ('topic_prefix = "a\\u0001b"', "[mqtt] topic_prefix", ["control character"]),
        ('discovery_prefix = "ha\\u0085"', "[mqtt] discovery_prefix", ["control character"]),
        ('topic_prefix = "a\\ufffeb"', "[mqtt] topic_prefix", ["noncharacter"]),
        (f'topic_prefix = "{"x" * 40_000}"', "[mqtt] topic_prefix", ["bytes", "shorter"]),
        (f'device_name = "{"x" * 40_000}"', "[mqtt] device_name", ["bytes", "shorter"]),
    ],
)
def test_mqtt_topics_that_paho_or_the_broker_refuse(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, key: str, words: list[str]
) -> None:
    line = one_line(*check(tmp_path, f"[mqtt]\n{text}\n", capsys))
    assert key in line, line
    for w in words:
        assert w in line, line


def test_mqtt_topics_that_work_are_accepted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = '[mqtt]\ntopic_prefix = "home/porch cam/édge"\ndiscovery_prefix = "homeassistant/"\n'
    code, out = check(tmp_path, text, capsys)
    assert code == 0 and "OK" in out, out


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=12))
def test_accepted_topic_prefixes_are_published_by_paho(prefix: str) -> None:
    from edgedetect.service.config_checks import _topic

    if _topic(prefix) is not None or not prefix.strip("/"):
        return
    for suffix in ("event", "count", "zone/a/count", "line/b-2/out"):
        mqtt.Client._raise_for_invalid_topic(f"{prefix.strip('/')}/{suffix}".encode())


# ----------------------------------------------------------------- 3. MQTT host
@pytest.mark.parametrize("host", ['""', '"   "'])
def test_enabled_mqtt_needs_a_host(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], host: str
) -> None:
    line = one_line(*check(tmp_path, f"[mqtt]\nenabled = true\nhost = {host}\n", capsys))
    assert "[mqtt] host" in line and "broker" in line and "enabled = false" in line, line


def test_disabled_mqtt_may_leave_the_host_empty(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = check(tmp_path, '[mqtt]\nenabled = false\nhost = ""\n', capsys)
    assert code == 0 and "OK" in out, out


# ----------------------------------------------------------------- 4. the events file
def _events_base(path: Path) -> str:
    return f'[source]\nspec = "usb:0"\n[events]\njsonl = "{path}"\n[snapshots]\nenabled = false\n'


@pytest.mark.parametrize(
    "kind, words",
    [
        ("fifo", "is a FIFO, not a regular file"),
        ("device", "is a character device, not a regular file"),
        ("directory", "is a folder, not a regular file"),
    ],
)
def test_events_file_that_is_not_a_regular_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], kind: str, words: str
) -> None:
    """A FIFO with no reader freezes the service at the first event; a device or a folder
    cannot be rotated."""
    target = Path("/dev/null") if kind == "device" else tmp_path / "events.jsonl"
    if kind == "fifo":
        os.mkfifo(target)
    elif kind == "directory":
        target.mkdir()
    line = one_line(*check(tmp_path, "", capsys, base=_events_base(target)))
    assert f"[events] jsonl = '{target}'" in line and words in line, line
    assert "point it at a file" in line, line


def test_events_file_regular_or_new_is_accepted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    existing = tmp_path / "old.jsonl"
    existing.write_text("")
    for target in (existing, tmp_path / "new.jsonl"):
        code, out = check(tmp_path, "", capsys, base=_events_base(target))
        assert code == 0 and "OK" in out, out


def test_model_path_that_is_a_fifo_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fifo = tmp_path / "m.tflite"
    os.mkfifo(fifo)
    line = one_line(*check(tmp_path, f'[model]\npath = "{fifo}"\n', capsys))
    assert "[model] path" in line and "is a FIFO, not a regular file" in line, line
    assert "not found" not in line, line


# ----------------------------------------------------------------- 5. model classes
@pytest.mark.parametrize("classes", ["[]", '[" "]'])
def test_empty_class_list_is_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], classes: str
) -> None:
    line = one_line(*check(tmp_path, f"[model]\nclasses = {classes}\n", capsys))
    assert "[model] classes" in line and '["all"]' in line and "class names" in line, line


def test_detector_refuses_an_empty_class_list(coco_model: tuple[Path, Path]) -> None:
    """Like `--classes ''`: no class list silently means every class (None or "all" does)."""
    from edgedetect.detector import Detector

    model, labels = coco_model
    for empty in ([], ["", " "]):
        with pytest.raises(LabelsError, match="empty class list.*'all'"):
            Detector(model, labels=labels, classes=empty)
    det = Detector(model, labels=labels)
    with pytest.raises(LabelsError, match="empty class list"):
        det.configure(classes=[])
    assert det.class_filter is not None  # unchanged after the error
    det.configure(classes=["all"])
    assert det.class_filter is None


# ----------------------------------------------------------------- 6. self-crossing polygons
@pytest.mark.parametrize(
    "text, key, words",
    [
        (
            "[zones.a]\npolygon = [[0, 0], [1, 1], [1, 0], [0, 1]]\n",
            "[zones.a] polygon",
            ["edges [0, 0]-[1, 1] and [1, 0]-[0, 1] cross", "in order around the zone"],
        ),
        (  # lopsided: the shoelace area is not zero, the edges still cross
            "[zones.a]\npolygon = [[0, 0], [1, 1], [1, 0], [0, 0.5]]\n",
            "[zones.a] polygon",
            ["cross", "in order around the zone"],
        ),
        (  # a figure eight touching itself at one point
            "[zones.a]\npolygon = [[0, 0], [0.5, 0.5], [1, 0], [1, 1], [0.5, 0.5], [0, 1]]\n",
            "[zones.a] polygon",
            ["cross", "in order around the zone"],
        ),
        (
            "[masks]\npolygons = [[[0, 0], [1, 0], [1, 1], [0, 1]],"
            " [[0, 0], [1, 1], [1, 0], [0, 1]]]\n",
            "[masks] polygons",
            ["polygon 2: its edges", "cross", "in order around the mask"],
        ),
        (  # truly degenerate: keep the collinear message
            "[zones.a]\npolygon = [[0, 0], [0.25, 0.25], [0.5, 0.5], [1, 1]]\n",
            "[zones.a] polygon",
            ["no area", "one line"],
        ),
        (
            "[zones.a]\npolygon = [[0, 0], [0, 0], [0.5, 0.5], [0.5, 0.5]]\n",
            "[zones.a] polygon",
            ["no area", "one line"],
        ),
    ],
)
def test_self_crossing_polygons(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, key: str, words: list[str]
) -> None:
    line = one_line(*check(tmp_path, text, capsys))
    assert key in line, line
    for w in words:
        assert w in line, line


@pytest.mark.parametrize(
    "polygon",
    [
        "[[0, 0], [1, 0], [0.5, 0.5], [1, 1], [0, 1]]",  # concave
        "[[0, 0], [1, 0], [1, 1], [0, 0]]",  # closed by repeating the first point
        "[[0, 0], [1, 0], [1, 0], [1, 1]]",  # a point listed twice in a row
        "[[0, 0], [0.5, 0], [1, 0], [1, 1], [0, 1]]",  # a point on a straight edge
    ],
)
def test_simple_polygons_are_accepted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], polygon: str
) -> None:
    text = f"[zones.a]\npolygon = {polygon}\n[masks]\npolygons = [{polygon}]\n"
    code, out = check(tmp_path, text, capsys)
    assert code == 0 and "OK" in out, out


# ----------------------------------------------------------------- 7. listen addresses
@pytest.mark.parametrize(
    "listen, words",
    [
        ("999.1.1.1:80", "999.1.1.1 is not a valid IPv4 address"),
        ("1.2.3:80", "1.2.3 is not a valid IPv4 address"),
        ("[::g]:80", "::g is not a valid IP address"),
        ("::g:80", "::g is not a valid IP address"),
        ("bad host:80", "'bad host' is not a host name"),
        ("-x.example:80", "'-x.example' is not a host name"),
        ("a..b:80", "'a..b' is not a host name"),
        ("[::1:80", "[::1 has unbalanced brackets"),
    ],
)
def test_listen_host_is_checked_before_the_token_rule(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], listen: str, words: str
) -> None:
    line = one_line(*check(tmp_path, f'[http]\nlisten = "{listen}"\n', capsys))
    assert f"[http] listen = '{listen}'" in line and words in line, line
    assert "token" not in line, line
    assert "e.g. 127.0.0.1:8080" in line, line


@pytest.mark.parametrize(
    "listen, host",
    [
        ("0.0.0.0:8080", "0.0.0.0"),
        ("[::]:8080", "::"),
        ("[::1]:8080", "::1"),
        ("localhost:8080", "localhost"),
        ("pi-4.local.:8080", "pi-4.local."),
        (":0", "127.0.0.1"),
    ],
)
def test_listen_addresses_that_work(listen: str, host: str) -> None:
    assert parse_listen(listen)[0] == host
