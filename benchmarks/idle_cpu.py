"""CPU the service spends on a still scene, with motion gating on and off; prints JSON.

    python benchmarks/idle_cpu.py [--seconds 60] [--model M --labels L]

An idle Pi should stay cool: a camera watching an empty hall sends the same picture for hours.
The real service runs on a 30 fps clip of one unchanging photo, looped (a file plays at its own
frame rate in the service, as a camera delivers), for ``--seconds`` with `[motion] enabled` and
again without; the number is CPU seconds used per minute of wall time by the whole process
(``time.process_time``), which includes the capture, the detector, the HTTP server and the outputs.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def cpu_per_minute(
    clip: Path, model: str, labels: str, motion: bool, seconds: float
) -> dict[str, float]:
    from edgedetect.service.config import validate
    from edgedetect.service.daemon import Service

    raw = {
        "service": {"log_level": "warning"},
        "source": {"spec": f"file:{clip}", "loop": True},
        "model": {"path": model, "labels": labels, "threads": 1},
        "preview": {"enabled": False},
        "events": {"jsonl": ""},
        "snapshots": {"dir": ""},
        "http": {"listen": "127.0.0.1:0"},
        "motion": {"enabled": motion},
    }
    svc = Service(validate(raw, "<idle>"), install_signals=False)
    svc.start()
    runner = threading.Thread(target=svc.run, daemon=True)
    runner.start()
    time.sleep(3.0)  # model loaded, pipeline running
    c0, t0, f0 = time.process_time(), time.monotonic(), svc.metrics.frames._value.get()
    time.sleep(seconds)
    c1, t1, f1 = time.process_time(), time.monotonic(), svc.metrics.frames._value.get()
    stats = svc.pipeline_stats()
    svc.request_stop()
    runner.join(10)
    return {
        "cpu_s_per_min": round((c1 - c0) / (t1 - t0) * 60, 2),
        "frames_per_s": round((f1 - f0) / (t1 - t0), 1),
        "inferred": stats.get("inferred"),
        "skipped": stats.get("skipped"),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=60.0, help="still scene per setting")
    ap.add_argument(
        "--model",
        default=str(REPO / "models" / "person_ssdlite_int8.tflite"),
        help="TFLite model (default: the project's)",
    )
    ap.add_argument(
        "--labels",
        default=str(REPO / "models" / "person_ssdlite_int8.labels.txt"),
        help="its labels",
    )
    args = ap.parse_args()
    sys.path.insert(0, str(REPO))
    import cv2
    from skimage import data

    clip = Path(tempfile.mkdtemp(prefix="edgedetect-idle-")) / "hall.mp4"
    still = cv2.resize(cv2.cvtColor(data.coffee(), cv2.COLOR_RGB2BGR), (1280, 720))  # no one there
    out = cv2.VideoWriter(str(clip), cv2.VideoWriter.fourcc(*"mp4v"), 30.0, (1280, 720))
    for _ in range(90):
        out.write(still)
    out.release()
    on = cpu_per_minute(clip, args.model, args.labels, True, args.seconds)
    off = cpu_per_minute(clip, args.model, args.labels, False, args.seconds)
    print(
        json.dumps(
            {
                "seconds": args.seconds,
                "motion_on": on,
                "motion_off": off,
                "off_over_on": round(off["cpu_s_per_min"] / max(on["cpu_s_per_min"], 1e-9), 1),
            },
            indent=1,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
