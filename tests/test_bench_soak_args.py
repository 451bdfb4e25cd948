"""benchmarks/soak.py with --warmup at or past --frames measured nothing: its first and last
samples were the same moment, and it printed "rss_growth_mb": 0.0, "fps": 0.0 and "pass": true,
exit 0. It must refuse the arguments (exit 2, naming both) before starting the service."""

from __future__ import annotations

import importlib.util
import sys
from types import ModuleType

import pytest
from conftest import REPO


def _soak(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """benchmarks/soak.py as a module (a script; registered for its dataclasses meanwhile)."""
    spec = importlib.util.spec_from_file_location("soak", REPO / "benchmarks" / "soak.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "soak", module)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("frames,warmup", [(10, 50), (100, 100), (100, -1)])
def test_soak_refuses_a_warmup_not_below_frames(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, frames: int, warmup: int
) -> None:
    model = REPO / "models" / "person_ssdlite_int8.tflite"
    argv = ["--frames", str(frames), "--warmup", str(warmup), "--model", str(model)]
    with pytest.raises(SystemExit) as exited:
        _soak(monkeypatch).main(argv)
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert f"--warmup {warmup}" in err and f"--frames {frames}" in err
