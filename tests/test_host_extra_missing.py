"""A host tool run in a venv without the ``[host]`` extra (``pip install -e .`` only, the Pi
runtime) says which package is missing and how to install it, in one line with exit code 2.

Before, the TensorFlow tools died at import with a ``ModuleNotFoundError`` traceback (exit 1),
and ``host_tools.evaluate`` scored every image and then died the same way on pycocotools. The
missing package is simulated the way Python itself spells "not importable": ``sys.modules[name]
= None`` makes ``import name`` raise ``ModuleNotFoundError`` with ``name`` set, as in a venv that
lacks it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from conftest import INRIA_TEST, REPO, need_shared

RUN_AS_TOOL = (
    "import runpy, sys\n"
    "for name in sys.argv[1].split(','):\n"
    "    sys.modules[name] = None\n"
    "tool = sys.argv[2]\n"
    "sys.argv = [tool] + sys.argv[3:]\n"
    "runpy.run_module(tool, run_name='__main__', alter_sys=True)\n"
)


def run_without(
    missing: str, tool: str, *args: str, cwd: Path = REPO
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", RUN_AS_TOOL, missing, tool, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )


def one_line(proc: subprocess.CompletedProcess) -> str:
    lines = proc.stderr.strip().splitlines()
    assert "Traceback" not in proc.stderr and len(lines) == 1, proc.stderr
    return lines[0]


@pytest.mark.parametrize(
    "tool", ["train", "validate", "export", "quantize", "import_weights", "import_tflite"]
)
def test_tensorflow_tool_without_tensorflow_is_one_line(tool):
    proc = run_without("tensorflow", f"host_tools.{tool}", "--help")
    assert proc.returncode == 2, proc.stderr
    line = one_line(proc)
    assert line.startswith(f"{tool}: error: tensorflow is not installed"), line
    assert 'pip install -e ".[host]"' in line


def test_tf_keras_missing_is_named(tmp_path):
    proc = run_without("tf_keras", "host_tools.train", "--help")
    assert proc.returncode == 2, proc.stderr
    assert one_line(proc).startswith("train: error: tf-keras is not installed")


def test_evaluate_without_pycocotools_stops_before_scoring(tmp_path):
    root = need_shared(INRIA_TEST)
    out = tmp_path / "report"
    proc = run_without(
        "pycocotools",
        "host_tools.evaluate",
        "--model",
        str(REPO / "models" / "person_ssdlite_int8.tflite"),
        "--dataset",
        f"inria:{root}",
        "--out",
        str(out),
        "--no-progress",
    )
    assert proc.returncode == 2, proc.stderr
    line = one_line(proc)
    assert line.startswith("evaluate: error: pycocotools is not installed"), line
    assert 'pip install -e ".[host]"' in line
    assert not out.exists()


def test_library_import_still_raises_import_error():
    """Imported (not run as a tool), the missing package stays an ImportError, so a caller or a
    test's importorskip can handle it."""
    code = "import sys; sys.modules['tensorflow'] = None\nimport host_tools.train\n"
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 1
    assert "ModuleNotFoundError" in proc.stderr
