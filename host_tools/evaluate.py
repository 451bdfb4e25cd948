"""Evaluate a person detector on an annotated dataset through the runtime ``edgedetect`` Detector.

    python -m host_tools.evaluate --model M.tflite [--labels L] --dataset SPEC [--split-file F]
        [--threshold 0.5] [--threads N] --out DIR
    python -m host_tools.evaluate --model hog --dataset SPEC --out DIR      # Dalal-Triggs baseline

The detector runs once per image at a low score threshold (``--curve-threshold``, default 0.05; 0 =
the SVM boundary for HOG) so that COCO AP and the log-average miss rate see the whole score range;
precision, recall and mean IoU are read at the operating ``--threshold`` from the same matches
(greedy matching in score order makes that exact). Writes DIR/report.json, DIR/report.md,
DIR/pr_curve.png, DIR/miss_rate_fppi.png, DIR/gallery.png and DIR/detections.json.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import hashlib
import json
import platform
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from edgedetect.errors import EdgeDetectError, ImageError, ModelError
from edgedetect.images import read_bgr
from host_tools._cli import cli_errors
from host_tools.datasets import KINDS, Dataset, DatasetError, Sample, load_dataset
from host_tools.datasets.coco import PERSON_CATEGORY_ID, to_coco_dict
from host_tools.metrics import (
    LAMR_FPPI_POINTS,
    ImageMatch,
    accumulate,
    average_precision,
    coco_ap,
    log_average_miss_rate,
    match_image,
    miss_rates_at,
    operating_point,
)

DEFAULT_CURVE_THRESHOLD = 0.05
MATCH_IOU = 0.5


class PersonDetector(Protocol):
    """What the evaluator needs of a detector: ``edgedetect.detector.Detector`` and ``HogDetector`` fit."""

    def detect(self, image_bgr: np.ndarray) -> Any: ...


@dataclass
class ImageResult:
    """Detections and matching of one image."""

    sample: Sample
    xyxy: np.ndarray
    scores: np.ndarray
    match: ImageMatch
    latency_ms: float


@dataclass
class Evaluation:
    """Everything one evaluation run measured."""

    images: list[ImageResult]
    threshold: float
    curve_threshold: float
    metrics: dict[str, Any] = field(default_factory=dict)


def run_detector(
    detector: PersonDetector,
    dataset: Dataset,
    curve_threshold: float,
    iou_threshold: float = MATCH_IOU,
    progress: bool = True,
) -> list[ImageResult]:
    """Detect in every image (with a tqdm bar on stderr) and match against its ground truth."""
    from tqdm import tqdm

    results = []
    warmed = False
    for sample in tqdm(
        dataset.samples, desc="evaluate", unit="img", file=sys.stderr, disable=not progress
    ):
        image = read_bgr(sample.image_path)
        h, w = image.shape[:2]
        if (w, h) != (sample.width, sample.height):
            raise DatasetError(
                f"{sample.image_path} is {w}x{h} but its annotation {sample.annotation} says "
                f"{sample.width}x{sample.height}; fix the annotation or the image"
            )
        if not warmed:  # the first invoke allocates and packs weights; keep it out of the latency
            detector.detect(image)
            warmed = True
        t0 = time.perf_counter()
        dets = detector.detect(image)
        latency = (time.perf_counter() - t0) * 1000.0
        keep = np.asarray(dets.score) >= curve_threshold
        xyxy = np.asarray(dets.xyxy, np.float64)[keep]
        scores = np.asarray(dets.score, np.float64)[keep]
        match = match_image(xyxy, scores, sample.boxes, sample.ignore, iou_threshold)
        results.append(ImageResult(sample, xyxy, scores, match, latency))
    return results


def compute_metrics(
    results: list[ImageResult], threshold: float, curve_threshold: float
) -> dict[str, Any]:
    """The report's numbers from per-image results."""
    matches = [r.match for r in results]
    curve = accumulate(matches)
    op = operating_point(matches, threshold)
    samples = [r.sample for r in results]
    coco_dets = [
        {
            "image_id": i,
            "category_id": PERSON_CATEGORY_ID,
            "bbox": [float(b[0]), float(b[1]), float(b[2] - b[0]), float(b[3] - b[1])],
            "score": float(s),
        }
        for i, r in enumerate(results, start=1)
        for b, s in zip(r.xyxy, r.scores, strict=True)
    ]
    coco = coco_ap(to_coco_dict(samples), coco_dets)
    lat = np.array([r.latency_ms for r in results]) if results else np.zeros(1)
    return {
        "ap": coco["ap"],
        "ap50": coco["ap50"],
        "ap75": coco["ap75"],
        "ap50_all_point": average_precision(curve.recall, curve.precision),
        "lamr": log_average_miss_rate(curve.fppi, curve.miss_rate),
        "miss_rate_at_fppi": dict(
            zip(
                [f"{p:.4g}" for p in LAMR_FPPI_POINTS],
                miss_rates_at(curve.fppi, curve.miss_rate),
                strict=True,
            )
        ),
        "mean_iou": op.mean_iou,
        "precision": op.precision,
        "recall": op.recall,
        "tp": op.tp,
        "fp": op.fp,
        "fn": op.fn,
        "threshold": threshold,
        "curve_threshold": curve_threshold,
        "match_iou": MATCH_IOU,
        "images": len(results),
        "gt_boxes": int(sum(s.num_people for s in samples)),
        "ignored_boxes": int(sum(int(s.ignore.sum()) for s in samples)),
        "detections_at_curve_threshold": int(sum(len(r.scores) for r in results)),
        "latency_ms_p50": float(np.percentile(lat, 50)),
        "latency_ms_p95": float(np.percentile(lat, 95)),
        "latency_ms_mean": float(lat.mean()),
    }


