"""`edgedetect run` on a live stream that goes away and comes back, end to end on loopback.

The stream is the real service's /stream.mjpg (real detector, real HTTP server on 127.0.0.1);
the reader is the real `edgedetect run` in a subprocess. Between the two services the port is
closed, so the reader sees the stream drop and then cannot connect for a while.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import COCO_LABELS, COCO_MODEL
from test_service_support import RunningService, poll, write_config

REPO = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _event_ids(path: Path) -> list[int]:
    if not path.exists():
        return []
    return [json.loads(line)["frame"] for line in path.read_text().splitlines() if line.strip()]


def _reader_cmd(port: int, events: Path, frames: int, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "edgedetect",
        "-v",
        "run",
        "--source",
        f"http://127.0.0.1:{port}/stream.mjpg",
        "--no-preview",
        "--max-frames",
        str(frames),
        "--model",
        str(COCO_MODEL),
        "--labels",
        str(COCO_LABELS),
        "--threshold",
        "0.3",
        "--threads",
        "1",
        "--events",
        str(events),
        *extra,
    ]


def test_run_fails_fast_when_the_stream_is_not_there(capsys: pytest.CaptureFixture[str]) -> None:
    from edgedetect.cli import main

    port = _free_port()  # nothing listens on it
    code = main(
        [
            "run",
            "--source",
            f"http://127.0.0.1:{port}/stream.mjpg",
            "--no-preview",
            "--max-frames",
            "5",
            "--threads",
            "1",
        ]
    )
    err = capsys.readouterr().err
    assert code == 2
    assert "edgedetect: error: cannot open stream" in err and "Traceback" not in err


def test_run_waits_for_a_stream_that_comes_up_later(tmp_path: Path) -> None:
    port = _free_port()
    cfg = write_config(tmp_path, http={"listen": f"127.0.0.1:{port}", "stream_fps": 10})
    events = tmp_path / "reader.jsonl"
    reader = subprocess.Popen(
        _reader_cmd(port, events, 20, "--wait-for-source"),
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        time.sleep(3.0)  # the reader has started and found no server
        assert reader.poll() is None, "the reader did not wait: " + reader.communicate()[1]
        with RunningService(cfg):
            _, err = reader.communicate(timeout=180)
    finally:
        if reader.poll() is None:
            reader.kill()
            reader.communicate()
    assert reader.returncode == 0, err
    assert "waiting for it" in err and "is available" in err, err
    assert _event_ids(events), "no frame read once the stream was up"


def test_run_reads_on_after_the_stream_stops_and_restarts(tmp_path: Path) -> None:
    port = _free_port()
    cfg = write_config(tmp_path, http={"listen": f"127.0.0.1:{port}", "stream_fps": 10})
    events = tmp_path / "reader.jsonl"
    cmd = _reader_cmd(port, events, 60)
    reader: subprocess.Popen[str] | None = None
    try:
        with RunningService(cfg) as first:
            assert poll(lambda: first.get("/healthz")[0] == 200, 60), "first service never healthy"
            reader = subprocess.Popen(
                cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
            )
            assert poll(lambda: len(_event_ids(events)) >= 3 or reader.poll() is not None, 90), (
                "the reader got no frames from the first service"
            )
            assert reader.poll() is None, reader.communicate()[1]
        before = _event_ids(events)
        time.sleep(1.0)  # nothing listens on the port: reopening fails for a while
        assert reader.poll() is None, (
            "the reader ended when the stream dropped: " + reader.communicate()[1]
        )
        with RunningService(cfg):
            _, err = reader.communicate(timeout=180)
    finally:
        if reader is not None and reader.poll() is None:
            reader.kill()
            reader.communicate()
    assert reader.returncode == 0, err
    assert "reopened" in err, err
    ids = _event_ids(events)
    assert len(ids) > len(before), "no frame read after the restart"
    assert ids == sorted(set(ids)), f"frame ids not strictly increasing: {ids}"
