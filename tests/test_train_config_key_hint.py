"""A training config's unknown key is named with the closest known one (``did_you_mean``), as
its unknown sections and the service config's keys are: a key said ``unknown key(s) [...];
allowed: [...]`` and one of ``anchors`` only ``unknown key(s) [...]``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edgedetect.errors import ConfigError
from host_tools.ssd.config import load_config


@pytest.mark.parametrize(
    ("section", "key", "meant"), [("train", "stpes", "steps"), ("anchors", "min_scal", "min_scale")]
)
def test_a_misspelt_key_names_the_one_meant(
    tmp_path: Path, section: str, key: str, meant: str
) -> None:
    path = tmp_path / "typo.json"
    path.write_text(json.dumps({"name": "typo", section: {key: 5}}))
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert str(err.value) == f"{path} [{section}]: unknown key {key!r}; did you mean {meant!r}?"
