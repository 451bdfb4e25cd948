"""What a zone changes: events per hour with a zone over half the frame vs none, and how long a
person takes to become an event; prints JSON.

    python benchmarks/bench_zones.py [--seconds 600] [--halves left,right]

The real service (the project's default model, pipeline, tracker, zones) plays data/sample.mp4
looped at its own 15 fps, in subprocesses at once: without zones, and once per half with one
zone over that half of the frame (both people of the clip stand in its left half). The events
come from each run's JSON-lines file. Latency is counted from the first frame of a person
segment of the clip (data/sample.json) to the frame of the event: frames, and milliseconds of
clip time at 15 fps (the service's own processing delay, tens of ms, is on top and is measured
by `edgedetect bench`).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "data" / "sample.mp4"
META = json.loads((REPO / "data" / "sample.json").read_text())
HALVES = {
    "left": [[0.0, 0.0], [0.5, 0.0], [0.5, 1.0], [0.0, 1.0]],
    "right": [[0.5, 0.0], [1.0, 0.0], [1.0, 1.0], [0.5, 1.0]],
    "top": [[0.0, 0.0], [1.0, 0.0], [1.0, 0.5], [0.0, 0.5]],
    "bottom": [[0.0, 0.5], [1.0, 0.5], [1.0, 1.0], [0.0, 1.0]],
}


def run_service(jsonl: Path, seconds: float, half: str | None) -> None:
    """One service run in this process; its events end up in `jsonl`."""
    sys.path.insert(0, str(REPO))
    from edgedetect.service.config import validate
    from edgedetect.service.daemon import Service

    raw: dict[str, Any] = {
        "service": {"log_level": "warning"},
        "source": {"spec": str(SAMPLE), "loop": True},
        "model": {"threads": 1},
        "preview": {"enabled": False},
        "events": {"jsonl": str(jsonl), "log": False},
        "snapshots": {"enabled": False},
        "http": {"enabled": False},
        "motion": {"enabled": False},
    }
    if half:
        raw["zones"] = {"half": {"polygon": HALVES[half]}}
    svc = Service(validate(raw, "<bench_zones>"), install_signals=False)
    svc.start()
    runner = threading.Thread(target=svc.run, daemon=True)
    runner.start()
    time.sleep(seconds)
    svc.request_stop()
    runner.join(10)


def segment_start(position: int) -> int | None:
    """First frame of the person segment holding clip frame `position` (None: no person there)."""
    for seg in META["segments"]:
        if seg["person"] and seg["first"] <= position <= seg["last"]:
            return int(seg["first"])
    return None


def summarise(events: list[dict[str, Any]], seconds: float, first_of: str) -> dict[str, Any]:
    """Events per hour by type, and the latency of `first_of` events after a person appears."""
    per_hour = {}
    for kind in sorted({e["type"] for e in events}):
        n = sum(1 for e in events if e["type"] == kind)
        per_hour[kind] = round(n * 3600.0 / seconds, 1)
    frames = []
    for e in events:
        if e["type"] != first_of:
            continue
        position = int(e["frame_id"]) % int(META["frames"])
        start = segment_start(position)
        if start is not None:
            frames.append(position - start)
    lat = np.asarray(frames, dtype=float)
    ms_per_frame = 1000.0 / float(META["fps"])
    latency = {}
    if lat.size:
        p50, p95 = np.percentile(lat, [50, 95])
        latency = {
            "events": int(lat.size),
            "frames_p50": float(p50),
            "frames_p95": float(p95),
            "ms_p50": round(p50 * ms_per_frame, 1),
            "ms_p95": round(p95 * ms_per_frame, 1),
        }
    return {"events": len(events), "per_hour": per_hour, f"{first_of}_latency": latency}


def feet_in(e: dict[str, Any], half: str) -> bool:
    """Whether the event's box has its bottom centre in the half (the zone's own rule)."""
    x1, _, x2, y2 = e["box"]
    w, h = META["size"]
    fx, fy = (x1 + x2) / 2 / w, y2 / h
    return {"left": fx <= 0.5, "right": fx >= 0.5, "top": fy <= 0.5, "bottom": fy >= 0.5}[half]


def _parser() -> argparse.ArgumentParser:
    """The command line; ``--child``/``--jsonl`` are the subprocesses', hidden from ``--help``."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0].replace("\n", " "))
    ap.add_argument("--seconds", type=float, default=600.0, help="run time of each service")
    ap.add_argument("--halves", default="left,right", help="comma-separated: left,right,top,bottom")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--jsonl", help=argparse.SUPPRESS)
    return ap


