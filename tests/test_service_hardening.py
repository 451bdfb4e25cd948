"""Fault injection for the service core: reloads that cannot be applied, busy ports, secrets,
bounded numbers, check-config as a dry run, whole JSONL lines on a full disk, run-time exit codes.

Everything runs for real: the COCO model, real image folders, real sockets on 127.0.0.1, a real
tmpfs for the full disk (root only), real subprocesses where an exit code is the point.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import COCO_LABELS, COCO_MODEL, mosquitto_exe, need_shared, skimage_bgr, small_tmpfs
from test_service_support import (
    RunningService,
    http_get,
    image_dir,
    metric,
    poll,
    service_config,
    to_toml,
    write_config,
)

from edgedetect.errors import ConfigError
from edgedetect.service.config import load_config, max_threads, redact

REPO = Path(__file__).resolve().parents[1]
ENV = dict(os.environ, PYTHONPATH=str(REPO))


def check_config(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "edgedetect", "check-config", str(path)],
        env=ENV,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )


def one_error_line(res: subprocess.CompletedProcess, *needles: str) -> str:
    assert res.returncode == 2, (res.returncode, res.stdout, res.stderr[-2000:])
    assert "Traceback" not in res.stderr
    lines = [ln for ln in res.stderr.splitlines() if ln.startswith("edgedetect: error: ")]
    assert len(lines) == 1, res.stderr
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


def rewrite(cfg: Path, root: Path, **sections: dict) -> None:
    """Write a new config over `cfg` keeping the running source
    (a fresh image_dir is the same folder)."""
    cfg.write_text(to_toml(service_config(root, **sections)))


# ----------------------------------------------------------------------------- reload transaction
@pytest.mark.parametrize("broken", ["source", "model"])
def test_reload_that_cannot_be_applied_keeps_the_old_service(tmp_path: Path, broken: str) -> None:
    cfg = write_config(tmp_path)
    with RunningService(cfg) as rs:
        assert poll(lambda: rs.get("/healthz")[0] == 200, 20)
        pipeline, detector = rs.svc.pipeline, rs.svc.detector
        assert pipeline is not None
        if broken == "source":
            rewrite(cfg, tmp_path, source={"spec": "foo:bar"})
        else:
            bad = tmp_path / "truncated.tflite"
            bad.write_bytes(Path(COCO_MODEL).read_bytes()[:5000])
            rewrite(cfg, tmp_path, model={"path": str(bad)})
        rs.svc.request_reload()
        assert poll(lambda: metric(rs.metrics(), "edgedetect_reload_failures_total") == 1, 20)
        assert rs.svc.pipeline is pipeline and pipeline.running and rs.svc.detector is detector
        frames = metric(rs.metrics(), "edgedetect_frames_total")
        assert poll(lambda: metric(rs.metrics(), "edgedetect_frames_total") > frames + 3, 10)
        status, _, body = rs.get("/healthz")
        info = json.loads(body)
        assert status == 200 and info["reload_failures"] == 1
        assert ("foo:bar" if broken == "source" else "truncated.tflite") in info[
            "last_reload_error"
        ]
        assert metric(rs.metrics(), "edgedetect_reloads_total") == 0
        # fixed and reloaded again: applied
        rewrite(cfg, tmp_path, model={"threshold": 0.6})
        rs.svc.request_reload()
        assert poll(lambda: metric(rs.metrics(), "edgedetect_reloads_total") == 1, 20)
        assert rs.svc.detector is not None
        assert rs.svc.detector.threshold == 0.6
        assert rs.exit_code is None, "the service stopped after a failed reload"


def test_failed_reload_by_sighup_keeps_the_process_running(tmp_path: Path) -> None:
    port = _free_port()
    cfg = write_config(tmp_path, http={"listen": f"127.0.0.1:{port}"})
    proc = subprocess.Popen(
        [sys.executable, "-m", "edgedetect.service", "run", "--config", str(cfg)],
        cwd=REPO,
        env=ENV,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        assert (
            poll(lambda: _status(url) == 200 or proc.poll() is not None, 30) and proc.poll() is None
        )
        rewrite(cfg, tmp_path, source={"spec": "foo:bar"}, http={"listen": f"127.0.0.1:{port}"})
        proc.send_signal(signal.SIGHUP)
        assert poll(lambda: _metric_or_0(url, "edgedetect_reload_failures_total") == 1, 20)
        assert proc.poll() is None and _status(url) == 200
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        _, err = proc.communicate(timeout=10)
    failed = [ln for ln in err.splitlines() if "reload failed" in ln]
    assert len(failed) == 1 and "foo:bar" in failed[0] and "keeping" in failed[0], err[-3000:]
    assert "source ended" not in err


# ------------------------------------------------------------------------- busy HTTP port on reload
def test_reload_to_a_busy_port_keeps_the_old_server_then_moves_when_free(tmp_path: Path) -> None:
    cfg = write_config(tmp_path)
    with RunningService(cfg) as rs:
        assert poll(lambda: rs.get("/healthz")[0] == 200, 20)
        old_url = rs.url
        busy = socket.socket()
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        try:
            rewrite(cfg, tmp_path, http={"listen": f"127.0.0.1:{port}"})
            rs.svc.request_reload()
            assert poll(
                lambda: (
                    metric(
                        http_get(old_url + "/metrics")[2].decode(),
                        "edgedetect_reload_failures_total",
                    )
                    == 1
                ),
                20,
            )
            assert http_get(old_url + "/healthz")[0] == 200, "the old server must keep answering"
        finally:
            busy.close()
        rs.svc.request_reload()
        new_url = f"http://127.0.0.1:{port}"
        assert poll(lambda: _status(new_url) == 200, 20), "the fixed reload did not listen"
        assert poll(lambda: _status(old_url) is None, 10), "the old server still listens"
        assert metric(http_get(new_url + "/metrics")[2].decode(), "edgedetect_reloads_total") == 1


def test_reload_on_the_same_port_swaps_the_server_and_its_token(tmp_path: Path) -> None:
    port = _free_port()
    cfg = write_config(tmp_path, http={"listen": f"127.0.0.1:{port}"})
    with RunningService(cfg) as rs:
        url = f"http://127.0.0.1:{port}"
        assert poll(lambda: _status(url) == 200, 20)
        rewrite(cfg, tmp_path, http={"listen": f"127.0.0.1:{port}", "token": "new-token"})
        rs.svc.request_reload()
        assert poll(lambda: rs.svc.reloads == 1, 20)
        assert http_get(url + "/healthz")[0] == 401
        assert http_get(url + "/healthz", token="new-token")[0] == 200


def _free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def _status(url: str) -> int | None:
    try:
        return http_get(url + "/healthz", timeout=2)[0]
    except OSError:
        return None


def _metric_or_0(url: str, name: str) -> float:
    try:
        return metric(http_get(url + "/metrics", timeout=2)[2].decode(), name)
    except (OSError, KeyError):
        return 0.0


# ----------------------------------------------------------------------------- secrets
def test_redact_hides_url_passwords_only() -> None:
    assert redact("rtsp://admin:hunter2@cam.local/stream") == "rtsp://admin:***@cam.local/stream"
    assert (
        redact("x http://u:p@h:8/a and rtsp://v:w@k/b")
        == "x http://u:***@h:8/a and rtsp://v:***@k/b"
    )
    assert redact("rtsp://cam.local/stream") == "rtsp://cam.local/stream"
    assert redact("dir:/tmp/a:b@c") == "dir:/tmp/a:b@c"


def test_redact_hides_secret_query_values() -> None:
    """Cameras take ?user=admin&password=..., webhooks ?token=...: logged in clear before."""
    assert (
        redact("http://cam/cgi?cmd=Snap&user=admin&password=hunter2&x=1")
        == "http://cam/cgi?cmd=Snap&user=admin&password=***&x=1"
    )
    assert redact("https://h/hook?TOKEN=abc#f") == "https://h/hook?TOKEN=***#f"
    assert redact("https://h/hook?keyframe=3&monkey=2") == "https://h/hook?keyframe=3&monkey=2"


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ({"http": {"token": "hunter2\x00"}}, "[http] token = '***': must not contain a NUL"),
        ({"http": {"token": 31337}}, "[http] token must be a string, got an int"),
        ({"mqtt": {"password": "hunter2\x00"}}, "[mqtt] password = '***'"),
        (
            {"webhook": {"headers": {"Authorization": "Bearer hunter2\n"}}},
            "[webhook] headers = {'Authorization': '***'}: header 'Authorization'",
        ),
        (
            {"webhook": {"url": "http://user:hunter2@127.0.0.1:1/h"}},
            "url = 'http://user:***@127.0.0.1:1/h': a user or password in the URL is not sent",
        ),
    ],
)
def test_config_errors_never_quote_a_secret(raw: dict, shown: str) -> None:
    """Config errors reach the journal and /healthz (last_reload_error) on a failed reload."""
    from edgedetect.service.config import validate

    with pytest.raises(ConfigError) as err:
        validate(raw, "c.toml")
    assert shown in str(err.value)
    assert "hunter2" not in str(err.value) and "31337" not in str(err.value)


def test_camera_password_never_shown(tmp_path: Path) -> None:
    port = _free_port()
    dead = _free_port()  # nothing listens: the stream is retried, logging each attempt
    cfg = write_config(
        tmp_path,
        http={"listen": f"127.0.0.1:{port}"},
        source={"spec": f"rtsp://admin:hunter2@127.0.0.1:{dead}/stream", "reconnect_max_s": 0.5},
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "edgedetect.service", "run", "--config", str(cfg)],
        cwd=REPO,
        env=ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        assert (
            poll(lambda: _status(url) is not None or proc.poll() is not None, 60)
            and proc.poll() is None
        )
        assert poll(lambda: _metric_or_0(url, "edgedetect_source_reconnects_total") >= 2, 30)
        body = http_get(url + "/healthz")[2].decode() + http_get(url + "/metrics")[2].decode()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        out, err = proc.communicate(timeout=10)
    assert "hunter2" not in body and "admin:***@" in body
    assert "hunter2" not in err + out and "admin:***@127.0.0.1" in err, err[-3000:]


def test_network_listen_needs_a_token_or_an_explicit_opt_out(tmp_path: Path) -> None:
    raw = service_config(tmp_path, http={"listen": "0.0.0.0:8080"})
    p = tmp_path / "open.toml"
    p.write_text(to_toml(raw))
    one_error_line(
        check_config(p), "[http] listen = '0.0.0.0:8080'", "token", "allow_unauthenticated"
    )
    raw["http"]["allow_unauthenticated"] = True
    p.write_text(to_toml(raw))
    res = check_config(p)
    assert res.returncode == 0 and "OK" in res.stdout, res.stderr
    assert "without a token" in res.stderr  # the warning
    raw["http"] = {"listen": "[::1]:8080"}  # loopback is fine without a token
    p.write_text(to_toml(raw))
    assert check_config(p).returncode == 0


def test_token_file_must_be_private_and_is_used(tmp_path: Path) -> None:
    secret = tmp_path / "token"
    secret.write_text("s3cret-token\n")
    secret.chmod(0o644)
    cfg = write_config(tmp_path, http={"listen": "127.0.0.1:0", "token_file": "token"})
    with pytest.raises(ConfigError, match=r"\[http\] token_file = 'token': .*mode 0644.*chmod 600"):
        load_config(cfg)
    secret.chmod(0o600)
    assert load_config(cfg)["http"]["token"] == "s3cret-token"
    with RunningService(cfg) as rs:
        assert rs.get("/healthz")[0] == 401
        assert poll(lambda: rs.get("/healthz", token="s3cret-token")[0] == 200, 20)
    both = write_config(tmp_path, http={"token": "x", "token_file": "token"})
    with pytest.raises(ConfigError, match="token_file.*not both"):
        load_config(both)
    pw = tmp_path / "mqtt.pw"
    pw.write_text("pw")
    pw.chmod(0o600)
    assert (
        load_config(write_config(tmp_path, mqtt={"password_file": str(pw)}))["mqtt"]["password"]
        == "pw"
    )


@pytest.mark.parametrize("token", ["pässwort", "two words", "tab\there", "nul\x00in-file"])
def test_a_token_no_client_can_send_as_typed_is_refused(tmp_path: Path, token: str) -> None:
    # A token travels in an Authorization header, a URL and a cookie. Non-ASCII was accepted but
    # never matched a Bearer header from curl or a browser (UTF-8 bytes, read as Latin-1), a
    # space broke the URL, and token_file even let a NUL through that token refuses.
    secret = tmp_path / "token"
    secret.write_text(token)
    secret.chmod(0o600)
    refused = "visible ASCII"
    with pytest.raises(ConfigError, match=rf"\[http\] token_file = 'token': .*{refused}"):
        load_config(write_config(tmp_path, http={"token_file": "token"}))
    if "\x00" not in token:  # refused inline already, as a NUL
        with pytest.raises(ConfigError, match=rf"\[http\] token = '\*\*\*': .*{refused}") as e:
            load_config(write_config(tmp_path, http={"token": token}))
        assert token not in str(e.value)
    fine = "Zm9v+YmFy/cXV4==~-_.!$"
    secret.write_text(fine + "\n")
    assert (
        load_config(write_config(tmp_path, http={"token_file": "token"}))["http"]["token"] == fine
    )


# ----------------------------------------------------------------------------- bounded numbers
@pytest.mark.parametrize(
    "section,key,value,needle",
    [
        ("model", "threads", 40000, "between 1 and"),
        ("http", "stream_fps", 1e6, "between 0.1 and 30"),
        ("service", "stall_timeout_s", 0.005, "between 0.5 and"),
        ("mqtt", "queue", 999999999999, "between 1 and 100000"),
        ("webhook", "queue", 100001, "between 1 and 100000"),
        ("http", "threads", 10000, "between 1 and"),
    ],
)
def test_numbers_out_of_range_are_config_errors(
    tmp_path: Path, section: str, key: str, value: float, needle: str
) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text(f"[{section}]\n{key} = {value!r}\n")
    with pytest.raises(ConfigError, match=rf"\[{section}\] {key} = .*{needle}"):
        load_config(cfg, check_files=False)


def test_thread_bounds_follow_the_cpu_count(tmp_path: Path) -> None:
    limit = max_threads()
    assert limit == (os.cpu_count() or 1) * 2
    cfg = tmp_path / "c.toml"
    cfg.write_text(f"[model]\nthreads = {limit}\n")
    assert load_config(cfg, check_files=False)["model"]["threads"] == limit
    cfg.write_text(f"[model]\nthreads = {limit + 1}\n")
    with pytest.raises(ConfigError, match=rf"between 1 and {limit} \(2 x CPU count\)"):
        load_config(cfg, check_files=False)


@pytest.mark.parametrize("command", ["detect", "run", "bench"])
def test_cli_threads_flag_shares_the_bound(tmp_path: Path, command: str) -> None:
    img = tmp_path / "a.png"
    import cv2

    cv2.imwrite(str(img), skimage_bgr("astronaut"))
    args = {"detect": [str(img)], "run": ["--source", str(img), "--no-preview"], "bench": []}[
        command
    ]
    res = subprocess.run(
        [sys.executable, "-m", "edgedetect", command, *args, "--threads", "32768"],
        env=ENV,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 2, res.stderr[-2000:]
    assert f"between 1 and {max_threads()}" in res.stderr and "Traceback" not in res.stderr


# ----------------------------------------------------------------------------- check-config dry run
def _dry_run_case(tmp_path: Path, case: str) -> tuple[Path, str]:
    raw = service_config(tmp_path)
    if case == "scheme":
        raw["source"]["spec"] = "foo:bar"
        needle = "unknown source spec 'foo:bar'"
    elif case == "truncated_model":
        bad = tmp_path / "truncated.tflite"
        bad.write_bytes(Path(COCO_MODEL).read_bytes()[:5000])
        raw["model"]["path"] = str(bad)
        needle = "truncated.tflite"
    elif case == "unknown_class":
        raw["model"]["classes"] = ["unicorn"]
        needle = "unicorn"
    elif case == "threads":
        raw["model"]["threads"] = 40000
        needle = "[model] threads = 40000"
    elif case == "jsonl":
        raw["events"]["jsonl"] = "/proc/edgedetect/events.jsonl"
        needle = "[events] jsonl = '/proc/edgedetect/events.jsonl'"
    else:
        (tmp_path / "afile").write_text("x")
        raw["snapshots"]["dir"] = str(tmp_path / "afile" / "snaps")
        needle = "[snapshots] dir"
    p = tmp_path / f"{case}.toml"
    p.write_text(to_toml(raw))
    return p, needle


@pytest.mark.parametrize(
    "case", ["scheme", "truncated_model", "unknown_class", "threads", "jsonl", "snapdir"]
)
def test_check_config_rejects_what_the_service_would(tmp_path: Path, case: str) -> None:
    p, needle = _dry_run_case(tmp_path, case)
    one_error_line(check_config(p), str(p), needle)


def test_check_config_binds_nothing_and_creates_nothing(tmp_path: Path) -> None:
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen(1)
    port = busy.getsockname()[1]
    try:
        p = write_config(
            tmp_path,
            http={"listen": f"127.0.0.1:{port}"},
            events={"jsonl": str(tmp_path / "new" / "events.jsonl")},
            snapshots={"dir": str(tmp_path / "new2" / "snaps")},
        )
        res = check_config(p)
        assert res.returncode == 0 and "OK" in res.stdout, res.stderr
    finally:
        busy.close()
    assert not (tmp_path / "new").exists() and not (tmp_path / "new2").exists()


# ----------------------------------------------------------------------------- relative paths
def test_relative_paths_resolve_beside_the_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    need_shared(COCO_MODEL)
    conf_dir = tmp_path / "etc"
    conf_dir.mkdir()
    image_dir(conf_dir)
    (conf_dir / "token").write_text("t")
    (conf_dir / "token").chmod(0o600)
    cfg = conf_dir / "config.toml"
    cfg.write_text(
        to_toml(
            {
                "source": {"spec": "dir:imgs"},
                "events": {"jsonl": "data/events.jsonl"},
                "snapshots": {"dir": "data/snaps"},
                "http": {"token_file": "token"},
                "model": {"path": str(COCO_MODEL), "labels": str(COCO_LABELS)},
            }
        )
    )
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    c = load_config(cfg)
    assert c["source"]["spec"] == f"dir:{conf_dir / 'imgs'}"
    assert c["events"]["jsonl"] == str(conf_dir / "data" / "events.jsonl")
    assert c["snapshots"]["dir"] == str(conf_dir / "data" / "snaps")
    assert c["http"]["token"] == "t"
    bare = conf_dir / "bare.toml"
    bare.write_text('[source]\nspec = "imgs"\n')
    assert load_config(bare, check_files=False)["source"]["spec"] == str(conf_dir / "imgs")
    for spec in ("picam", "usb:0", "rtsp://h/s", "picam:640x480"):
        bare.write_text(f'[source]\nspec = "{spec}"\n')
        assert load_config(bare, check_files=False)["source"]["spec"] == spec


def test_command_line_paths_resolve_in_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from edgedetect.service.config import apply_overrides

    conf_dir, cwd = tmp_path / "etc", tmp_path / "cwd"
    conf_dir.mkdir()
    (cwd / "imgs").mkdir(parents=True)
    cfg = conf_dir / "config.toml"
    cfg.write_text('[source]\nspec = "dir:imgs"\n')
    monkeypatch.chdir(cwd)
    c = load_config(cfg, check_files=False)
    assert c["source"]["spec"] == f"dir:{conf_dir / 'imgs'}"
    assert (
        apply_overrides(c, {"source.spec": "dir:imgs"})["source"]["spec"] == f"dir:{cwd / 'imgs'}"
    )


# ---------------------------------------------------------------------------- events on a full disk
@pytest.fixture
def tiny_tmpfs(tmp_path: Path):
    with small_tmpfs(tmp_path / "tiny", "32k") as mnt:
        yield mnt


def test_jsonl_on_a_full_disk_keeps_whole_lines(tiny_tmpfs: Path) -> None:
    from edgedetect.service.events import JsonlWriter, make_event
    from edgedetect.service.tracker import TrackEvent

    room = tiny_tmpfs / "room"
    room.write_bytes(b"r" * 8192)  # deleted later to make space again
    writer = JsonlWriter(tiny_tmpfs / "events.jsonl", max_bytes=10 * 1024 * 1024, backups=1)
    sent = failed = 0
    try:
        for i in range(2000):  # ~170 bytes each: the 32 kB disk fills after ~140
            te = TrackEvent("person_entered", i, (1.5, 2.5, 300.25, 400.75), 0.9, 1)
            try:
                writer.send(make_event(te, 1.8e9 + i, i))
                sent += 1
            except OSError:
                failed += 1
                if failed == 1:  # take the last few bytes so that a line can only be partly written
                    with open(tiny_tmpfs / "crumbs", "wb", buffering=0) as fh:
                        for _ in range(4096):
                            try:
                                fh.write(b"c")
                            except OSError:
                                break
                if failed >= 20:
                    break
        assert failed >= 20 and writer.lost == failed
        room.unlink()  # space again: later events are whole
        for i in range(5):
            writer.send(
                make_event(TrackEvent("person_left", 9000 + i, (1, 2, 3, 4), 0.5, 0), 1.9e9, i)
            )
    finally:
        writer.close()
    lines = (tiny_tmpfs / "events.jsonl").read_bytes().split(b"\n")
    assert lines[-1] == b""
    parsed = [json.loads(line) for line in lines[:-1]]  # every line parses
    assert len(parsed) == sent + 5 and parsed[-1]["track_id"] == 9004


# ----------------------------------------------------------------------------- edgedetect run
def _cli(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "edgedetect", *argv],
        env=ENV,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=180,
    )


def test_run_output_that_cannot_be_written_is_exit_2_before_the_first_frame(tmp_path: Path) -> None:
    model, labels = need_shared(COCO_MODEL), COCO_LABELS
    imgs = image_dir(tmp_path, 2, 0)
    res = _cli(
        "run",
        "--source",
        f"dir:{imgs}",
        "--no-preview",
        "--model",
        str(model),
        "--labels",
        str(labels),
        "--threads",
        "1",
        "--output",
        "/proc/out.mp4",
    )
    one_error_line(res, "/proc/out.mp4")
    assert "frames in" not in res.stderr


def test_run_refuses_a_device_as_events_file_before_the_first_frame(tmp_path: Path) -> None:
    """Was exit 1 after failing on every frame; a device (or a FIFO, which would block) is now
    refused up front. A disk that fails every write: tests/test_run_outputs.py."""
    model, labels = need_shared(COCO_MODEL), COCO_LABELS
    imgs = image_dir(tmp_path, 3, 0)
    res = _cli(
        "run",
        "--source",
        f"dir:{imgs}",
        "--no-preview",
        "--model",
        str(model),
        "--labels",
        str(labels),
        "--threads",
        "1",
        "--events",
        "/dev/full",
    )
    one_error_line(res, "/dev/full", "not a regular file (a character device)", "--events")


def test_run_empty_source_is_an_error() -> None:
    one_error_line(_cli("run", "--source", "", "--no-preview"), "--source", "empty")


# ----------------------------------------------------------------------------- run ids
def test_events_carry_a_run_id_so_track_ids_never_collide(tmp_path: Path) -> None:
    cfg = write_config(tmp_path, source={"loop": False})
    for _ in range(2):
        run = RunningService(cfg)

        def exited(run: RunningService = run) -> bool:
            return run.exit_code is not None

        with run:
            assert poll(exited, 30)
        assert run.exit_code == 0
    events = [json.loads(line) for line in (tmp_path / "events.jsonl").read_text().splitlines()]
    runs = sorted({e["run_id"] for e in events})
    assert len(runs) == 2 and all(len(r) >= 8 for r in runs)
    entered = [(e["run_id"], e["track_id"]) for e in events if e["type"] == "person_entered"]
    assert len(entered) == 2 and len(set(entered)) == 2 and {t for _, t in entered} == {1}


# ----------------------------------------------------------------------------- MQTT across reloads
def test_mqtt_reload_leaves_the_device_online(tmp_path: Path) -> None:
    """The replaced MQTT client must not publish its retained 'offline'
    after the new one said 'online'."""
    import threading

    exe = mosquitto_exe()
    import paho.mqtt.client as mqtt

    port = _free_port()
    conf = tmp_path / "mosquitto.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n")
    broker = subprocess.Popen(
        [exe, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    got: list[bytes] = []
    lock = threading.Lock()

    def on_message(client, userdata, msg) -> None:
        with lock:
            got.append(msg.payload)

    sub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    sub.on_message = on_message
    try:
        assert poll(lambda: _connects(port), 10), "mosquitto did not start"
        sub.connect("127.0.0.1", port)
        sub.subscribe("edre/availability", 1)
        sub.loop_start()
        mq = {
            "enabled": True,
            "host": "127.0.0.1",
            "port": port,
            "topic_prefix": "edre",
            "keepalive_s": 5,
        }
        cfg = write_config(tmp_path, mqtt=mq)
        with RunningService(cfg) as rs:
            assert poll(lambda: got and got[-1] == b"online", 20)
            for n, name in enumerate(["porch", "door"]):  # a changed [mqtt] section: a new client
                rewrite(cfg, tmp_path, mqtt={**mq, "device_name": name})
                rs.svc.request_reload()

                def reloaded(n: int = n) -> bool:
                    return rs.svc.reloads == n + 1

                def announced(n: int = n) -> bool:
                    return len(got) >= n + 2  # the new client's "online"

                assert poll(reloaded, 20)
                assert poll(announced, 10)
                time.sleep(
                    1.0
                )  # the old client's close (and any "offline" it sends) is over by now
                with lock:
                    seen = list(got)
                assert seen[-1] == b"online" and b"offline" not in seen, seen
    finally:
        sub.loop_stop()
        sub.disconnect()
        broker.terminate()
        broker.wait(timeout=5)


def _connects(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        return True
    except OSError:
        return False
