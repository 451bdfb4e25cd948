"""SIGTERM to `edgedetect run --wait-for-source` while it still waits for its source killed the
process by the signal (status -15, no line), whereas once frames flow SIGTERM stops the run
cleanly with exit 130. It is now the same before the source has opened: exit 130, one line."""

from __future__ import annotations

import os
import queue
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

from conftest import REPO


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_sigterm_while_waiting_for_the_source_exits_130_cleanly(tmp_path: Path) -> None:
    port = _free_port()  # nothing listens on it: the stream is "not there yet"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "edgedetect",
            "run",
            "--source",
            f"http://127.0.0.1:{port}/stream.mjpg",
            "--wait-for-source",
            "--no-preview",
            "--threads",
            "1",
            "--output",
            str(tmp_path / "v.mp4"),
        ],
        cwd=REPO,
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    lines: queue.Queue[str] = queue.Queue()

    def read() -> None:
        assert proc.stderr is not None
        for text in proc.stderr:
            lines.put(text)
        lines.put("")  # the end

    threading.Thread(target=read, daemon=True).start()
    seen = []
    try:
        while True:  # until it says it waits (an upper bound, not a measurement)
            line = lines.get(timeout=120)
            seen.append(line)
            if not line or "waiting for it" in line:
                break
        assert line, "the run ended before it waited: " + "".join(seen)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 130, "".join(seen)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    while (line := lines.get(timeout=60)) != "":
        seen.append(line)
    err = "".join(seen)
    assert "Traceback" not in err, err
    assert err.rstrip().splitlines()[-1] == "edgedetect: interrupted", err
    assert list(tmp_path.iterdir()) == []  # no video, no part file
