"""systemd/config.example.toml says "every number has the range shown": each numeric key's comment
states its range, and that range is the one the config accepts. [motion] pixel_delta said
(0..255) while 0 is refused ("must be 1..255"), and [tracker] iou_threshold, [mqtt] port,
[http] jpeg_quality, [motion] min_area and [motion] width showed no range at all."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from edgedetect.errors import ConfigError
from edgedetect.service.config import SCHEMA, validate

EXAMPLE = Path(__file__).resolve().parents[1] / "systemd" / "config.example.toml"
RANGE = re.compile(r"(\d[\d,]*(?:\.\d+)?)\s*\.\.\s*(\d[\d,]*(?:\.\d+)?)(\s*x)?")


def _comments() -> dict[tuple[str, str], str]:
    """The comment block right above each `key = ...` line, per section."""
    found: dict[tuple[str, str], str] = {}
    section, block = "", list[str]()
    for line in EXAMPLE.read_text(encoding="utf-8").splitlines():
        if m := re.match(r"^\[(\w+)\]", line):
            section, block = m.group(1), []
        elif line.startswith("#"):
            block.append(line)
        elif m := re.match(r"^(\w+) = ", line):
            found[(section, m.group(1))] = " ".join(block)
            block = []
    return found


NUMERIC = [
    (section, name)
    for section, keys in SCHEMA.items()
    for name, key in keys.items()
    if bool not in key.types and (int in key.types or float in key.types)
]


# Keys checked one at a time: the [clips] rules between keys (the ring buffer, pre_s < max_s) are
# kept out of the way by these companions.
ALONE = {"clips": {"pre_s": 0.0, "max_s": 3600.0, "buffer_mb": 4096.0}}


def _accepts(section: str, name: str, value: float) -> bool:
    try:
        validate({section: {**ALONE.get(section, {}), name: value}}, "<test>", check_files=False)
    except ConfigError as e:
        assert f"[{section}] {name}" in str(e), e  # refused for this key, not another
        return False
    return True


@pytest.mark.parametrize(("section", "name"), NUMERIC)
def test_every_number_in_the_example_shows_the_range_the_config_accepts(
    section: str, name: str
) -> None:
    comment = _comments()[(section, name)]
    m = RANGE.search(comment)
    assert m, f"[{section}] {name}: no range in its comment: {comment!r}"
    is_int = float not in SCHEMA[section][name].types
    kind = int if is_int else float
    lo = kind(m.group(1).replace(",", ""))
    assert _accepts(section, name, lo), f"[{section}] {name} = {lo} (shown) is refused"
    below = lo - 1 if is_int else lo - 0.001
    if below >= 0 or section == "filters":
        assert not _accepts(section, name, below), f"[{section}] {name} = {below} is accepted"
    if not m.group(3):  # "1..2 x CPU count" is not a fixed bound
        hi = kind(m.group(2).replace(",", ""))
        assert _accepts(section, name, hi), f"[{section}] {name} = {hi} (shown) is refused"
        above = hi + 1 if is_int else hi + 0.001
        assert not _accepts(section, name, above), f"[{section}] {name} = {above} is accepted"
