"""A training config's unknown section is named with the closest known one, as the service
config's unknown sections and keys are (``did_you_mean``): ``"trian"`` said only ``unknown
section(s) ['trian']``, and the user had to find the list of sections in the docs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edgedetect.errors import ConfigError
from host_tools.ssd.config import load_config


def _config_file(tmp_path: Path, section: str) -> Path:
    path = tmp_path / "typo.json"
    path.write_text(json.dumps({"name": "typo", section: {"steps": 5}}))
    return path


def test_a_misspelt_section_names_the_one_meant(tmp_path: Path) -> None:
    path = _config_file(tmp_path, "trian")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert str(err.value) == f"{path}: unknown section [trian]; did you mean 'train'?"


def test_a_section_like_none_lists_the_sections(tmp_path: Path) -> None:
    path = _config_file(tmp_path, "schedule")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    valid = "name, model, anchors, train, augment, postprocess, data"
    assert str(err.value) == f"{path}: unknown section [schedule]; valid: {valid}"
