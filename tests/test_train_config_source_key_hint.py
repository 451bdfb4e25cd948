"""A training config's data source with an unknown key is named with the closest known one
(``did_you_mean``), as the config's unknown sections and keys are: ``"wieght": 3`` said
``a data source has keys ignore_below, ignore_file, spec, split_file, weight (got [...])`` and
left the user to spot the typo among five names."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edgedetect.errors import ConfigError
from host_tools.ssd.config import load_config


def _config_with_source(tmp_path: Path, source: dict[str, object]) -> Path:
    path = tmp_path / "typo.json"
    path.write_text(json.dumps({"name": "typo", "data": {"sources": [source]}}))
    return path


@pytest.mark.parametrize(
    ("key", "meant"),
    [("wieght", "weight"), ("split", "split_file"), ("ignore_bellow", "ignore_below")],
)
def test_a_misspelt_source_key_names_the_one_meant(tmp_path: Path, key: str, meant: str) -> None:
    path = _config_with_source(tmp_path, {"spec": "yolo:data/x", key: 3})
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert str(err.value) == (
        f"{path} [data]: data source 'yolo:data/x': unknown key {key!r}; did you mean {meant!r}?"
    )


def test_a_source_without_spec_says_it_needs_one(tmp_path: Path) -> None:
    path = _config_with_source(tmp_path, {"weight": 2})
    with pytest.raises(ConfigError) as err:
        load_config(path)
    message = str(err.value)
    assert message.startswith(f'{path} [data]: a data source needs "spec"'), message
    assert "got keys weight" in message
