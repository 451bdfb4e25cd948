"""`--config ""` (an unset variable in `edgedetect run --config "$CONFIG"`) is an error: `run`
took the empty string for no --config at all and ran the plain pipeline on the default source
(the bundled sample, or the Pi camera), exit 0, without the service; check-config "" said
".: is a folder"."""

from __future__ import annotations

import pytest

from edgedetect import cli
from edgedetect.errors import ConfigError
from edgedetect.service.config import load_config


@pytest.mark.parametrize("given", ["", "  "])
def test_run_with_an_empty_config_path_is_a_one_line_error(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, given: str
) -> None:
    ran = []
    monkeypatch.setattr(cli, "_open_run", lambda args: ran.append(args))  # the plain pipeline
    assert cli.main(["run", "--config", given, "--no-preview", "--max-frames", "1"]) == 2
    assert not ran
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("edgedetect:")]
    assert len(lines) == 1 and "config" in lines[0] and "empty" in lines[0], err


@pytest.mark.parametrize("given", ["", "  "])
def test_check_config_with_an_empty_path_says_it_is_empty(
    capsys: pytest.CaptureFixture[str], given: str
) -> None:
    assert cli.main(["check-config", given]) == 2
    err = capsys.readouterr().err
    assert "is a folder" not in err and "empty" in err, err
    with pytest.raises(ConfigError, match="empty"):
        load_config(given)
