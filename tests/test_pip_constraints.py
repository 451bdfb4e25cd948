"""systemd/pip-constraints.py: the pins both Pi installs (README, install.sh) give pip."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import numpy
from packaging.specifiers import SpecifierSet

SCRIPT = Path(__file__).resolve().parents[1] / "systemd" / "pip-constraints.py"
PYPROJECT = SCRIPT.parents[1] / "pyproject.toml"


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("pip_constraints", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_numpy_1_keeps_apts_numpy_and_holds_opencv_below_its_numpy_2_releases() -> None:
    lines = _script().constraints("1.24.2")
    assert lines == ["numpy==1.24.2", "opencv-python-headless<4.12", "opencv-python<4.12"]


def test_numpy_2_pins_numpy_only_and_no_numpy_pins_nothing() -> None:
    script = _script()
    assert script.constraints("2.2.4") == ["numpy==2.2.4"]
    assert script.constraints(None) == []


def test_the_opencv_cap_leaves_a_release_the_package_accepts() -> None:
    """The cap and pyproject's OpenCV range must overlap, or a Pi install could not resolve."""
    text = PYPROJECT.read_text()
    wanted = next(line for line in text.splitlines() if '"opencv-python-headless' in line)
    package_range = SpecifierSet(wanted.strip().strip('",').removeprefix("opencv-python-headless"))
    cap = SpecifierSet(_script().constraints("1.24.2")[1].removeprefix("opencv-python-headless"))
    assert "4.11.0.86" in package_range & cap  # the aarch64 wheel the emulated Pi install gets


def test_run_as_a_script_it_prints_this_interpreters_numpy() -> None:
    out = subprocess.run(
        [sys.executable, str(SCRIPT)], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    assert out.splitlines()[0] == f"numpy=={numpy.__version__}"