def _run_services(out: Path, runs: dict[str, str], seconds: float) -> bool:
    """All runs at once, one subprocess each (``runs``: name -> half, "" for no zone), so they
    share the machine's load alike; False (reason on stderr) as soon as one has failed."""
    procs = {}
    for name, half in runs.items():
        cmd = [
            sys.executable,
            __file__,
            "--child",
            half,
            "--jsonl",
            str(out / f"{name}.jsonl"),
            "--seconds",
            str(seconds),
        ]
        procs[name] = subprocess.Popen(cmd, cwd=REPO, stderr=subprocess.PIPE, text=True)
    for name, proc in procs.items():
        _, err = proc.communicate()
        if proc.returncode != 0:
            print(f"bench_zones.py: the {name} run failed: {err.strip()[-500:]}", file=sys.stderr)
            return False
    return True


def _zone_summary(
    events: list[dict[str, Any]], half: str, seconds: float, people_per_hour: float
) -> dict[str, Any]:
    """One zoned run's zone events, set against the unzoned run's person events, and whether
    the entries had the person's feet in the half (as the zone's rule says they must)."""
    zone_events = [e for e in events if e["type"].startswith("zone_")]
    entered = [e for e in zone_events if e["type"] == "zone_entered"]
    summary = summarise(zone_events, seconds, "zone_entered")
    summary["polygon"] = HALVES[half]
    summary["zone_entered_over_person_entered"] = round(
        summary["per_hour"].get("zone_entered", 0.0) / max(people_per_hour, 1e-9), 3
    )
    summary["zone_entered_with_feet_in_the_half"] = (
        f"{sum(feet_in(e, half) for e in entered)} of {len(entered)}"
    )
    return summary


def _report(
    events_by_run: dict[str, list[dict[str, Any]]], halves: list[str], seconds: float
) -> dict[str, Any]:
    """The printed JSON: the unzoned run, then one entry per zoned half."""
    no_zone = summarise(events_by_run["no_zone"], seconds, "person_entered")
    people_per_hour = no_zone["per_hour"].get("person_entered", 0.0)
    report: dict[str, Any] = {
        "seconds": seconds,
        "clip": f"{SAMPLE.name} looped, {META['fps']:g} fps",
        "no_zone": no_zone,
    }
    for half in halves:
        report[f"{half}_half"] = _zone_summary(
            events_by_run[f"{half}_half"], half, seconds, people_per_hour
        )
    return report


def main() -> int:
    args = _parser().parse_args()
    if args.child is not None:
        run_service(Path(args.jsonl), args.seconds, args.child or None)
        return 0
    halves = [h for h in args.halves.split(",") if h]
    unknown = [h for h in halves if h not in HALVES]
    if unknown:
        print(f"bench_zones.py: --halves {unknown[0]!r}: use {', '.join(HALVES)}", file=sys.stderr)
        return 2
    out = Path(tempfile.mkdtemp(prefix="edgedetect-zones-"))
    runs = {"no_zone": ""} | {f"{h}_half": h for h in halves}
    if not _run_services(out, runs, args.seconds):
        return 1
    events_by_run = {
        name: [json.loads(line) for line in (out / f"{name}.jsonl").read_text().splitlines()]
        for name in runs
    }
    print(json.dumps(_report(events_by_run, halves, args.seconds), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
