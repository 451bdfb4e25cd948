"""A stream URL with an unclosed IPv6 bracket (`rtsp://[::1/live`, a typo for
`rtsp://[::1]/live`) is a one-line source error, exit 2: urlsplit's ValueError escaped, so
`run --source`, `run --config` and check-config ended with "internal error: ValueError: Invalid
IPv6 URL" and exit 1 (which systemd restarts, in a loop)."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgedetect.cli import main
from edgedetect.errors import SourceError, SourceLost
from edgedetect.service.cli import check_config
from edgedetect.sources import check_stream_url, open_source

URLS = ["rtsp://[::1/live", "http://[fe80::1/x.mjpg", "rtsp://admin:pw@[::1/live"]


@pytest.mark.parametrize("url", URLS)
def test_an_unclosed_ipv6_bracket_is_a_spec_error(url: str) -> None:
    for call in (check_stream_url, open_source):
        with pytest.raises(SourceError, match=r"not a valid URL .*write \w+://HOST") as info:
            call(url)
        assert not isinstance(info.value, SourceLost)  # it can never connect: not "retry later"
        assert "pw" not in str(info.value)


@pytest.mark.parametrize("url", URLS[:1])
def test_run_and_check_config_say_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], url: str
) -> None:
    assert main(["run", "--source", url, "--no-preview"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("edgedetect: error: ") and "internal error" not in err, err
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[source]\nspec = "{url}"\n', encoding="utf-8")
    assert check_config(str(cfg)) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"edgedetect: error: {cfg}: [source] spec: "), err
    assert len(err.splitlines()) == 1
