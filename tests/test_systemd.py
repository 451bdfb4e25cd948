"""systemd integration: unit hardening score, unit contents, install script, sd_notify datagrams."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from edgedetect.service.notify import Notifier, watchdog_interval_s

REPO = Path(__file__).resolve().parents[1]
UNIT = REPO / "systemd" / "edgedetect.service"
INSTALL = REPO / "systemd" / "install.sh"


def unit_settings() -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for line in UNIT.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith(("#", "[")) and "=" in line:
            k, v = line.split("=", 1)
            out.setdefault(k, []).append(v)
    return out


def test_security_exposure_at_most_2_5() -> None:
    exe = shutil.which("systemd-analyze")
    if exe is None:
        pytest.skip(
            "systemd-analyze not installed (apt-get install systemd) - cannot score the unit"
        )
    proc = subprocess.run(
        [exe, "security", "--offline=true", "--no-pager", str(UNIT)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    m = re.search(r"Overall exposure level for \S+: (\d+(?:\.\d+)?)", proc.stdout + proc.stderr)
    assert m, f"no exposure score in output: {proc.stdout[-500:]} {proc.stderr[-500:]}"
    score = float(m.group(1))
    print(f"systemd-analyze security exposure: {score}")
    assert score <= 2.5


def test_unit_contract() -> None:
    s = unit_settings()
    assert s["Type"] == ["notify"]
    assert int(s["WatchdogSec"][0]) > 0
    assert s["Restart"] == ["on-failure"] and s["RestartPreventExitStatus"] == ["2"]
    assert "ExecReload" in s and "-HUP" in s["ExecReload"][0]
    assert "run --config /etc/edgedetect/config.toml" in s["ExecStart"][0]
    assert s["User"] == ["edgedetect"] and "video" in s["SupplementaryGroups"][0]
    assert s["StateDirectory"] == ["edgedetect"] and s["LogsDirectory"] == ["edgedetect"]
    for key, want in (
        ("ProtectSystem", "strict"),
        ("ProtectHome", "yes"),
        ("PrivateTmp", "yes"),
        ("NoNewPrivileges", "yes"),
        ("CapabilityBoundingSet", ""),
        ("DevicePolicy", "closed"),
    ):
        assert s[key] == [want], key
    allowed = " ".join(s["DeviceAllow"])
    for dev in ("char-video4linux", "char-media", "char-dma_heap", "char-drm"):
        assert dev in allowed
    assert "AF_PACKET" not in s["RestrictAddressFamilies"][0]


def test_install_script_syntax_and_dry_run(tmp_path: Path) -> None:
    subprocess.run(["bash", "-n", str(INSTALL)], check=True, timeout=30)
    env = _dry_env(tmp_path)
    out = _install("--no-apt", env=env, check=True).stdout
    assert "useradd --system" in out and "edgedetect-test-nonexistent" in out
    assert "-m venv --system-site-packages" in out
    pip_line = next(line for line in out.splitlines() if "pip install" in line)
    assert (
        str(REPO) in pip_line and "tensorflow" not in pip_line.lower() and "[host]" not in pip_line
    )
    assert "config.example.toml" in out and "check-config" in out
    assert "edgedetect.service" in out
    assert not (tmp_path / "opt").exists(), "dry run changed the filesystem"
    out = _install("--uninstall", "--purge", env=env, check=True).stdout
    assert "rm -rf" in out and str(tmp_path / "opt") in out
    bad = _install("--bogus", env=env)
    assert bad.returncode == 2 and "unknown option --bogus" in bad.stderr


def _listener(tmp_path: Path) -> tuple[socket.socket, str]:
    path = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(2.0)
    return sock, path


def test_notifier_sends_datagrams(tmp_path: Path) -> None:
    sock, path = _listener(tmp_path)
    n = Notifier(path)
    assert n.enabled
    assert n.ready("starting")
    assert sock.recv(4096) == b"READY=1\nSTATUS=starting"
    assert n.watchdog() and sock.recv(4096) == b"WATCHDOG=1"
    assert n.status("12.0 fps, 1 person(s)") and sock.recv(4096) == b"STATUS=12.0 fps, 1 person(s)"
    n.close()
    sock.close()


def test_notifier_abstract_socket() -> None:
    name = f"edgedetect-test-{os.getpid()}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("\0" + name)
    sock.settimeout(2.0)
    n = Notifier("@" + name)
    assert n.stopping() and sock.recv(4096) == b"STOPPING=1"
    sock.close()


def test_notifier_outside_systemd_is_noop(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    n = Notifier()
    assert not n.enabled and n.ready() is False


def test_watchdog_interval(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WATCHDOG_USEC", "60000000")
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    assert watchdog_interval_s() == 30.0
    monkeypatch.setenv("WATCHDOG_PID", "1")  # meant for another process
    assert watchdog_interval_s() is None


def _dry_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = dict(
        os.environ,
        DRY_RUN="1",
        PREFIX=str(tmp_path / "opt"),
        CONF_DIR=str(tmp_path / "etc"),
        STATE_DIR=str(tmp_path / "var"),
        UNIT_DIR=str(tmp_path / "units"),
        SERVICE_USER="edgedetect-test-nonexistent",
    )
    env.update(extra)
    return env


def _install(
    *args: str, env: dict[str, str] | None = None, script: Path = INSTALL, check: bool = False
) -> subprocess.CompletedProcess[str]:
    """Run install.sh (a dry run when `env` comes from `_dry_env`), capturing its text."""
    return subprocess.run(
        ["bash", str(script), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=check,
    )


def test_install_help_is_the_header_comment_only() -> None:
    out = _install("--help", check=True).stdout
    assert "--uninstall --purge" in out and "~/edgedetect" in out and "DRY_RUN=1" in out
    assert "set -euo" not in out and not any(line.startswith("#") for line in out.splitlines())


def test_install_pins_the_system_numpy(tmp_path: Path) -> None:
    import numpy

    # PYTHON is the interpreter whose numpy the venv must keep (apt's python3 on a Pi).
    env = _dry_env(tmp_path, PYTHON=sys.executable)
    out = _install("--no-apt", env=env, check=True).stdout
    made = next(line for line in out.splitlines() if "pip-constraints.py" in line)
    assert made.startswith(f"+ {sys.executable} {REPO}/systemd/pip-constraints.py > ")
    assert f"> {tmp_path / 'opt'}/constraints.txt  # numpy=={numpy.__version__}" in made
    pip_line = next(line for line in out.splitlines() if "pip install" in line)
    assert f"--constraint {tmp_path / 'opt'}/constraints.txt" in pip_line


@pytest.mark.parametrize("which", ["PREFIX", "CONF_DIR", "STATE_DIR"])
def test_install_refuses_to_purge_a_checkout(tmp_path: Path, which: str) -> None:
    env = _dry_env(tmp_path)
    clone = Path(env[which])
    (clone / ".git").mkdir(parents=True)
    res = _install("--uninstall", "--purge", env=env)
    assert res.returncode == 2, res.stdout + res.stderr
    assert "rm -rf" not in res.stdout
    lines = res.stderr.strip().splitlines()
    assert (
        len(lines) == 1 and f"refusing to remove {clone}" in lines[0] and "~/edgedetect" in lines[0]
    )
    if which != "PREFIX":  # without --purge the config and state stay, so that is allowed
        ok = _install("--uninstall", env=env, check=True)
        assert f"rm -rf {tmp_path / 'opt'}" in ok.stdout


def test_install_refuses_a_prefix_holding_a_checkout(tmp_path: Path) -> None:
    env = _dry_env(tmp_path)
    (tmp_path / "opt" / "edgedetect" / ".git").mkdir(parents=True)
    res = _install("--no-apt", env=env)
    assert res.returncode == 2 and "pip install" not in res.stdout
    assert f"refusing to install into {tmp_path / 'opt'}" in res.stderr
    assert f"checkout {tmp_path / 'opt' / 'edgedetect'}" in res.stderr


def test_install_refuses_a_clone_inside_the_prefix(tmp_path: Path) -> None:
    # The clone at /opt/edgedetect with the default prefix /opt/edgedetect (no .git needed: this
    # copy of the script is the checkout it runs from).
    clone = tmp_path / "opt"
    (clone / "systemd").mkdir(parents=True)
    shutil.copy(INSTALL, clone / "systemd" / "install.sh")
    env = _dry_env(tmp_path)
    for args in (["--no-apt"], ["--uninstall", "--purge"]):
        res = _install(*args, env=env, script=clone / "systemd" / "install.sh")
        assert (
            res.returncode == 2 and "rm -rf" not in res.stdout and "pip install" not in res.stdout
        )
        assert "refusing to" in res.stderr and str(clone) in res.stderr


def test_install_refuses_a_prefix_inside_the_checkout(tmp_path: Path) -> None:
    env = _dry_env(tmp_path, PREFIX=str(REPO / "not-a-prefix"))
    res = _install("--no-apt", env=env)
    assert res.returncode == 2 and f"refusing to install into {REPO / 'not-a-prefix'}" in res.stderr
    assert not (REPO / "not-a-prefix").exists()


def test_readme_pi_blocks_are_what_check_arm64_runs() -> None:
    # scripts/check-arm64.sh runs the README blocks marked for it; they must stay there and
    # keep the numpy pin (the check fails on an emulated Pi if the venv loses apt's numpy).
    text = (REPO / "README.md").read_text()
    manual = re.search(r"<!-- check-arm64: manual -->\s*```bash\n(.*?)```", text, re.S)
    service = re.search(r"<!-- check-arm64: service -->\s*```bash\n(.*?)```", text, re.S)
    assert manual and service
    assert "--system-site-packages" in manual.group(1) and "pip install -c" in manual.group(1)
    assert "systemd/install.sh" in service.group(1) and "~/edgedetect" in service.group(1)
    check = REPO / "scripts" / "check-arm64.sh"
    subprocess.run(["bash", "-n", str(check)], check=True, timeout=30)
    assert (
        "set -euo"
        not in subprocess.run(
            ["bash", str(check), "--help"], capture_output=True, text=True, timeout=30, check=True
        ).stdout
    )


def test_install_purge_without_uninstall_is_refused(tmp_path: Path) -> None:
    # `install.sh --purge` (meant: remove everything) ran a full install and restarted the
    # service: --purge was silently ignored without --uninstall.
    res = _install("--purge", "--no-apt", env=_dry_env(tmp_path))
    assert res.returncode == 2 and res.stdout == "", res.stdout
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "--purge only goes with --uninstall" in lines[0]


def test_install_dry_run_lines_are_the_commands_as_run(tmp_path: Path) -> None:
    # DRY_RUN=1 printed `useradd ... --comment edgedetect service edgedetect`: pasted, that is
    # another command (the quoting was lost). Each line now splits into the real arguments.
    env = _dry_env(tmp_path, PREFIX=str(tmp_path / "my opt"))
    out = _install("--no-apt", env=env, check=True).stdout
    useradd = shlex.split(next(line for line in out.splitlines() if "useradd" in line))
    assert useradd[useradd.index("--comment") + 1] == "edgedetect service"
    venv = shlex.split(next(line for line in out.splitlines() if " venv " in line))
    assert Path(venv[-1]).parent == tmp_path / "my opt"  # the new venv, beside the old one
    assert Path(venv[-1]).name.startswith("venv-")


def test_install_help_names_only_real_dependencies() -> None:
    # --help said the venv gets waitress, which the service no longer uses (stdlib asyncio).
    out = _install("--help", check=True).stdout
    listed = re.search(r"runtime\s+dependencies only: ([^)]*)\)", out)
    assert listed is not None, out
    text = (REPO / "pyproject.toml").read_text()
    deps = text.split("\ndependencies = [", 1)[1].split("\n]", 1)[0].lower()
    for name in re.split(r",\s*", listed.group(1).strip()):
        if name == name.lower():  # package names (OpenCV, LiteRT are written as products)
            assert f'"{name}' in deps, f"--help names {name!r}, not a dependency in pyproject.toml"


def test_install_with_other_paths_starts_the_venv_it_made(tmp_path: Path) -> None:
    # PREFIX=/srv/... installed the venv there but the unit still ran /opt/edgedetect/venv/...:
    # exit 203 every 5 s, for ever (StartLimitIntervalSec=0). A drop-in now names the paths.
    exe = shutil.which("systemd-analyze")
    if exe is None:
        pytest.skip("systemd-analyze not installed (apt-get install systemd)")
    prefix = tmp_path / "my opt"
    (prefix / "venv" / "bin").mkdir(parents=True)
    (prefix / "venv" / "bin" / "edgedetect").write_text("#!/bin/sh\n")
    (prefix / "venv" / "bin" / "edgedetect").chmod(0o755)
    units = tmp_path / "units"
    env = _dry_env(tmp_path, PREFIX=str(prefix), UNIT_DIR=str(units))
    out = _install("--no-apt", env=env, check=True).stdout
    dropin = re.search(r"^\+ cat > (\S+) <<'EOF'\n(.*?)^EOF$", out, re.S | re.M)
    assert dropin, out
    path = Path(dropin.group(1))
    assert path.parent == units / "edgedetect.service.d"
    path.parent.mkdir(parents=True)
    path.write_text(dropin.group(2))
    shutil.copy(UNIT, units / "edgedetect.service")
    verify = subprocess.run(
        [exe, "verify", str(units / "edgedetect.service")],
        env=dict(os.environ, SYSTEMD_UNIT_PATH=f"{units}:"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert verify.returncode == 0, verify.stderr  # it checks that ExecStart's program exists
    assert f'--config "{tmp_path / "etc"}/config.toml"' in dropin.group(2)
    assert "User=edgedetect-test-nonexistent" in dropin.group(2)
    out = _install("--uninstall", env=env, check=True).stdout
    assert f"rm -f {shlex.quote(str(path))}" in out


def test_a_dry_run_says_it_changed_nothing(tmp_path: Path) -> None:
    # DRY_RUN=1 ended with "edgedetect installed" / "edgedetect uninstalled".
    env = _dry_env(tmp_path)
    for args in (["--no-apt"], ["--uninstall", "--purge"]):
        last = _install(*args, env=env, check=True).stdout.strip().splitlines()[-1]
        assert last.startswith("dry run: nothing was changed"), last


@pytest.mark.parametrize("which", ["PREFIX", "CONF_DIR", "STATE_DIR"])
@pytest.mark.parametrize("where", ["/home/pi/edgedetect-svc", "relative/dir"])
def test_install_refuses_paths_the_unit_cannot_reach(
    tmp_path: Path, which: str, where: str
) -> None:
    # ProtectHome=yes hides /home from the service; a relative path means nothing to systemd.
    res = _install("--no-apt", env=_dry_env(tmp_path, **{which: where}))
    lines = res.stderr.strip().splitlines()
    assert res.returncode == 2 and res.stdout == "", res.stdout
    assert len(lines) == 1 and where in lines[0]
    assert ("ProtectHome" if where.startswith("/") else "absolute") in lines[0]


def _fake_root(tmp_path: Path, **extra: str) -> dict[str, str]:
    """The environment of a real (not dry) install.sh run that needs neither root nor systemd.

    Stubs on PATH: `id` says uid 0 and that every user exists; useradd, usermod, userdel, getent,
    apt-get and systemctl only log to `tmp_path/calls.log`; `install` drops -o/-g; setpriv logs
    and runs its command as the caller. PYTHON is a
    fake interpreter without numpy (pip-constraints.py prints no pin) whose `-m venv DIR` makes
    a venv in a moment: its pip logs `pip DIR ARGS`
    (and fails with FAKE_PIP_RC), its edgedetect is this checkout's, run by this interpreter
    (or a traceback ending in FAKE_CRASH, exit 1).
    """
    bin_dir = tmp_path / "stubs"
    bin_dir.mkdir()
    log = tmp_path / "calls.log"
    stubs = {
        "id": "echo 0",
        "install": 'a=(); while [ $# -gt 0 ]; do case "$1" in -o|-g) shift 2 ;;'
        ' *) a+=("$1"); shift ;; esac; done; exec /usr/bin/install "${a[@]}"',
        "python": f"""if [ "${{1##*/}}" = pip-constraints.py ]; then exit 0; fi  # no numpy: no pin
