"""Service lifecycle in-process: a finite source ends cleanly, a reload that changes the source
restarts the pipeline, a busy HTTP port is a one-line config error."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from test_service_support import RunningService, metric, poll, service_config, to_toml, write_config

from edgedetect.errors import ConfigError
from edgedetect.service.daemon import make_service

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "sample.mp4"

DEFAULT_MODEL = Path(__file__).resolve().parents[1] / "models" / "person_ssdlite_int8.tflite"


@pytest.mark.parametrize("model", ["coco", "default"])
def test_finite_folder_ends_with_exit_0_and_events(tmp_path: Path, model: str) -> None:
    if model == "default":
        if not DEFAULT_MODEL.exists():
            pytest.skip(f"project model {DEFAULT_MODEL} not built yet")
        cfg = write_config(tmp_path, source={"loop": False}, model={"path": "", "labels": ""})
    else:
        cfg = write_config(tmp_path, source={"loop": False})
    rs = RunningService(cfg)
    with rs:
        assert poll(lambda: rs.exit_code is not None, 30), (
            "service did not stop at the end of the folder"
        )
    assert rs.exit_code == 0
    events = [json.loads(line) for line in (tmp_path / "events.jsonl").read_text().splitlines()]
    kinds = [e["type"] for e in events]
    # 6 astronaut frames then 6 coffee frames: one person enters, then leaves
    assert kinds == ["person_entered", "count_changed", "person_left", "count_changed"]
    assert events[2]["track_id"] == events[0]["track_id"] == 1


def _second_folder(tmp_path: Path) -> Path:
    """A folder with one of the config's images moved into it: a new source for a reload."""
    other = tmp_path / "other"
    other.mkdir()
    (tmp_path / "imgs" / "f000.jpg").rename(other / "only.jpg")
    return other


def test_reload_with_new_source_restarts_pipeline(tmp_path: Path) -> None:
    """... and keeps the dropped-frames count: edgedetect_dropped_frames_total (and the page's
    dropped_frames) came from the running pipeline alone, so a new one started them at 0, which
    Prometheus reads as a counter reset. The old pipeline's drops are set by hand here (an offline
    folder never drops a frame: every frame is taken), on its real one-slot mailboxes."""
    cfg = write_config(tmp_path)
    other = _second_folder(tmp_path)
    with RunningService(cfg) as rs:
        assert poll(lambda: rs.get("/healthz")[0] == 200, 20)
        first = rs.svc.pipeline
        assert first is not None
        first._in.dropped, first._out.dropped = 7, 2
        assert metric(rs.metrics(), 'edgedetect_dropped_frames_total{stage="capture"}') == 7
        raw = service_config(tmp_path, source={"spec": f"dir:{other}"}, model={"threshold": 0.6})
        cfg.write_text(to_toml(raw))
        server = rs.svc.http
        rs.svc.request_reload()
        assert poll(lambda: rs.svc.reloads == 1, 10), "reload did not complete"
        assert rs.svc.pipeline is not None and rs.svc.detector is not None
        assert rs.svc.pipeline is not first and rs.svc.pipeline.running
        assert rs.svc.cfg["source"]["spec"] == f"dir:{other}" and rs.svc.detector.threshold == 0.6
        assert rs.svc.http is server, "HTTP server restarted although [http] did not change"
        assert poll(lambda: rs.get("/healthz")[0] == 200, 10)
        frames = metric(rs.metrics(), "edgedetect_frames_total")
        assert poll(lambda: metric(rs.metrics(), "edgedetect_frames_total") > frames + 3, 10)
        assert not first.running
        text = rs.metrics()
        assert metric(text, 'edgedetect_dropped_frames_total{stage="capture"}') >= 7
        assert metric(text, 'edgedetect_dropped_frames_total{stage="inference"}') >= 2
        assert json.loads(rs.get("/api/status")[2])["dropped_frames"] >= 9


def test_http_port_in_use_is_a_config_error(tmp_path: Path) -> None:
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen(1)
    port = busy.getsockname()[1]
    try:
        cfg = write_config(tmp_path, http={"listen": f"127.0.0.1:{port}"})
        svc = make_service(str(cfg), install_signals=False)
        with pytest.raises(
            ConfigError, match=rf"\[http\] listen = '127.0.0.1:{port}': cannot listen"
        ):
            svc.start()
        svc.shutdown()
    finally:
        busy.close()


@pytest.mark.parametrize("clips", [False, True])
def test_busy_port_from_the_command_line_exits_2_with_one_line(tmp_path: Path, clips: bool) -> None:
    """`edgedetect run --config` with a busy port: exit 2 and one error line, and no thread left
    running into the interpreter's exit (that aborted the process with 'FATAL: exception not
    rethrown', status -6, after the error line)."""
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen(1)
    port = busy.getsockname()[1]
    try:
        cfg = write_config(
            tmp_path,
            source={"spec": str(SAMPLE), "loop": True},  # a video: its reader thread is in C++
            http={"listen": f"127.0.0.1:{port}"},
            clips={"enabled": clips, "dir": str(tmp_path / "clips")},
        )
        done = subprocess.run(
            [sys.executable, "-m", "edgedetect", "run", "--config", str(cfg)],
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        busy.close()
    assert done.returncode == 2, done.stderr[-800:]
    errors = [ln for ln in done.stderr.splitlines() if ln.startswith("edgedetect: error: ")]
    assert len(errors) == 1 and "cannot listen" in errors[0], done.stderr[-800:]
    assert "FATAL" not in done.stderr and "Traceback" not in done.stderr


# The signals arrive while the model loads: the service sends them to itself from inside its model
# loader, the slow step of a start on a Pi, so the moment is the same on every run.
_SIGNALS_WHILE_LOADING = """
import os, signal, sys
from edgedetect.service import daemon
load = daemon.Service._make_detector
def loading(self, cfg):
    for sig in {signals}:
        os.kill(os.getpid(), sig)
    return load(self, cfg)
daemon.Service._make_detector = loading
from edgedetect.cli import main
sys.exit(main(["run", "--config", sys.argv[1]]))
"""


@pytest.mark.parametrize(
    "signals", ["[signal.SIGHUP, signal.SIGTERM]", "[signal.SIGTERM]", "[signal.SIGINT]"]
)
def test_a_signal_while_the_model_loads_stops_the_service_cleanly(
    tmp_path: Path, signals: str
) -> None:
    """Before, SIGHUP then killed the process (status -1) and SIGTERM ended it without stopping
    the parts (status -15): no exit 0, no 'stopping' line, unlike a SIGTERM a second later."""
    cfg = write_config(tmp_path, source={"spec": str(SAMPLE), "loop": True})
    done = subprocess.run(
        [sys.executable, "-c", _SIGNALS_WHILE_LOADING.format(signals=signals), str(cfg)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, (done.returncode, done.stderr[-1500:])
    assert "stopping" in done.stderr and "Traceback" not in done.stderr
