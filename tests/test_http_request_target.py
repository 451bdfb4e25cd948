"""The request target is split into path and query as it is, never read as a URL with a host:
`GET //[x HTTP/1.1` made urlsplit raise (an unclosed IPv6 bracket in what it took for a host),
so the client got no answer at all and every such request put a 14-line traceback at ERROR
level into the journal; and `GET //host/healthz` was routed as /healthz (the `//host` part
dropped as a network location) although `//healthz` is 404."""

from __future__ import annotations

import logging

import pytest
from test_http_hardening import _get, serving


@pytest.mark.parametrize("path", ["//[x", "//[x/healthz", "//[::1/metrics?x=1", "/a//[b"])
def test_an_odd_path_is_answered_404_without_a_traceback(
    path: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG), serving() as server:
        assert _get(server, path)[0] == 404
        assert _get(server, "/healthz")[0] == 200  # and the server goes on
    assert "Traceback" not in caplog.text and "HTTP request failed" not in caplog.text
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


@pytest.mark.parametrize(
    "path", ["//host/healthz", "//127.0.0.1/metrics", "//[::1]/healthz", "//x/snapshot.jpg"]
)
def test_a_path_beginning_with_two_slashes_is_not_read_as_a_host(path: str) -> None:
    with serving() as server:
        assert _get(server, path)[0] == 404


def test_path_and_query_still_split_and_decode_once() -> None:
    with serving() as server:
        assert _get(server, "/healthz?x=1")[0] == 200
        assert _get(server, "/%68ealthz?a=%2F")[0] == 200
        assert _get(server, "/healthz#frag")[0] == 200
        assert _get(server, "/snapshot.jpg?t=1")[0] == 200