def evaluate(
    detector: PersonDetector,
    dataset: Dataset,
    threshold: float,
    curve_threshold: float,
    progress: bool = True,
) -> Evaluation:
    """Run and score a detector on a dataset."""
    if curve_threshold > threshold:
        raise EdgeDetectError(
            f"--curve-threshold {curve_threshold} must not exceed --threshold {threshold}"
        )
    results = run_detector(detector, dataset, curve_threshold, progress=progress)
    return Evaluation(
        results, threshold, curve_threshold, compute_metrics(results, threshold, curve_threshold)
    )


def file_digest(path: Path) -> str:
    """sha256 of a file, so a report names exactly which model it measured."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def model_info(detector: Any, model_arg: str) -> dict[str, Any]:
    """Model path, size and sha256 (a detector that is not a file, like HOG, names its own)."""
    info = dict(detector.info()) if hasattr(detector, "info") else {}
    info.pop("model", None)
    info.pop("threshold", None)  # the detector ran at the curve threshold, reported at top level
    if "sha256" not in info:
        p = Path(model_arg)
        info.update(
            path=str(p.resolve()), name=p.name, size_bytes=p.stat().st_size, sha256=file_digest(p)
        )
    return info


def make_detector(
    model: str,
    labels: str | None,
    curve_threshold: float,
    threads: int,
    classes: list[str],
    tiles: str = "off",
) -> Any:
    """The runtime Detector for a .tflite (with a tiled second pass if ``tiles``), or HOG for ``hog``."""
    if model == "hog":
        from host_tools.hog import HogDetector

        return HogDetector(threshold=curve_threshold)
    path = Path(model)
    if not path.is_file():
        raise ModelError(
            f"model file {path} not found (pass a .tflite file, or --model hog for the HOG baseline)"
        )
    from edgedetect.detector import Detector
    from edgedetect.tiling import TiledDetector, parse_tiles

    rows, cols = parse_tiles(tiles)
    det = Detector(
        path, labels=labels, threshold=curve_threshold, classes=classes, num_threads=threads
    )
    return det if rows * cols == 1 else TiledDetector(det, rows, cols)


# ---------------------------------------------------------------------------------------- report
GREEN, BLUE, RED, ORANGE = (0, 170, 0), (255, 128, 0), (0, 0, 255), (0, 140, 255)


def write_report(ev: Evaluation, out: Path, meta: dict[str, Any]) -> dict[str, Any]:
    """report.json, report.md, plots, gallery and per-image detections; returns the report dict."""
    out.mkdir(parents=True, exist_ok=True)
    report = {**ev.metrics, **meta}
    (out / "report.json").write_text(
        json.dumps(report, indent=2, sort_keys=False) + "\n", encoding="utf-8"
    )
    (out / "detections.json").write_text(
        json.dumps(detections_json(ev), indent=1) + "\n", encoding="utf-8"
    )
    plot_pr_curve(ev, out / "pr_curve.png", report["model"]["name"])
    plot_miss_rate(ev, out / "miss_rate_fppi.png", report["model"]["name"])
    write_gallery(ev, out / "gallery.png")
    (out / "report.md").write_text(report_markdown(report), encoding="utf-8")
    return report


def detections_json(ev: Evaluation) -> list[dict[str, Any]]:
    """Per-image detections (curve threshold) with their match outcome, to inspect or diff runs."""
    items = []
    for r in ev.images:
        m = r.match
        outcome = [
            "tp" if t else "ignored" if i else "fp" for t, i in zip(m.tp, m.ignored, strict=True)
        ]
        items.append(
            {
                "image": r.sample.name,
                "gt": [[round(float(v), 1) for v in b] for b in r.sample.boxes],
                "detections": [
                    {
                        "box": [round(float(v), 2) for v in b],
                        "score": round(float(s), 5),
                        "outcome": o,
                        "iou": round(float(iou), 4),
                    }
                    for b, s, o, iou in zip(r.xyxy, r.scores, outcome, m.iou, strict=True)
                ],
            }
        )
    return items


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_pr_curve(ev: Evaluation, path: Path, title: str) -> None:
    """Precision-recall curve (IoU 0.5) with the operating point marked."""
    plt = _pyplot()
    curve = accumulate([r.match for r in ev.images])
    m = ev.metrics
    fig, ax = plt.subplots(figsize=(6, 5), dpi=100)
    if len(curve.scores):
        ax.plot(
            np.concatenate([[0.0], curve.recall]),
            np.concatenate([[1.0], curve.precision]),
            lw=1.5,
            label=f"AP50 {m['ap50']:.3f} (COCO) / {m['ap50_all_point']:.3f} (all-point)",
        )
    ax.plot(
        [m["recall"]],
        [m["precision"]],
        "o",
        color="C3",
        label=f"threshold {m['threshold']:g}: P {m['precision']:.2f} R {m['recall']:.2f}",
    )
    ax.set(
        xlim=(0, 1),
        ylim=(0, 1.02),
        xlabel="recall",
        ylabel="precision",
        title=f"{title}: precision-recall (IoU >= 0.5)",
    )
    ax.grid(alpha=0.3)
    ax.legend(loc="lower left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def plot_miss_rate(ev: Evaluation, path: Path, title: str) -> None:
    """Miss rate against false positives per image (log-log), with the 9 LAMR reference points."""
    plt = _pyplot()
    curve = accumulate([r.match for r in ev.images])
    fig, ax = plt.subplots(figsize=(6, 5), dpi=100)
    fppi = np.concatenate([[1e-4], np.maximum(curve.fppi, 1e-4)])
    miss = np.concatenate([[1.0], curve.miss_rate])
    ax.step(
        fppi, np.maximum(miss, 1e-3), where="post", lw=1.5, label=f"LAMR {ev.metrics['lamr']:.3f}"
    )
    refs = miss_rates_at(curve.fppi, curve.miss_rate)
    ax.plot(
        LAMR_FPPI_POINTS,
        np.maximum(refs, 1e-3),
        "o",
        color="C3",
        ms=4,
        label="reference FPPI points",
    )
    low = float(np.clip(miss.min() * 0.7, 1e-3, 0.5))
    ax.set(
        xscale="log",
        yscale="log",
        xlim=(1e-3, 1e1),
        ylim=(low, 1.05),
        xlabel="false positives per image",
        ylabel="miss rate",
        title=f"{title}: miss rate vs FPPI",
    )
    ax.axvspan(1e-2, 1.0, color="0.9", zorder=0)
    ax.grid(alpha=0.3, which="both")
    ax.legend(loc="lower left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _tile(
    r: ImageResult,
    subject: np.ndarray,
    color: tuple[int, int, int],
    caption: str,
    threshold: float,
    size: tuple[int, int] = (180, 240),
) -> np.ndarray:
    """A crop around ``subject`` with every box of the image drawn, letterboxed into ``size``, captioned."""
    import cv2

    image = read_bgr(r.sample.image_path)
    h, w = image.shape[:2]
    x1, y1, x2, y2 = (float(v) for v in subject)
    pad = 0.35 * max(x2 - x1, y2 - y1, 60.0)  # context, and at least some for tiny boxes
    cx1, cy1 = int(max(0, x1 - pad)), int(max(0, y1 - pad))
    cx2, cy2 = int(min(w, x2 + pad)), int(min(h, y2 + pad))
    crop = image[cy1 : max(cy2, cy1 + 1), cx1 : max(cx2, cx1 + 1)]
    tw, th = size
    cap_h = 34
    scale = min(tw / crop.shape[1], (th - cap_h) / crop.shape[0])
    crop = cv2.resize(
        crop,
        (max(1, round(crop.shape[1] * scale)), max(1, round(crop.shape[0] * scale))),
        interpolation=cv2.INTER_AREA,
    )

    def draw(b: np.ndarray, col: tuple[int, int, int], t: int) -> None:
        # boxes are drawn after resizing so line widths are the same in every tile
        p1 = (round((b[0] - cx1) * scale), round((b[1] - cy1) * scale))
        p2 = (round((b[2] - cx1) * scale), round((b[3] - cy1) * scale))
        cv2.rectangle(crop, p1, p2, col, t)

    for b, ign in zip(r.sample.boxes, r.sample.ignore, strict=True):
        draw(b, (128, 128, 128) if ign else GREEN, 1)
    for b, sc, tp in zip(r.xyxy, r.scores, r.match.tp, strict=True):
        if sc >= threshold:
            draw(b, BLUE if tp else RED, 1)
    draw(np.asarray(subject), color, 2)
    tile = np.full((th, tw, 3), 40, np.uint8)
    oy, ox = (th - cap_h - crop.shape[0]) // 2, (tw - crop.shape[1]) // 2
    tile[oy : oy + crop.shape[0], ox : ox + crop.shape[1]] = crop
    for k, line in enumerate(caption.split("\n")[:2]):
        cv2.putText(
            tile,
            line,
            (4, th - cap_h + 13 + 15 * k),
            cv2.FONT_HERSHEY_SIMPLEX,
            0.4,
            color if k == 0 else (230, 230, 230),
            1,
            cv2.LINE_AA,
        )
    return tile


def write_gallery(ev: Evaluation, path: Path, per_kind: int = 8, cols: int = 4) -> None:
    """Worst false positives (highest scores) and worst misses (largest people) at the operating threshold."""
    import cv2

    thr = ev.threshold
    fps, misses = [], []
    for r in ev.images:
        m = r.match
        for i in np.flatnonzero(m.fp & (m.scores >= thr)):
            fps.append(
                (
                    -float(m.scores[i]),
                    r.sample.name,
                    r,
                    r.xyxy[i],
                    f"FP score {m.scores[i]:.2f}\n{r.sample.name}",
                )
            )
        for j in np.flatnonzero((m.gt_score < thr) & ~m.gt_ignore):
            b = r.sample.boxes[j]
            area = float((b[2] - b[0]) * (b[3] - b[1]))
            misses.append(
                (
                    -area,
                    r.sample.name,
                    r,
                    b,
                    f"MISS {int(b[2] - b[0])}x{int(b[3] - b[1])} px\n{r.sample.name}",
                )
            )
    fps.sort(key=lambda x: (x[0], x[1]))
    misses.sort(key=lambda x: (x[0], x[1]))
    rows = []
    for title, items, color in (
        ("worst false positives", fps[:per_kind], RED),
        ("worst misses", misses[:per_kind], ORANGE),
    ):
        header = np.full((26, 180 * cols, 3), 255, np.uint8)
        cv2.putText(
            header,
            f"{title} at threshold {thr:g} ({len(fps if color == RED else misses)} in all)",
            (6, 18),
            cv2.FONT_HERSHEY_SIMPLEX,
            0.5,
            (0, 0, 0),
            1,
            cv2.LINE_AA,
        )
        rows.append(header)
        tiles = [_tile(it[2], it[3], color, it[4], thr) for it in items]
        if not tiles:
            empty = np.full((40, 180 * cols, 3), 255, np.uint8)
            cv2.putText(
                empty, "none", (6, 26), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA
            )
            rows.append(empty)
        for k in range(0, len(tiles), cols):
            row = tiles[k : k + cols]
            row += [np.full_like(tiles[0], 255)] * (cols - len(row))
            rows.append(np.concatenate(row, axis=1))
    legend = np.full((24, 180 * cols, 3), 255, np.uint8)
    for k, (txt, col) in enumerate(
        (
            ("ground truth", GREEN),
            ("detection (TP)", BLUE),
            ("false positive", RED),
            ("missed", ORANGE),
        )
    ):
        cv2.rectangle(legend, (6 + 170 * k, 6), (20 + 170 * k, 18), col, -1)
        cv2.putText(
            legend,
            txt,
            (26 + 170 * k, 17),
            cv2.FONT_HERSHEY_SIMPLEX,
            0.45,
            (0, 0, 0),
            1,
            cv2.LINE_AA,
        )
    rows.append(legend)
    if not cv2.imwrite(str(path), np.concatenate(rows, axis=0)):
        raise ImageError(f"cannot write {path}")


def _fmt_size(n: int) -> str:
    return f"{n / 1e6:.2f} MB" if n >= 1e5 else f"{n / 1e3:.1f} kB"


def report_markdown(r: dict[str, Any]) -> str:
    """A readable summary of report.json."""
    mdl, ds = r["model"], r["dataset"]
    mr = ", ".join(f"{v:.2f}@{k}" for k, v in r["miss_rate_at_fppi"].items())
    lines = [
        f"# Evaluation: {mdl['name']} on {ds['spec']}",
        "",
        f"- model: `{mdl['path']}` ({_fmt_size(mdl['size_bytes'])}, sha256 `{mdl['sha256'][:16]}...`)",
        f"- dataset: `{ds['spec']}`"
        + (f", split `{ds['split_file']}`" if ds.get("split_file") else "")
        + f": {r['images']} images, {r['gt_boxes']} person boxes"
        + (f" (+{r['ignored_boxes']} ignore regions)" if r["ignored_boxes"] else ""),
        f"- operating threshold {r['threshold']:g}; curves from score >= {r['curve_threshold']:g}; a match needs IoU >= {r['match_iou']:g}",
        f"- host: {r['host']['system']} {r['host']['machine']}, Python {r['host']['python']}, {r['threads']} thread(s); {r['created_utc']}",
        "",
        "| metric | value |",
        "| --- | --- |",
        f"| COCO AP@[.5:.95] | {r['ap']:.3f} |",
        f"| AP50 (COCO 101-point) | {r['ap50']:.3f} |",
        f"| AP50 (all-point, VOC) | {r['ap50_all_point']:.3f} |",
        f"| AP75 | {r['ap75']:.3f} |",
        f"| log-average miss rate (FPPI 1e-2..1) | {r['lamr']:.3f} |",
        f"| precision @ {r['threshold']:g} | {r['precision']:.3f} ({r['tp']} TP, {r['fp']} FP) |",
        f"| recall @ {r['threshold']:g} | {r['recall']:.3f} ({r['fn']} missed) |",
        f"| mean IoU of matches @ {r['threshold']:g} | {r['mean_iou']:.3f} |",
        f"| latency p50 / p95 / mean | {r['latency_ms_p50']:.1f} / {r['latency_ms_p95']:.1f} / {r['latency_ms_mean']:.1f} ms |",
        "",
        f"Miss rate at the reference FPPI points: {mr}.",
        "",
        "Latency is the wall time of `detect()` (preprocess, inference, postprocess) per image on this",
        "host, after one warm-up call; it is not a Raspberry Pi number.",
        "",
        "![precision-recall](pr_curve.png) ![miss rate vs FPPI](miss_rate_fppi.png)",
        "",
        "Worst false positives and misses at the operating threshold:",
        "",
        "![gallery](gallery.png)",
        "",
    ]
    return "\n".join(lines)


def _opencv_threads() -> int:
    """HOG runs on OpenCV's own thread pool (all cores by default), not on --threads."""
    import cv2

    return int(cv2.getNumThreads())


