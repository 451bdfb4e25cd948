"""What `[clips]` costs the service: CPU per frame and peak memory, clips on vs off; prints JSON.

    python benchmarks/bench_clips.py [--seconds 60] [--model M --labels L]

The real service (the project's model unless --model, pipeline, tracker, outputs) runs on the
bundled data/sample.mp4 looped (people in half of it, so episodes start and end) at the file's
own 15 fps, once with
`[clips] enabled` (the shipped defaults: pre_s 3, post_s 5, fps 5, width 640, annotated) and
once without. Each run is its own subprocess, so peak RSS (VmHWM) is that run's alone. CPU is
`time.process_time` of the whole process (all threads, the clip encoder included) over
`--seconds` after a warm-up, divided by the frames that reached the output stage.
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

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "data" / "sample.mp4"
WARMUP_S = 3.0


def peak_rss_mb() -> float:
    """VmHWM of this process (the kernel's peak resident set), in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def run_once(clips: bool, seconds: float, model: str, labels: str) -> dict[str, object]:
    sys.path.insert(0, str(REPO))
    from edgedetect.service.config import validate
    from edgedetect.service.daemon import Service

    out = Path(tempfile.mkdtemp(prefix="edgedetect-clips-"))
    raw = {
        "service": {"log_level": "warning"},
        "source": {"spec": str(SAMPLE), "loop": True},
        "model": {"path": model, "labels": labels, "threads": 1},
        "preview": {"enabled": False},
        "events": {"jsonl": ""},
        "snapshots": {"enabled": False},
        "http": {"enabled": False},
        "motion": {"enabled": False},
        "clips": {"enabled": clips, "dir": str(out / "clips")},
    }
    svc = Service(validate(raw, "<bench_clips>"), install_signals=False)
    svc.start()
    runner = threading.Thread(target=svc.run, daemon=True)
    runner.start()
    frames = svc.metrics.frames
    time.sleep(WARMUP_S)
    c0, t0, f0 = time.process_time(), time.monotonic(), frames._value.get()
    time.sleep(seconds)
    c1, t1, f1 = time.process_time(), time.monotonic(), frames._value.get()
    buffer_bytes = svc.sink.recorder.buffer_bytes if svc.sink.recorder is not None else 0
    svc.request_stop()
    runner.join(10)
    m = svc.metrics
    written = sorted((out / "clips").glob("*.mp4")) if clips else []
    return {
        "frames": int(f1 - f0),
        "fps": round((f1 - f0) / (t1 - t0), 2),
        "cpu_ms_per_frame": round((c1 - c0) / max(f1 - f0, 1) * 1000, 2),
        "cpu_s_per_s": round((c1 - c0) / (t1 - t0), 3),
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "clip_buffer_mb": round(buffer_bytes / 2**20, 1),  # MiB, as RSS and buffer_mb
        "clips": int(m.clips._value.get()),
        "clips_failed": int(m.clips_failed._value.get()),
        "clip_frames_dropped": int(m.clip_frames_dropped._value.get()),
        "clip_mb": round(sum(p.stat().st_size for p in written) / 1e6, 2),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--seconds", type=float, default=60.0, help="run time of each service, clips on and off"
    )
    ap.add_argument("--model", default="", help="TFLite model (default: the project's own)")
    ap.add_argument("--labels", default="", help="its labels (default: beside the model)")
    ap.add_argument("--child", choices=("on", "off"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(run_once(args.child == "on", args.seconds, args.model, args.labels)))
        return 0
    runs = {}
    for mode in ("off", "on"):
        cmd = [
            sys.executable,
            __file__,
            "--child",
            mode,
            "--seconds",
            str(args.seconds),
            "--model",
            args.model,
            "--labels",
            args.labels,
        ]
        done = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
        if done.returncode != 0:
            print(
                f"bench_clips.py: the clips-{mode} run failed: {done.stderr.strip()[-500:]}",
                file=sys.stderr,
            )
            return 1
        runs[mode] = json.loads(done.stdout.strip().splitlines()[-1])
    on, off = runs["on"], runs["off"]
    print(
        json.dumps(
            {
                "seconds": args.seconds,
                "clips_off": off,
                "clips_on": on,
                "cpu_per_frame_on_over_off": round(
                    on["cpu_ms_per_frame"] / max(off["cpu_ms_per_frame"], 1e-9), 3
                ),
                "peak_rss_on_minus_off_mb": round(on["peak_rss_mb"] - off["peak_rss_mb"], 1),
            },
            indent=1,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
