"""Property: whatever values a TOML file holds, `check-config` answers OK (0) or one error line (2),
never a traceback. Random values of every TOML type go into every key of the schema."""

from __future__ import annotations

import contextlib
import io
import json
import math
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edgedetect.service.cli import check_config
from edgedetect.service.config import NAMED_SCHEMA, SCHEMA

KEYS = [(section, key) for section, keys in SCHEMA.items() for key in keys]
KEYS += [
    (f"{kind}.{name}", key)
    for kind, keys in NAMED_SCHEMA.items()
    for key in keys
    for name in ("a", "b-2")
]

scalars = st.one_of(
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.sampled_from(
        [
            "",
            "0.0.0.0:80",
            "127.0.0.1:0",
            "usb:0",
            "foo:bar",
            "rtsp://a:b@h/s",
            "dir:.",
            "/proc/x",
            "picam:0x0",
            "person",
            "all",
            "/",
            ".",
            "~",
        ]
    ),
)
near_bounds = st.sampled_from(
    [
        0,
        1,
        2,
        4,
        5,
        30,
        31,
        64,
        65,
        255,
        1000,
        65535,
        100000,
        100001,
        -1,
        0.0,
        0.05,
        0.1,
        0.49,
        0.5,
        1.0,
        29.9,
        30.5,
        3600.0,
        3601.0,
    ]
)
coordinates = st.one_of(
    st.floats(min_value=-0.5, max_value=1.5), st.sampled_from([0, 1, 0.5]), scalars
)
points = st.lists(st.lists(coordinates, min_size=1, max_size=3), max_size=5)  # polygons, lines
values = st.one_of(
    scalars,
    near_bounds,
    st.lists(scalars, max_size=3),
    points,
    st.lists(points, max_size=2),
    st.dictionaries(st.text(max_size=5), scalars, max_size=2),
)


def toml_value(v: object) -> str:
    """TOML text for one value (JSON strings are valid TOML basic strings)."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return repr(v)
    if isinstance(v, int):
        return str(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    assert isinstance(v, dict)
    return "{" + ", ".join(f"{json.dumps(k)} = {toml_value(x)}" for k, x in v.items()) + "}"


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("property")


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.dictionaries(st.sampled_from(KEYS), values, min_size=1, max_size=4))
def test_check_config_never_shows_a_traceback(workdir: Path, picked: dict) -> None:
    base = {
        "events": {"jsonl": str(workdir / "events.jsonl")},
        "snapshots": {"dir": str(workdir / "snaps")},
        "source": {"spec": "usb:0"},
    }
    for (section, key), value in picked.items():
        base.setdefault(section, {})[key] = value
    text = "\n".join(
        f"[{s}]\n" + "\n".join(f"{json.dumps(k)} = {toml_value(v)}" for k, v in kv.items())
        for s, kv in base.items()
    )
    path = workdir / "random.toml"
    path.write_text(text + "\n")
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = check_config(str(path))  # an exception here fails the test: that is the property
    if code == 0:
        assert "OK" in out.getvalue()
    else:
        assert code == 2
        lines = [ln for ln in err.getvalue().splitlines() if ln.startswith("edgedetect: error: ")]
        assert len(lines) == 1 and str(path) in lines[0], err.getvalue()
