"""Per-image latency of several detectors, interleaved in one run; prints JSON.

    python benchmarks/bench_models.py [--threads 1 2] [--rounds 30] [MODEL.tflite ...]

Default models: every ``models/*.tflite`` of the project and the COCO SSD-MobileNet-v1 quant and
FPNLite 320 references in ../shared/data/models (skipped when absent). Each round runs every
model once on the same real frame (the bundled clip's), so a noisy shared machine slows all of
them alike; the ratio to the first reference is the number to quote, milliseconds are this host's.
Latency is the runtime ``Detector.detect`` (resize, inference, decode, NMS), as the Pi pipeline
pays it.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout

import cv2  # noqa: E402

from edgedetect.detector import Detector  # noqa: E402

REFERENCES = [
    ROOT.parent / "shared/data/models/ssd_mobilenet_v1_coco_quant.tflite",
    ROOT.parent / "shared/data/models/ssd_mobilenet_v2_fpnlite_320_coco_tf2.tflite",
]


def clip_frame() -> cv2.typing.MatLike:
    cap = cv2.VideoCapture(str(ROOT / "data" / "sample.mp4"))
    ok, frame = cap.read()
    cap.release()
    if not ok:
        raise SystemExit("bench_models: data/sample.mp4 did not decode; restore it from git")
    return frame


def _detector(model: Path, threads: int) -> Detector:
    """The person detector of ``model``; the COCO references' labels are coco_labels.txt."""
    coco = model.parent / "coco_labels.txt"
    own = model.with_suffix(".labels.txt")
    labels = coco if not own.is_file() and coco.is_file() else None
    return Detector(model, labels=labels, threshold=0.5, num_threads=threads)


def run(models: list[Path], threads: int, rounds: int) -> dict[str, dict[str, float]]:
    """Median and p90 milliseconds per model, ``rounds`` interleaved rounds after one warm-up."""
    frame = clip_frame()
    detectors = {m.name: _detector(m, threads) for m in models}
    times: dict[str, list[float]] = {name: [] for name in detectors}
    for r in range(rounds + 1):
        for name, det in detectors.items():
            t0 = time.perf_counter()
            det.detect(frame)
            if r:  # round 0 warms up
                times[name].append((time.perf_counter() - t0) * 1000)
    refs = {r.resolve() for r in REFERENCES}
    first_ref = next((m.name for m in models if m.resolve() in refs), models[0].name)
    base = statistics.median(times[first_ref])
    return {
        name: {
            "ms_p50": round(statistics.median(t), 2),
            "ms_p90": round(statistics.quantiles(t, n=10)[-1], 2),
            f"ratio_to_{first_ref}": round(statistics.median(t) / base, 3),
        }
        for name, t in times.items()
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("models", nargs="*", type=Path, help="TFLite models (default: see above)")
    p.add_argument(
        "--threads", type=int, nargs="+", default=[1, 2], help="interpreter thread counts, each run"
    )
    p.add_argument(
        "--rounds", type=int, default=30, help="rounds of every model on the frame, at least 2"
    )
    args = p.parse_args(argv)
    if args.rounds < 2:
        p.error("--rounds must be at least 2")
    models = args.models or sorted((ROOT / "models").glob("*.tflite")) + [
        m for m in REFERENCES if m.is_file()
    ]
    missing = [str(m) for m in models if not m.is_file()]
    if missing:
        p.error(f"model not found: {', '.join(missing)}")
    out = {f"threads_{n}": run(models, n, args.rounds) for n in args.threads}
    print(json.dumps({"rounds": args.rounds, **out}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
