"""Preview selection off the Pi (no camera preview, no display) and the RGBA overlay drawing."""

from __future__ import annotations

import numpy as np
import pytest

from edgedetect.service.preview import OVERLAY_WIDTH, draw_overlay_rgba, open_preview


class FolderSourceTestDouble:
    """Stands in for a non-camera source: the preview must not try picamera2 for it."""


def test_headless_runs_without_preview(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    with caplog.at_level("WARNING", logger="edgedetect.preview"):
        assert open_preview("auto", FolderSourceTestDouble()) is None
    assert "no display" in caplog.text and "running without preview" in caplog.text


def test_drm_needs_the_picam_source(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("WARNING", logger="edgedetect.preview"):
        assert open_preview("drm", FolderSourceTestDouble()) is None
    assert "needs the 'picam' source" in caplog.text


def test_overlay_is_transparent_except_boxes() -> None:
    rgba = draw_overlay_rgba(
        (1280, 720), np.array([[128, 72, 640, 360]], np.float32), ["person #1"]
    )
    assert rgba.shape == (360, OVERLAY_WIDTH, 4) and rgba.dtype == np.uint8
    alpha = rgba[..., 3]
    assert alpha[36, 64:320].min() == 255  # top edge of the box, scaled by 0.5
    assert alpha[100:170, 100:300].max() == 0  # inside the box stays see-through
    assert alpha[300:, 400:].max() == 0