def build_parser() -> argparse.ArgumentParser:
    """The evaluator's command line."""
    p = argparse.ArgumentParser(
        prog="python -m host_tools.evaluate", description=__doc__.split("\n\n")[0]
    )
    p.add_argument(
        "--model", required=True, help="a .tflite detector, or 'hog' for OpenCV's HOG+SVM baseline"
    )
    p.add_argument("--labels", help="label file of the model (default: the one beside it)")
    p.add_argument("--dataset", required=True, help="; ".join(KINDS.values()))
    p.add_argument(
        "--split-file", type=Path, help="image names, one per line, to evaluate a subset"
    )
    p.add_argument(
        "--threshold",
        type=float,
        default=0.5,
        help="operating score threshold for precision/recall/IoU (HOG: SVM margin)",
    )
    p.add_argument(
        "--curve-threshold",
        type=float,
        help=f"lowest score kept for AP/LAMR (default {DEFAULT_CURVE_THRESHOLD}; HOG 0)",
    )
    p.add_argument(
        "--classes",
        default="person",
        help="comma-separated model labels that count as a person (default person)",
    )
    p.add_argument("--threads", type=int, default=2, help="interpreter threads (default 2)")
    p.add_argument(
        "--tiles",
        default="off",
        help="tiled second pass for small people: ROWSxCOLS, e.g. 2x2 (edgedetect.tiling; default off)",
    )
    p.add_argument("--out", required=True, type=Path, help="report folder (created)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def run_evaluation(
    model: str | Path,
    dataset: str,
    out: str | Path,
    *,
    labels: str | Path | None = None,
    split_file: str | Path | None = None,
    threshold: float = 0.5,
    curve_threshold: float | None = None,
    threads: int = 2,
    classes: tuple[str, ...] | list[str] = ("person",),
    progress: bool = True,
    tiles: str = "off",
) -> dict[str, Any]:
    """Evaluate ``model`` (a .tflite path or ``"hog"``) on a dataset spec and write the report to ``out``.

    The Python entry point behind the CLI (the training code calls it after export); returns the
    report dict that was written to ``out/report.json``. Raises :class:`EdgeDetectError` on bad input.
    """
    model = str(model)
    out = Path(out)
    split = Path(split_file) if split_file is not None else None
    if model != "hog" and not 0.0 <= threshold <= 1.0:
        raise ModelError(
            f"--threshold {threshold} is not a score in [0, 1] (only HOG margins go beyond)"
        )
    if curve_threshold is None:
        curve_threshold = min(0.0 if model == "hog" else DEFAULT_CURVE_THRESHOLD, threshold)
    ds = load_dataset(dataset, split)
    if not ds.samples:
        raise DatasetError(f"dataset {dataset} has no images")
    detector = make_detector(
        model, str(labels) if labels else None, curve_threshold, threads, list(classes), tiles
    )
    ev = evaluate(detector, ds, threshold, curve_threshold, progress=progress)
    meta = {
        "model": model_info(detector, model),
        "dataset": {
            "spec": dataset,
            "kind": ds.kind,
            "split_file": str(split.resolve()) if split else None,
        },
        "threads": threads if model != "hog" else _opencv_threads(),
        "host": {
            "machine": platform.machine(),
            "python": platform.python_version(),
            "system": platform.system(),
        },
        "created_utc": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    return write_report(ev, out, meta)


@cli_errors("evaluate")
def main(argv: list[str] | None = None) -> int:
    """Entry point; user errors print one line and return 2."""
    args = build_parser().parse_args(argv)
    m = run_evaluation(
        args.model,
        args.dataset,
        args.out,
        labels=args.labels,
        split_file=args.split_file,
        threshold=args.threshold,
        curve_threshold=args.curve_threshold,
        threads=args.threads,
        classes=[c.strip() for c in args.classes.split(",")],
        progress=not args.no_progress,
        tiles=args.tiles,
    )
    print(
        f"{args.out}: AP {m['ap']:.3f}  AP50 {m['ap50']:.3f}  LAMR {m['lamr']:.3f}  "
        f"precision {m['precision']:.3f}  recall {m['recall']:.3f}  mean IoU {m['mean_iou']:.3f}  "
        f"p50 {m['latency_ms_p50']:.1f} ms"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