if [ "$1 $2" != "-m venv" ]; then exit 1; fi
d="${{!#}}"; mkdir -p "$d/bin"
printf '#!/bin/bash\\necho "pip %s $*" >> {shlex.quote(str(log))}; exit ${{FAKE_PIP_RC:-0}}\\n' \\
  "$d" > "$d/bin/pip"
printf '#!/bin/sh\\n' > "$d/bin/edgedetect"
echo '[ -z "$FAKE_CRASH" ] || {{ echo Traceback; echo "$FAKE_CRASH"; exit 1; }} >&2' \\
  >> "$d/bin/edgedetect"
printf 'exec %s -m edgedetect "$@"\\n' {shlex.quote(sys.executable)} >> "$d/bin/edgedetect"
ln -s {shlex.quote(sys.executable)} "$d/bin/python"; chmod +x "$d/bin/pip" "$d/bin/edgedetect\"""",
    }
    for name in ("useradd", "usermod", "userdel", "getent", "apt-get", "systemctl"):
        stubs[name] = f'echo "{name} $*" >> {shlex.quote(str(log))}'
    # setpriv runs the command as it is (as the user running the test)
    stubs["setpriv"] = (
        f'echo "setpriv $*" >> {shlex.quote(str(log))}; while [ "$1" != -- ]; do shift; done;'
        ' shift; exec "$@"'
    )
    for name, body in stubs.items():
        (bin_dir / name).write_text(f"#!/bin/bash\n{body}\n")
        (bin_dir / name).chmod(0o755)
    (tmp_path / "units").mkdir()  # /etc/systemd/system, there on any systemd Linux
    env = _dry_env(tmp_path, DRY_RUN="0", PYTHON=str(bin_dir / "python"))
    env["PATH"] = f"{bin_dir}:{env['PATH']}"
    env["PYTHONPATH"] = str(REPO)
    env.update(extra)
    return env


