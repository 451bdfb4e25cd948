"""``edgedetect bench --help`` says what ``--source`` defaults to without scikit-image.

It said the default clip "needs scikit-image", while bench (``edgedetect.bench._bench_clip``)
falls back to the bundled sample, which is what a Pi install (``pip install -e .``) measures."""

from __future__ import annotations

import contextlib
import io

import pytest

from edgedetect.cli import main


def test_bench_help_names_the_fallback_clip():
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit):
        main(["bench", "--help"])
    text = " ".join(out.getvalue().split())
    assert "needs scikit-image" not in text
    assert "without scikit-image, as on a Pi, the bundled sample data/sample.mp4" in text
