"""``host_tools.train --limit N`` is recorded in the run's ``config.json`` (``data.limit``), so the
``--resume`` that the ``--stop-after`` line prints trains on the same N images per source. It was
not recorded: that resume, run as printed, went on with the whole data set (170 Penn-Fudan images
instead of 2) and said nothing. A resume with another ``--limit`` says so on its change line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edgedetect.errors import ConfigError
from host_tools.ssd.config import load_config


def test_a_resume_as_printed_trains_on_the_limited_images(tmp_path, capsys):
    pytest.importorskip("tensorflow", reason="TensorFlow (host extra) is not installed")
    from conftest import PENNFUDAN, need_shared
    from test_host_tools_errors import TINY, TINY_ARGS

    from host_tools.train import main

    root = need_shared(PENNFUDAN)
    config = tmp_path / "tiny.json"
    config.write_text(json.dumps(TINY))
    run = tmp_path / "run"
    args = ["--config", str(config), "--run-dir", str(run), "--dataset", f"pennfudan:{root}"]
    assert "--limit" in TINY_ARGS
    assert main([*args, "--stop-after", "1", *TINY_ARGS]) == 0
    stop_line = capsys.readouterr().out.strip().splitlines()[-1]
    assert stop_line.endswith("(export and validate read the checkpoints/ folder meanwhile)")
    assert main(["--run-dir", str(run), "--resume", "--no-progress"]) == 0  # as the line says
    out = capsys.readouterr().out
    assert f"{TINY['name']}, 2 images, steps 1->{TINY['train']['steps']}" in out, out
    assert "resume: changed" not in out
    assert json.loads((run / "config.json").read_text())["data"]["limit"] == 2
    again = ["--run-dir", str(run), "--resume", "--steps", "3", "--limit", "3", "--no-progress"]
    assert main(again) == 0
    out = capsys.readouterr().out
    assert f"{TINY['name']}, 3 images, steps 2->3" in out, out
    assert "data.limit 2 -> 3" in out, out


@pytest.mark.parametrize("limit", [0, 2.5, "2", True])
def test_a_config_limit_that_is_no_count_is_refused(tmp_path: Path, limit: object) -> None:
    path = tmp_path / "limit.json"
    path.write_text(json.dumps({"name": "limit", "data": {"sources": [], "limit": limit}}))
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert str(err.value) == (
        f"{path}: data.limit must be a whole number >= 1 (images per source) or null, "
        f"not {json.dumps(limit)}"
    )


def test_a_config_limit_is_read(tmp_path: Path) -> None:
    path = tmp_path / "limit.json"
    path.write_text(json.dumps({"name": "limit", "data": {"limit": 5}}))
    assert load_config(path).data.limit == 5