def test_install_writes_the_state_dir_into_the_config(tmp_path: Path) -> None:
    # With STATE_DIR=/srv/... the installed config still sent events, snapshots and clips to
    # /var/lib/edgedetect, outside the drop-in's ReadWritePaths: the service could not write them.
    from edgedetect.service.config import load_config

    state = tmp_path / "my state & co|x"  # & and | would mean something to sed's s|||
    env = _fake_root(tmp_path, STATE_DIR=str(state))
    res = _install("--no-apt", env=env)
    assert res.returncode == 0, res.stdout + res.stderr
    conf = tmp_path / "etc" / "config.toml"
    assert "/var/lib/edgedetect" not in conf.read_text()
    cfg = load_config(conf)
    assert cfg.events.jsonl == str(state / "events.jsonl")
    assert cfg.snapshots.dir == str(state / "snapshots")
    assert cfg.clips.dir == str(state / "clips")
    assert f"check-config {tmp_path / 'etc'}/config.toml" in conf.read_text()
    dropin = (tmp_path / "units" / "edgedetect.service.d" / "install-paths.conf").read_text()
    assert f'ReadWritePaths="{state}"' in dropin and f"WorkingDirectory={state}" in dropin
    # An upgrade keeps the config and puts the example, with the same paths, beside it.
    conf.write_text(conf.read_text().replace("threshold = 0.5", "threshold = 0.6"))
    res = _install("--no-apt", env=env)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "threshold = 0.6" in conf.read_text()
    example = (tmp_path / "etc" / "config.example.toml").read_text()
    assert f'dir = "{state}/snapshots"' in example and "/var/lib/edgedetect" not in example


