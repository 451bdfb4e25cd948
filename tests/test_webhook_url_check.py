"""`[webhook] url` values that can never be POSTed to are refused up front, with one line and
exit 2: an unclosed IPv6 bracket made check-config and the service's start end with
"internal error: ValueError: Invalid IPv6 URL" and exit 1 (systemd restarts that, in a loop);
a URL without a host, with a port that is not a number 1..65535, or with a space or control
character was accepted and then failed on every event."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgedetect.errors import ConfigError
from edgedetect.service.cli import check_config
from edgedetect.service.config import load_config

SOURCE = Path(__file__).resolve().parents[1] / "data" / "sample.mp4"


def _config(tmp_path: Path, url: str) -> Path:
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[source]\nspec = "{SOURCE}"\n[webhook]\nurl = "{url}"\n', encoding="utf-8")
    return cfg


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://[::1/hook", "not a valid URL"),
        ("http:///hook", "no host"),
        ("https://?x=1", "no host"),
        ("http://", "no host"),
        ("http://127.0.0.1:abc/hook", "port"),
        ("http://127.0.0.1:99999/hook", "port"),
        ("http://127.0.0.1:0/hook", "port"),
        ("http://127.0.0.1/a hook", "space"),
        ("http://exa mple.com/hook", "space"),
        ("http://127.0.0.1/a\\thook", "control character"),
    ],
)
def test_a_webhook_url_that_cannot_be_posted_to_is_a_one_line_config_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], url: str, why: str
) -> None:
    cfg = _config(tmp_path, url)
    with pytest.raises(ConfigError) as info:
        load_config(str(cfg))
    assert str(info.value).startswith(f"{cfg}: [webhook] url = "), info.value
    assert why in str(info.value), info.value
    assert check_config(str(cfg)) == 2
    err = capsys.readouterr().err
    assert err.startswith("edgedetect: error: ") and len(err.splitlines()) == 1, err


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/hook",
        "https://example.com:8443/a/b?c=d",
        "http://[::1]:8080/hook",
        "http://homeassistant.local:8123/api/webhook/abc-123",
    ],
)
def test_good_webhook_urls_are_accepted(tmp_path: Path, url: str) -> None:
    assert load_config(str(_config(tmp_path, url))).webhook.url == url
