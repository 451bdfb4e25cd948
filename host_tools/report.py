"""The evaluation report: report.json, report.md, PR and miss-rate plots, the gallery of worst
errors and per-image detections.json, from a :class:`host_tools.scoring.Evaluation`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from edgedetect.errors import ImageError
from edgedetect.images import read_bgr
from host_tools.metrics import LAMR_FPPI_POINTS, SIZE_RANGES, accumulate, miss_rates_at
from host_tools.scoring import Evaluation, ImageResult

GREEN, BLUE, RED, ORANGE = (0, 170, 0), (255, 128, 0), (0, 0, 255), (0, 140, 255)


def write_report(ev: Evaluation, out: Path, meta: dict[str, Any]) -> dict[str, Any]:
    """report.json, report.md, plots, gallery and per-image detections; returns the report dict."""
    out.mkdir(parents=True, exist_ok=True)
    report = not_measurable({**ev.metrics, **meta})
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


# What a set without annotated people cannot measure: every one is a share of the people found
# (or missed), which is 0/0 there; precision, false positives and alarms on it still count.
PEOPLE_METRICS = ("ap", "ap50", "ap75", "ap50_all_point", "lamr", "recall")
NO_PEOPLE = "no annotated people"


def not_measurable(report: dict[str, Any]) -> dict[str, Any]:
    """The report with the metrics that need people (:data:`PEOPLE_METRICS`, the miss rates) as
    None and ``not_measurable`` giving the reason, for a set without any annotated person; it
    reported AP 0 and LAMR 1 as if measured. Any other report is returned as it is."""
    if report.get("gt_boxes", 1) != 0:
        return report
    out = {k: (None if k in PEOPLE_METRICS else v) for k, v in report.items()}
    out["miss_rate_at_fppi"] = dict.fromkeys(report.get("miss_rate_at_fppi", {}))
    out["not_measurable"] = {k: NO_PEOPLE for k in (*PEOPLE_METRICS, "miss_rate_at_fppi")}
    return out


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
    """A captioned crop around ``subject`` with every box in it drawn, letterboxed into ``size``."""
    import cv2

    crop, cx1, cy1 = _context_crop(read_bgr(r.sample.image_path), subject)
    tw, th = size
    scale = min(tw / crop.shape[1], (th - _CAPTION_H) / crop.shape[0])
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
    return _captioned(crop, caption, color, size)


_CAPTION_H = 34  # pixels under a tile's crop for its two caption lines


def _context_crop(image: np.ndarray, subject: np.ndarray) -> tuple[np.ndarray, int, int]:
    """The part of ``image`` around ``subject`` with some context (more for tiny boxes), and
    its top-left corner, so boxes can be drawn into it."""
    h, w = image.shape[:2]
    x1, y1, x2, y2 = (float(v) for v in subject)
    pad = 0.35 * max(x2 - x1, y2 - y1, 60.0)  # context, and at least some for tiny boxes
    cx1, cy1 = int(max(0, x1 - pad)), int(max(0, y1 - pad))
    cx2, cy2 = int(min(w, x2 + pad)), int(min(h, y2 + pad))
    return image[cy1 : max(cy2, cy1 + 1), cx1 : max(cx2, cx1 + 1)], cx1, cy1


def _captioned(
    crop: np.ndarray, caption: str, color: tuple[int, int, int], size: tuple[int, int]
) -> np.ndarray:
    """The drawn crop centred on a dark tile of ``size`` with the caption's first two lines
    under it (the first in the tile's colour), so every tile of a gallery is the same size."""
    import cv2

    tw, th = size
    tile = np.full((th, tw, 3), 40, np.uint8)
    oy, ox = (th - _CAPTION_H - crop.shape[0]) // 2, (tw - crop.shape[1]) // 2
    tile[oy : oy + crop.shape[0], ox : ox + crop.shape[1]] = crop
    for k, line in enumerate(caption.split("\n")[:2]):
        cv2.putText(
            tile,
            line,
            (4, th - _CAPTION_H + 13 + 15 * k),
            cv2.FONT_HERSHEY_SIMPLEX,
            0.4,
            color if k == 0 else (230, 230, 230),
            1,
            cv2.LINE_AA,
        )
    return tile


GalleryItem = tuple[
    float, str, ImageResult, np.ndarray, str
]  # sort key, image name, result, box, caption


def _worst_errors(ev: Evaluation) -> tuple[list[GalleryItem], list[GalleryItem]]:
    """False positives at the operating threshold (highest score first), misses (largest first)."""
    thr = ev.threshold
    fps: list[GalleryItem] = []
    misses: list[GalleryItem] = []
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
            misses.append(
                (
                    -float((b[2] - b[0]) * (b[3] - b[1])),
                    r.sample.name,
                    r,
                    b,
                    f"MISS {int(b[2] - b[0])}x{int(b[3] - b[1])} px\n{r.sample.name}",
                )
            )
    return sorted(fps, key=lambda x: (x[0], x[1])), sorted(misses, key=lambda x: (x[0], x[1]))


def _text_row(text: str, width: int, height: int = 26) -> np.ndarray:
    import cv2

    row = np.full((height, width, 3), 255, np.uint8)
    cv2.putText(
        row, text, (6, height - 8), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA
    )
    return row


def _legend(width: int) -> np.ndarray:
    import cv2

    legend = np.full((24, width, 3), 255, np.uint8)
    keys = (
        ("ground truth", GREEN),
        ("detection (TP)", BLUE),
        ("false positive", RED),
        ("missed", ORANGE),
    )
    for k, (txt, col) in enumerate(keys):
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
    return legend


def write_gallery(ev: Evaluation, path: Path, per_kind: int = 8, cols: int = 4) -> None:
    """Worst false positives (highest scores) and misses (largest people) at the operating point."""
    import cv2

    thr, width = ev.threshold, 180 * cols
    fps, misses = _worst_errors(ev)
    rows = []
    for title, items, color in (
        ("worst false positives", fps, RED),
        ("worst misses", misses, ORANGE),
    ):
        rows.append(_text_row(f"{title} at threshold {thr:g} ({len(items)} in all)", width))
        tiles = [_tile(it[2], it[3], color, it[4], thr) for it in items[:per_kind]]
        if not tiles:
            rows.append(_text_row("none", width, 40))
        for k in range(0, len(tiles), cols):
            row = tiles[k : k + cols]
            row += [np.full_like(tiles[0], 255)] * (cols - len(row))
            rows.append(np.concatenate(row, axis=1))
    rows.append(_legend(width))
    if not cv2.imwrite(str(path), np.concatenate(rows, axis=0)):
        raise ImageError(f"cannot write {path}")


def _fmt_ap(value: float | None, why: str = "") -> str:
    """An AP, or "n/a" (with ``why``, if given) for a set or size range without people."""
    if value is None:
        return f"n/a ({why})" if why else "n/a"
    return f"{value:.3f}"


def _fmt_alarms(alarms: int | None, images: int | None) -> str:
    """ "2 of 23", or "n/a" for a set where every image has a person (or an older report)."""
    return "n/a" if not images else f"{alarms} of {images}"


def _fmt_size(n: int) -> str:
    return f"{n / 1e6:.2f} MB" if n >= 1e5 else f"{n / 1e3:.1f} kB"


def report_markdown(r: dict[str, Any]) -> str:
    """A readable summary of report.json."""
    why = NO_PEOPLE if r.get("not_measurable") else ""
    mr = (
        f"n/a ({why})"
        if why
        else ", ".join(f"{v:.2f}@{k}" for k, v in r["miss_rate_at_fppi"].items())
    )
    lines = [
        *_header_lines(r),
        "",
        *_metric_rows(r, why),
        "",
        f"Miss rate at the reference FPPI points: {mr}.",
        "",
        "Other operating points (score threshold: precision / recall / mean IoU): "
        + "; ".join(
            f"{p['threshold']:g}: {p['precision']:.3f} / {p['recall']:.3f} / {p['mean_iou']:.3f}"
            for p in r.get("operating_points", [])
        )
        + ".",
        "",
        "Latency is the wall time of `detect()` (preprocess, inference, postprocess) per image",
        "on this host, after one warm-up call; it is not a Raspberry Pi number.",
        "",
        "![precision-recall](pr_curve.png) ![miss rate vs FPPI](miss_rate_fppi.png)",
        "",
        "Worst false positives and misses at the operating threshold:",
        "",
        "![gallery](gallery.png)",
        "",
    ]
    return "\n".join(lines)


def _header_lines(r: dict[str, Any]) -> list[str]:
    """The title and what was measured: model, dataset, thresholds and host."""
    mdl, ds = r["model"], r["dataset"]
    return [
        f"# Evaluation: {mdl['name']} on {ds['spec']}",
        "",
        f"- model: `{mdl['path']}` ({_fmt_size(mdl['size_bytes'])}, "
        f"sha256 `{mdl['sha256'][:16]}...`)",
        f"- dataset: `{ds['spec']}`"
        + (f", split `{ds['split_file']}`" if ds.get("split_file") else "")
        + f": {r['images']} images, {r['gt_boxes']} person boxes"
        + (f" (+{r['ignored_boxes']} ignore regions)" if r["ignored_boxes"] else ""),
        f"- operating threshold {r['threshold']:g}; curves from score >= {r['curve_threshold']:g}; "
        f"a match needs IoU >= {r['match_iou']:g}",
        f"- host: {r['host']['system']} {r['host']['machine']}, Python {r['host']['python']}, "
        f"{r['threads']} thread(s); {r['created_utc']}",
    ]


def _metric_rows(r: dict[str, Any], why: str) -> list[str]:
    """The metrics table; ``why`` is the reason the curve metrics are n/a, if they are."""
    return [
        "| metric | value |",
        "| --- | --- |",
        f"| COCO AP@[.5:.95] | {_fmt_ap(r['ap'], why)} |",
        f"| AP50 (COCO 101-point) | {_fmt_ap(r['ap50'], why)} |",
        f"| AP50 (all-point, VOC) | {_fmt_ap(r['ap50_all_point'], why)} |",
        f"| AP75 | {_fmt_ap(r['ap75'], why)} |",
        "| AP50 of small / medium / large people (COCO areas < 32², < 96², above) | "
        + " / ".join(_fmt_ap(r.get("ap50_by_size", {}).get(k)) for k in SIZE_RANGES)
        + " |",
        f"| log-average miss rate (FPPI 1e-2..1) | {_fmt_ap(r['lamr'], why)} |",
        f"| precision @ {r['threshold']:g} | {r['precision']:.3f} ({r['tp']} TP, {r['fp']} FP) |",
        f"| recall @ {r['threshold']:g} | {_fmt_ap(r['recall'], why)} ({r['fn']} missed) |",
        f"| mean IoU of matches @ {r['threshold']:g} | {r['mean_iou']:.3f} |",
        f"| images without people that get a box @ {r['threshold']:g} | "
        f"{_fmt_alarms(r.get('person_free_images_with_alarm'), r.get('person_free_images'))} |",
        f"| latency p50 / p95 / mean | {r['latency_ms_p50']:.1f} / {r['latency_ms_p95']:.1f} / "
        f"{r['latency_ms_mean']:.1f} ms |",
    ]