def _calls(tmp_path: Path) -> list[str]:
    log = tmp_path / "calls.log"
    return log.read_text().splitlines() if log.exists() else []


def _break_config(conf: Path) -> None:
    """A kept config the new version refuses (as a renamed or removed key would be)."""
    conf.write_text(conf.read_text().replace("threshold = 0.5", "threshhold = 0.5"))


def _assert_refused_in_one_line(res: subprocess.CompletedProcess[str], conf: Path) -> None:
    lines = res.stderr.strip().splitlines()
    assert res.returncode != 0 and len(lines) == 1, res.stdout + res.stderr
    assert f"{conf} fails the new version's check-config" in lines[0]
    assert "unknown key 'threshhold'" in lines[0] and f"edit {conf}" in lines[0]
    assert "run install.sh again" in lines[0] and "not changed" in lines[0]


def test_an_upgrade_whose_kept_config_fails_leaves_the_install_as_it_was(tmp_path: Path) -> None:
    # An upgrade pip-installed the new version into the service's venv and only then ran
    # check-config on the kept config: it stopped on a bare "edgedetect: error: ..." with the
    # running service on new code and a config that code refuses. The new venv is now built
    # beside the old one and the config checked with it before anything is switched.
    env = _fake_root(tmp_path)
    prefix, conf, unit = tmp_path / "opt", tmp_path / "etc" / "config.toml", tmp_path / "units"
    first = _install("--no-apt", env=env)
    assert first.returncode == 0, first.stdout + first.stderr
    live = (prefix / "venv").resolve()
    (live / "old-version").write_text("")
    (unit / "edgedetect.service").write_text("# the unit of the running version\n")
    before = sorted(p.name for p in prefix.iterdir())
    pips = len([c for c in _calls(tmp_path) if c.startswith("pip ")])
    _break_config(conf)
    res = _install("--no-apt", env=env)
    _assert_refused_in_one_line(res, conf)
    assert (prefix / "venv").resolve() == live and (live / "old-version").exists()
    assert sorted(p.name for p in prefix.iterdir()) == before, "the new venv was left behind"
    assert (unit / "edgedetect.service").read_text() == "# the unit of the running version\n"
    new_pips = [c for c in _calls(tmp_path) if c.startswith("pip ")][pips:]
    assert new_pips and not any(c.startswith(f"pip {live} ") for c in new_pips), new_pips
    assert not any("restart" in c for c in _calls(tmp_path))
    # Fixed, the same command switches to a new venv and removes the old one.
    conf.write_text(conf.read_text().replace("threshhold", "threshold"))
    res = _install("--no-apt", env=env)
    assert res.returncode == 0, res.stdout + res.stderr
    assert (prefix / "venv").is_symlink() and (prefix / "venv").resolve() != live
    assert not live.exists() and (prefix / "venv" / "bin" / "edgedetect").exists()


