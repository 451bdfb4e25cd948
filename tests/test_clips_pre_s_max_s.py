"""[clips] pre_s not shorter than max_s is refused: max_s counts from the first pre-roll frame,
so with pre_s = 10 and max_s = 1 every episode began with a clip holding the whole 10 s
pre-roll (51 frames at 5 fps), ten times the "longest clip" max_s promises, then split at
once. check-config said OK."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgedetect.errors import ConfigError
from edgedetect.service.config import load_config

SOURCE = Path(__file__).resolve().parents[1] / "data" / "sample.mp4"


def _config(tmp_path: Path, pre_s: float, max_s: float) -> Path:
    cfg = tmp_path / "c.toml"
    cfg.write_text(
        f'[source]\nspec = "{SOURCE}"\n[clips]\nenabled = true\ndir = "{tmp_path / "clips"}"\n'
        f"pre_s = {pre_s}\nmax_s = {max_s}\n",
        encoding="utf-8",
    )
    return cfg


@pytest.mark.parametrize(("pre_s", "max_s"), [(10.0, 1.0), (3.0, 3.0), (60.0, 30.0)])
def test_a_pre_roll_as_long_as_the_longest_clip_is_refused(
    tmp_path: Path, pre_s: float, max_s: float
) -> None:
    cfg = _config(tmp_path, pre_s, max_s)
    with pytest.raises(ConfigError) as info:
        load_config(str(cfg))
    msg = str(info.value)
    assert msg.startswith(f"{cfg}: [clips] pre_s = {pre_s!r}: ") and "max_s" in msg, msg


@pytest.mark.parametrize(("pre_s", "max_s"), [(3.0, 120.0), (0.0, 1.0), (2.5, 3.0)])
def test_a_pre_roll_shorter_than_the_longest_clip_is_fine(
    tmp_path: Path, pre_s: float, max_s: float
) -> None:
    c = load_config(str(_config(tmp_path, pre_s, max_s))).clips
    assert (c.pre_s, c.max_s) == (pre_s, max_s)
