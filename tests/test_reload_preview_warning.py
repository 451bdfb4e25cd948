"""A reload that changes [preview] says that it does not apply it: the preview is opened at start
only, and a SIGHUP that turned it on or off (or changed its backend) was logged as "reloaded"
like any other while the running preview stayed as it was."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from test_service_support import RunningService, poll, service_config, to_toml


def test_a_reload_that_changes_the_preview_says_it_takes_a_restart(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    raw = service_config(tmp_path)  # [preview] enabled = false
    config = tmp_path / "config.toml"
    config.write_text(to_toml(raw))
    with caplog.at_level(logging.INFO, logger="edgedetect"), RunningService(config) as rs:
        raw["preview"] = {"enabled": True, "backend": "opencv"}
        raw["model"]["threshold"] = 0.6
        config.write_text(to_toml(raw))
        rs.svc.request_reload()
        assert poll(lambda: rs.svc.reloads == 1, 20)
        assert rs.svc.preview is None and rs.svc.cfg.model.threshold == 0.6
        warned = [r for r in caplog.records if "[preview]" in r.getMessage()]
        assert len(warned) == 1 and warned[0].levelno == logging.WARNING, caplog.text
        assert "restart" in warned[0].getMessage()
        caplog.clear()
        raw["model"]["threshold"] = 0.7  # the preview unchanged: nothing said about it
        config.write_text(to_toml(raw))
        rs.svc.request_reload()
        assert poll(lambda: rs.svc.reloads == 2, 20)
        assert not [r for r in caplog.records if "[preview]" in r.getMessage()]