def test_an_upgrade_over_a_venv_directory_keeps_it_until_the_check_passes(tmp_path: Path) -> None:
    # Installs before the switch have a real directory at PREFIX/venv, not a symlink.
    env = _fake_root(tmp_path)
    first = _install("--no-apt", env=env)
    assert first.returncode == 0, first.stdout + first.stderr
    prefix, conf = tmp_path / "opt", tmp_path / "etc" / "config.toml"
    shutil.rmtree(prefix)  # the install as it was: the old venv a directory
    (prefix / "venv" / "bin").mkdir(parents=True)
    (prefix / "venv" / "old-version").write_text("")
    _break_config(conf)
    res = _install("--no-apt", env=env)
    _assert_refused_in_one_line(res, conf)
    assert (prefix / "venv" / "old-version").exists() and not (prefix / "venv").is_symlink()
    assert sorted(p.name for p in prefix.glob("venv*")) == ["venv"]
    conf.write_text(conf.read_text().replace("threshhold", "threshold"))
    res = _install("--no-apt", env=env)
    assert res.returncode == 0, res.stdout + res.stderr
    assert (prefix / "venv").is_symlink() and not (prefix / "venv" / "old-version").exists()
    assert [p.name for p in prefix.glob("venv-*")] == [(prefix / "venv").resolve().name]


