"""What the tiled second pass buys and costs; prints JSON.

    python benchmarks/bench_tiles.py [--model M.tflite] [--tiles 2x2] [--threads 1] [--rounds 5]

For each set (INRIA's 4 test images, the small people of ``capston2/valid`` and of the COCO-train
hold-out), recall at the detector's threshold of people smaller than ``--small`` of the image
height, without and with tiles; and the per-image latency of both, measured interleaved (plain,
tiled, plain, ...) in one run on the same images so a noisy shared machine affects both alike. The
ratio is the number to quote; milliseconds are this host's.
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

from edgedetect.boxes import box_iou  # noqa: E402
from edgedetect.detector import Detector  # noqa: E402
from edgedetect.images import read_bgr  # noqa: E402
from edgedetect.tiling import TiledDetector, parse_tiles  # noqa: E402

SHARED = ROOT.parent / "shared" / "data"
SETS = {
    "inria_test": (f"inria:{SHARED / 'inria/Test'}", None),
    "capston2_valid": (f"yolo:{SHARED / 'capston2/valid'}", None),
    "coco_val": (f"yolo:{SHARED / 'coco_train/coco128'}", ROOT / "data/splits/coco128_val.txt"),
}


def small_recall(detector, samples, small: float) -> tuple[int, int]:
    """(found, total) people whose box is shorter than ``small`` x the image height."""
    found = total = 0
    for s in samples:
        heights = s.boxes[:, 3] - s.boxes[:, 1]
        truth = s.boxes[heights < small * s.height]
        if len(truth) == 0:
            continue
        dets = detector.detect(read_bgr(s.image_path))
        total += len(truth)
        if len(dets):
            found += int((box_iou(truth, dets.xyxy).max(axis=1) >= 0.5).sum())
    return found, total


def latency(plain, tiled, images, rounds: int) -> dict[str, float]:
    times: dict[str, list[float]] = {"plain": [], "tiled": []}
    for _ in range(rounds):
        for img in images:
            for name, det in (("plain", plain), ("tiled", tiled)):
                t0 = time.perf_counter()
                det.detect(img)
                times[name].append((time.perf_counter() - t0) * 1000)
    p, t = statistics.median(times["plain"]), statistics.median(times["tiled"])
    return {
        "plain_ms_p50": round(p, 2),
        "tiled_ms_p50": round(t, 2),
        "tiled_over_plain": round(t / p, 2),
    }


def main() -> int:
    from host_tools.datasets import load_dataset

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default=None, help="TFLite model (default: the project's)")
    ap.add_argument("--tiles", default="2x2", help="ROWSxCOLS, each 1..4")
    ap.add_argument("--threshold", type=float, default=0.5, help="minimum score, 0..1")
    ap.add_argument(
        "--small", type=float, default=0.25, help="small = box height < this x image height"
    )
    ap.add_argument("--threads", type=int, default=1, help="interpreter threads")
    ap.add_argument("--rounds", type=int, default=5, help="latency passes over the images")
    args = ap.parse_args()
    plain = Detector(args.model, threshold=args.threshold, num_threads=args.threads)
    tiled = TiledDetector(plain, *parse_tiles(args.tiles))
    sets: dict[str, dict[str, object]] = {}
    out: dict[str, object] = {
        "model": str(plain.model_path),
        "tiles": args.tiles,
        "threshold": args.threshold,
        "small_fraction_of_height": args.small,
        "sets": sets,
    }
    images = []
    for name, (spec, split) in SETS.items():
        if not Path(spec.split(":", 1)[1]).exists():
            sets[name] = {"skipped": f"{spec.split(':', 1)[1]} not found"}
            continue
        samples = load_dataset(spec, split).samples
        (pf, n), (tf_, _) = (
            small_recall(plain, samples, args.small),
            small_recall(tiled, samples, args.small),
        )
        sets[name] = {
            "small_people": n,
            "recall_plain": round(pf / max(n, 1), 3),
            "recall_tiled": round(tf_ / max(n, 1), 3),
        }
        images += [read_bgr(s.image_path) for s in samples[:4]]
    out["latency"] = (
        latency(plain, tiled, images, args.rounds) if images else {"skipped": "no images"}
    )
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
