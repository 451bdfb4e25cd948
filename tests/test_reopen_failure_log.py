"""The line a failed reopen logs names the source, what failed and when the next try is, without
the list of every accepted source spec; that list is kept for a spec that cannot be parsed at
start-up. Each test failed before its fix."""

from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np
import pytest

from edgedetect.errors import SourceError
from edgedetect.resilient import ResilientSource
from edgedetect.sources import SPEC_HELP, open_source


def small_video(path: Path, frames: int = 6) -> bytes:
    """A real mp4v clip of `frames` 64x48 frames; returns its bytes."""
    out = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"mp4v"), 10.0, (64, 48))
    for i in range(frames):
        out.write(np.full((48, 64, 3), 20 * i % 256, np.uint8))
    out.release()
    return path.read_bytes()


@pytest.mark.parametrize("form", ["file:{}", "{}"])
def test_reopen_failure_line_is_short_and_names_source_failure_and_next_try(
    tmp_path: Path, form: str, caplog: pytest.LogCaptureFixture
) -> None:
    clip = tmp_path / "clip.mp4"
    saved = small_video(clip)
    spec = form.format(clip)
    errors: list[str] = []

    def on_event(kind: str) -> None:
        if kind == "reconnect" and src.last_error:
            errors.append(src.last_error)
            if len(errors) == 3:  # two reopens failed: put the file back
                clip.write_bytes(saved)

    src = ResilientSource(
        spec,
        lambda s: open_source(s, loop=True),
        loop=True,
        reconnect_min_s=0.01,
        reconnect_max_s=0.05,
        stall_timeout_s=5,
        on_event=on_event,
    )
    src.open()
    caplog.set_level(logging.WARNING, logger="edgedetect.source")
    try:
        assert src.read() is not None
        clip.unlink()
        for _ in range(40):  # through the end of the clip, the lost file and back
            assert src.read() is not None
            if len(errors) >= 3:
                break
        assert len(errors) >= 3
    finally:
        src.close()
    lines = [r.getMessage() for r in caplog.records if "reopen failed" in r.getMessage()]
    assert len(lines) == 1, caplog.text
    line = lines[0]
    assert f"source {spec}" in line
    assert f"no such file or folder {clip}" in line
    assert "next try in " in line
    assert "usb:N" not in line and SPEC_HELP not in line  # not the list of every spec
    assert all(SPEC_HELP not in e for e in errors)  # /healthz's source_error neither


def test_reopen_failure_says_when_the_next_try_is(caplog: pytest.LogCaptureFixture) -> None:
    """The delay logged is the backoff actually waited, not the configured maximum."""
    calls = [0]

    def opener(spec: str):
        calls[0] += 1
        if calls[0] == 1:
            raise SourceError(f"unknown source spec {spec!r}", hint=SPEC_HELP)
        src.close()  # stop the loop after the second try
        raise SourceError("second")

    src = ResilientSource("usb:7", opener, reconnect_min_s=0.02, reconnect_max_s=30.0)
    caplog.set_level(logging.WARNING, logger="edgedetect.source")
    assert src._connect() is False
    line = next(r.getMessage() for r in caplog.records if "reopen failed" in r.getMessage())
    assert "next try in 0.02 s" in line, line
    assert SPEC_HELP not in line


def test_unparseable_spec_at_start_keeps_the_list_of_specs() -> None:
    with pytest.raises(SourceError, match="unknown source spec 'foo:bar'.*usb:N"):
        open_source("foo:bar")
    with pytest.raises(SourceError, match="no such file or folder webcam .*usb:N"):
        open_source("webcam")  # a bare word: maybe a mistyped spec


def test_missing_path_at_start_says_so_without_the_list(tmp_path: Path) -> None:
    missing = tmp_path / "clips" / "door.mp4"
    with pytest.raises(SourceError) as info:
        open_source(str(missing))
    assert f"no such file or folder {missing}" in str(info.value)
    assert SPEC_HELP not in str(info.value)