def test_a_failed_pip_leaves_the_install_as_it_was(tmp_path: Path) -> None:
    # pip failing half-way (network, a full SD card) used to leave a half-upgraded venv.
    env = _fake_root(tmp_path)
    assert _install("--no-apt", env=env).returncode == 0
    prefix = tmp_path / "opt"
    live = (prefix / "venv").resolve()
    res = _install("--no-apt", env=dict(env, FAKE_PIP_RC="1"))
    lines = res.stderr.strip().splitlines()
    assert res.returncode == 1 and len(lines) == 1, res.stderr
    assert "pip could not install" in lines[0] and "run install.sh again" in lines[0]
    assert (prefix / "venv").resolve() == live and [p for p in prefix.glob("venv-*")] == [live]


def test_install_checks_the_config_as_the_service_user(tmp_path: Path) -> None:
    # The check ran as root: a config the service user cannot read (a token_file left root's
    # own, 0600) passed, and the restarted service exited 2 on it. It now runs as that user.
    env = _fake_root(tmp_path)
    res = _install("--no-apt", env=env)
    assert res.returncode == 0, res.stdout + res.stderr
    user = "edgedetect-test-nonexistent"
    conf = tmp_path / "etc" / "config.toml"
    checks = [c for c in _calls(tmp_path) if c.startswith("setpriv ")]
    assert len(checks) == 1 and checks[0].startswith(
        f"setpriv --reuid {user} --regid {user} --init-groups -- "
    )
    assert checks[0].endswith(f"/bin/edgedetect check-config {conf}"), checks
    out = _install("--no-apt", env=_dry_env(tmp_path)).stdout
    assert f"setpriv --reuid {user} --regid {user} --init-groups --" in out


