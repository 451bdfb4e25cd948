"""Memory of the real service over many SIGHUP reloads that change `[clips]`; prints JSON.

    python benchmarks/reload_soak.py [--reloads 125] [--env MALLOC_ARENA_MAX=2 ...]

`edgedetect run --config` runs as its own process on the bundled data/sample.mp4, looped (people
in half of it, so clips are recorded), with clips, events, snapshots and HTTP on. Each reload
rewrites the config with another `[clips] post_s` (so the clip recorder, and its encoder thread,
is rebuilt; `--change service.stall_timeout_s` is a control that rebuilds nothing), sends SIGHUP
and waits for /healthz to count it. RSS, open descriptors and threads
of the service process are read from /proc every `--every` reloads. `--env` sets variables in the
service's environment (as the systemd unit's `Environment=` does), to compare allocator settings.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "data" / "sample.mp4"


def proc_stats(pid: int) -> dict[str, float]:
    """RSS (MiB), threads and open descriptors of process `pid`."""
    status = dict(
        line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
    )
    return {
        "rss_mb": round(int(status["VmRSS"].split()[0]) / 1024, 1),
        "threads": int(status["Threads"]),
        "fds": len(os.listdir(f"/proc/{pid}/fd")),
    }


def write_config(path: Path, work: Path, port: int, value: float, change: str) -> None:
    """The service config: every output on, files under `work`; `change` ("section.key", a
    number) set to `value`."""
    config: dict[str, dict[str, object]] = {
        "service": {"log_level": "warning"},
        "source": {"spec": str(SAMPLE), "loop": True},
        "preview": {"enabled": False},
        "events": {"jsonl": str(work / "events.jsonl")},
        "snapshots": {"dir": str(work / "snaps")},
        "http": {"listen": f"127.0.0.1:{port}"},
        "clips": {"enabled": True, "dir": str(work / "clips")},
    }
    section, key = change.split(".")
    config.setdefault(section, {})[key] = value
    path.write_text(  # JSON's strings, numbers and booleans are TOML's too
        "".join(
            f"[{name}]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in table.items())
            for name, table in config.items()
        )
    )


def healthz(port: int) -> dict[str, object]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as r:
        return dict(json.load(r))


def wait_for(
    port: int, ok: Callable[[dict[str, object]], bool], timeout: float = 60.0
) -> dict[str, object]:
    """/healthz once `ok(health)` holds; TimeoutError after `timeout` s."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            health = healthz(port)
            if ok(health):
                return health
        except OSError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"the service did not get there in {timeout:.0f} s")


def reloaded(n: int) -> Callable[[dict[str, object]], bool]:
    """`wait_for`'s test: /healthz counts `n` reloads."""
    return lambda health: health.get("reloads") == n


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def soak(args: argparse.Namespace) -> dict[str, object]:
    """Start the service, reload it `args.reloads` times, sample it; the report."""
    work = Path(tempfile.mkdtemp(prefix="edgedetect-reload-soak-"))
    cfg, port = work / "config.toml", free_port()
    write_config(cfg, work, port, 5.0, args.change)
    env = dict(os.environ, **dict(kv.split("=", 1) for kv in args.env))
    cmd = [sys.executable, "-m", "edgedetect", "run", "--config", str(cfg)]
    with open(work / "service.log", "w") as log:
        proc = subprocess.Popen(cmd, env=env, cwd=REPO, stderr=log)
    try:
        wait_for(port, lambda h: h.get("status") == "ok")
        time.sleep(args.warmup)
        samples = [dict(reloads=0, **proc_stats(proc.pid))]
        for i in range(1, args.reloads + 1):
            write_config(cfg, work, port, 5.0 + 0.5 * (i % 2), args.change)
            proc.send_signal(signal.SIGHUP)
            wait_for(port, reloaded(i), timeout=30)
            time.sleep(args.interval)
            if i % args.every == 0 or i == args.reloads:
                samples.append(dict(reloads=i, **proc_stats(proc.pid)))
        health = healthz(port)
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(15)
    first, last = samples[0], samples[-1]
    return {
        "reloads": args.reloads,
        "change": args.change,
        "env": args.env,
        "rss_mb_start": first["rss_mb"],
        "rss_mb_end": last["rss_mb"],
        "rss_mb_max": max(s["rss_mb"] for s in samples),
        "rss_growth_mb": round(last["rss_mb"] - first["rss_mb"], 1),
        "threads_start_end": [first["threads"], last["threads"]],
        "fds_start_end": [first["fds"], last["fds"]],
        "reload_failures": health.get("reload_failures"),
        "clips_saved": len(list((work / "clips").glob("*.mp4"))),
        "exit_code": code,
        "target_rss_growth_mb": 10,
        "pass": bool(last["rss_mb"] - first["rss_mb"] < 10 and code == 0),
        "samples": [f"{s['reloads']}:{s['rss_mb']}" for s in samples],
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reloads", type=int, default=125, help="SIGHUP reloads to send")
    ap.add_argument("--every", type=int, default=25, help="sample every N reloads")
    ap.add_argument("--interval", type=float, default=0.5, help="seconds between reloads")
    ap.add_argument("--warmup", type=float, default=5.0, help="seconds before the first sample")
    ap.add_argument(
        "--change", default="clips.post_s", help="the key each reload changes (5 <-> 5.5)"
    )
    ap.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="set in the service's environment (repeatable), e.g. MALLOC_ARENA_MAX=2",
    )
    args = ap.parse_args()
    report = soak(args)
    print(json.dumps(report, indent=1))
    return 0 if report["pass"] else 1


if __name__ == "__main__":
    sys.exit(main())
