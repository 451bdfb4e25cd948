"""``--threads`` of host_tools.evaluate, ignore_regions and quantize is bounded like
``edgedetect detect/run/bench --threads`` and the service's ``[model] threads``: 1..2 x CPU count,
refused by argparse in one line with exit code 2.

Before, evaluate and ignore_regions took any int: ``--threads 1000`` ran the interpreter with 1000
threads and exit 0 (a report whose latency was 8x the real one), ``--threads 0`` failed inside
LiteRT with ``num_threads must be >= 1, got 0``, not naming the option."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from conftest import REPO

TOO_MANY = str((os.cpu_count() or 1) * 2 + 1)


@pytest.mark.parametrize("tool", ["evaluate", "ignore_regions", "quantize"])
@pytest.mark.parametrize("value", ["0", TOO_MANY])
def test_threads_out_of_range_is_refused(tool, value, tmp_path):
    args = {
        "evaluate": ["--model", "m.tflite", "--dataset", "inria:x", "--out", str(tmp_path / "r")],
        "ignore_regions": ["--dataset", "inria:x", "--model", "m.tflite", "--out", "i.json"],
        "quantize": ["--weights", "w.h5", "--out-dir", str(tmp_path / "q")],
    }[tool]
    if tool == "quantize":
        pytest.importorskip("tensorflow", reason="TensorFlow (host extra) is not installed")
    proc = subprocess.run(
        [sys.executable, "-m", f"host_tools.{tool}", *args, "--threads", value],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith(f"python -m host_tools.{tool}: error: argument --threads: {value}"), last