@pytest.mark.parametrize("which", ["PREFIX", "CONF_DIR", "STATE_DIR"])
@pytest.mark.parametrize("char", ["%", "$", '"', "\\", "\n"])
def test_install_refuses_paths_the_unit_or_config_would_misread(
    tmp_path: Path, which: str, char: str
) -> None:
    # PREFIX=/srv/50%off: the drop-in's ExecStart ran /srv/50debianff/... (%o is a systemd
    # specifier), every 5 s for ever; $ is expanded in ExecStart, and " and \ end or escape the
    # quoted paths of the drop-in and the TOML strings the config's paths are written into.
    where = str(tmp_path / f"a{char}b")
    res = _install("--no-apt", env=_dry_env(tmp_path, **{which: where}))
    lines = res.stderr.strip().splitlines()
    assert res.returncode == 2 and res.stdout == "", res.stdout
    assert len(lines) == 1 and "pick a path without them" in lines[0], res.stderr


def test_a_check_that_cannot_run_is_not_blamed_on_the_config(tmp_path: Path) -> None:
    # A new version whose check-config crashes (exit 1, a traceback) is no config error: the
    # line must not send the owner to edit a config that is fine.
    env = _fake_root(tmp_path)
    assert _install("--no-apt", env=env).returncode == 0
    live = (tmp_path / "opt" / "venv").resolve()
    res = _install("--no-apt", env=dict(env, FAKE_CRASH="ImportError: libGL.so.1: not found"))
    lines = res.stderr.strip().splitlines()
    assert res.returncode == 2 and len(lines) == 1, res.stderr
    assert "not a config error" in lines[0] and "ImportError: libGL.so.1" in lines[0]
    assert "edit" not in lines[0] and "Traceback" not in lines[0]
    assert (tmp_path / "opt" / "venv").resolve() == live
