"""Pick a training checkpoint on validation sets: ``python -m host_tools.validate``.

Model selection must not look at the test split, or the test numbers stop meaning anything. This
tool scores every checkpoint of a run (``RUN/checkpoints``) on held-out validation sets, with the
same metrics as ``host_tools.evaluate``, per set and as one summary (the mean over the sets, so a
small set counts as much as a large one), and writes the best one as ``RUN/best.weights.h5`` for
``host_tools.export``. The default sets (:data:`DEFAULT_VAL_SETS`) are people in every kind of
scene (``capston2/valid``), street pedestrians (``data/splits/pennfudan_val.txt``, which
``pennfudan_fit.txt`` excludes) and general COCO photos held out of ``coco_train``
(``data/splits/coco128_val.txt`` and minicoco's ``val.json``), none of them trained on.

The Keras model runs in float directly (no TFLite conversion per checkpoint), with the same resize,
normalisation, box decoding and NMS as the exported model, so a 16-image validation pass takes
seconds. One model is built per run and each kept checkpoint is restored into it in turn.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import host_tools.ssd  # noqa: F401  (selects tf_keras before TensorFlow loads)

# isort: split
import cv2
import numpy as np
import tensorflow as tf

from edgedetect.boxes import decode_center_size, to_pixel_xyxy
from edgedetect.cli import threshold
from edgedetect.detections import Detections
from edgedetect.errors import EdgeDetectError, ModelError
from edgedetect.nms import nms
from host_tools._cli import cli_errors, path_option
from host_tools._deps import require
from host_tools.conditions import CONDITIONS, camera_condition
from host_tools.datasets import Dataset, DatasetError
from host_tools.datasets.sources import DataSource, load_sources
from host_tools.export import checkpoint_step, normalize, restore_checkpoint, save_weights
from host_tools.scoring import evaluate
from host_tools.shared_data import PENNFUDAN, SHARED
from host_tools.ssd.config import load_config
from host_tools.ssd.model import SSDModel, build_ssd, score_fn

SPLITS = Path(__file__).resolve().parents[1] / "data" / "splits"
VAL_SPLIT = SPLITS / "pennfudan_val.txt"
COCO = SHARED / "coco_train"
# name -> sources; a set may join several sources (the COCO hold-out comes from two subsets).
DEFAULT_VAL_SETS: dict[str, tuple[DataSource, ...]] = {
    "capston2_valid": (DataSource(f"yolo:{SHARED / 'capston2' / 'valid'}"),),
    "pennfudan_val": (DataSource(f"pennfudan:{PENNFUDAN}", str(VAL_SPLIT)),),
    "coco_val": (
        DataSource(f"yolo:{COCO / 'coco128'}", str(SPLITS / "coco128_val.txt")),
        DataSource(f"coco:{COCO / 'minicoco/annotations/val.json'}:{COCO / 'minicoco/images'}"),
    ),
}
METRICS = ("ap", "ap50", "ap75", "mean_iou", "lamr")
_MIN_SCORE = (
    0.01  # below the evaluator's curve threshold (0.05), so AP and LAMR see every box they use
)


class KerasDetector:
    """A float Keras SSD behind the evaluator's ``detect(image_bgr) -> Detections`` interface.

    Mirrors the exported model: the calibration/runtime preprocessing (``export.normalize``), the
    config's score converter, center-size decoding with the config's box scales, greedy NMS at the
    config's IoU threshold, ``max_detections`` boxes.
    """

    def __init__(self, ssd: SSDModel):
        self.ssd = ssd
        score = score_fn(ssd.config)

        def predict(x):
            codes, logits = ssd.keras_model(x, training=False)
            return codes, score(logits)

        self._predict = tf.function(predict, reduce_retracing=True)

    def detect(self, image_bgr: np.ndarray) -> Detections:
        cfg = self.ssd.config
        x = normalize(cv2.cvtColor(image_bgr, cv2.COLOR_BGR2RGB), cfg.model.input_size)[None]
        codes, probs = (np.asarray(t)[0] for t in self._predict(tf.constant(x)))
        scores = probs[:, 1]  # column 0 is background; the person detector has one class
        keep = np.flatnonzero(scores >= _MIN_SCORE)
        boxes = decode_center_size(codes[keep], self.ssd.anchors_cs[keep], cfg.model.box_scales)
        xyxy = to_pixel_xyxy(boxes, (image_bgr.shape[1], image_bgr.shape[0]))
        sc = scores[keep].astype(np.float32)
        idx = nms(xyxy, sc, cfg.postprocess.nms_iou_threshold, cfg.postprocess.max_detections)
        return Detections(xyxy[idx], sc[idx], np.zeros(len(idx), np.int32), {0: "person"})


def list_checkpoints(ckpt_dir: Path) -> list[tuple[int, Path]]:
    """(step, prefix) of every checkpoint the run's CheckpointManager kept, oldest first."""
    state = tf.train.get_checkpoint_state(str(ckpt_dir))
    paths = state.all_model_checkpoint_paths if state is not None else []
    return sorted((checkpoint_step(p), Path(p)) for p in paths)


def load_val_set(name: str, sources: tuple[DataSource, ...]) -> Dataset:
    """A validation set from one or more sources (refusing test splits) as one :class:`Dataset`.

    A set without any annotated person is refused: every checkpoint scored AP 0 and LAMR 1 on it,
    so it picked none (alone, the last one won the tie and became best.weights.h5, exit 0); the
    usual cause is labels the reader did not find (a YOLO set without its labels/ folder)."""
    ds = load_sources(list(sources), f"validation set {name}")
    if ds.num_boxes == 0:
        raise DatasetError(
            f"validation set {name} ({ds.spec}): no annotated person in its {len(ds)} images, so "
            "it cannot rank checkpoints; put its labels where the reader looks (yolo: "
            "ROOT/labels/NAME.txt for ROOT/images/NAME.jpg) or leave the set out"
        )
    return ds


def summarize(per_set: dict[str, dict[str, float]]) -> dict[str, float]:
    """The selection figure: each metric's mean over the sets (every set weighs the same)."""
    keys = (*METRICS, "precision", "recall")
    return {k: float(np.mean([m[k] for m in per_set.values()])) for k in keys}


def validate_run(
    ssd: SSDModel,
    ckpt_dir: Path,
    val_sets: dict[str, Dataset],
    threshold: float = 0.5,
    progress: bool = False,
    conditions: tuple[str, ...] = (),
) -> list[dict[str, Any]]:
    """Score each checkpoint in ``ckpt_dir`` on every set (and every set under each camera
    condition, reported as ``conditions`` and ``conditions_ap50``; they do not pick the best).

    Returns one row (step, summary, per-set) per checkpoint and leaves ``ssd`` holding the last
    checkpoint's weights.
    """
    ckpts = list_checkpoints(ckpt_dir)
    if not ckpts:
        raise ModelError(f"no checkpoints in {ckpt_dir}; train first (host_tools.train --run-dir)")
    detector = KerasDetector(ssd)
    rows = []
    for step, prefix in ckpts:
        restore_checkpoint(ssd, prefix)
        per_set = _score_sets(detector, val_sets, threshold, progress)
        row = {"step": step, "checkpoint": str(prefix), **summarize(per_set), "sets": per_set}
        sets = "  ".join(f"{n} {m['ap50']:.3f}/{m['recall']:.2f}" for n, m in per_set.items())
        line = (
            f"step {step:6d}  mean AP50 {row['ap50']:.3f}  AP {row['ap']:.3f}  "
            f"mean IoU {row['mean_iou']:.3f}  | AP50/recall {sets}"
        )
        if conditions:
            seen = _score_sets(detector, val_sets, threshold, progress, conditions)
            row["conditions"] = seen
            row["conditions_ap50"] = summarize(seen)["ap50"]
            line += f"  | camera conditions mean AP50 {row['conditions_ap50']:.3f}"
        rows.append(row)
        print(line, flush=True)
    return rows


def _score_sets(
    detector: KerasDetector,
    val_sets: dict[str, Dataset],
    threshold: float,
    progress: bool,
    conditions: tuple[str, ...] = (),
) -> dict[str, dict[str, float]]:
    """Metrics per set, or per ``SET+CONDITION`` when camera conditions are given."""
    out = {}
    for name, ds in val_sets.items():
        for condition in conditions or (None,):
            transform = camera_condition(condition) if condition else None
            m = evaluate(
                detector, ds, threshold, min(0.05, threshold), progress, transform=transform
            ).metrics
            key = f"{name}+{condition}" if condition else name
            out[key] = {k: m[k] for k in (*METRICS, "precision", "recall")}
    return out


def parse_val_sets(
    items: list[str] | None, dataset: str | None, split_file: Path | None
) -> dict[str, Dataset]:
    """The sets of ``--val NAME=SPEC[#split=FILE]`` (repeatable).

    Without ``--val``: ``--dataset``/``--split-file``, else the defaults.
    """
    if items:
        sets: dict[str, tuple[DataSource, ...]] = {}
        for item in items:
            name, sep, spec = item.partition("=")
            if not sep or not name or ":" in name:
                raise EdgeDetectError(
                    f"--val {item!r}: use NAME=SPEC[#split=FILE], e.g. street=pennfudan:ROOT"
                )
            sets[name] = (*sets.get(name, ()), DataSource.parse(spec))
    elif dataset:
        src = DataSource.parse(dataset)  # SPEC[#split=FILE]...; --split-file when it has none
        sets = {"val": (src.with_split(split_file),)}
    else:
        sets = DEFAULT_VAL_SETS
    return {name: load_val_set(name, sources) for name, sources in sets.items()}


def best_row(rows: list[dict[str, Any]], metric: str) -> dict[str, Any]:
    """The best checkpoint by ``metric`` (lower is better for LAMR); ties go to the later step."""
    sign = -1.0 if metric == "lamr" else 1.0
    return max(rows, key=lambda r: (sign * r[metric], r["step"]))


def build_parser() -> argparse.ArgumentParser:
    """The validator's command line."""
    p = argparse.ArgumentParser(
        prog="python -m host_tools.validate", description=__doc__.split("\n")[0]
    )
    p.add_argument(
        "--run-dir", type=path_option, required=True, help="a host_tools.train run directory"
    )
    p.add_argument(
        "--val",
        action="append",
        metavar="NAME=SPEC[#split=FILE]",
        help="a validation set (repeat; the same NAME joins sources); default: capston2_valid, "
        "pennfudan_val and coco_val (see the module doc)",
    )
    p.add_argument(
        "--dataset", help="one validation set instead: a dataset spec (host_tools.datasets)"
    )
    p.add_argument(
        "--split-file",
        type=path_option,
        help="with --dataset: validation image names (not the test split)",
    )
    p.add_argument(
        "--select",
        choices=METRICS,
        default="ap50",
        help="metric (mean over the sets) that picks the best checkpoint",
    )
    p.add_argument(
        "--threshold",
        type=threshold,
        default=0.5,
        help="score threshold in 0..1 for precision/recall/mean IoU",
    )
    p.add_argument(
        "--condition",
        action="append",
        choices=list(CONDITIONS),
        default=[],
        help="also score every set under this camera condition (repeat; host_tools.conditions); "
        "reported beside the sets, never used to pick the checkpoint",
    )
    p.add_argument("--no-export", action="store_true", help="only print and write validation.json")
    return p


def val_sets_from_args(args: argparse.Namespace) -> dict[str, Dataset]:
    """The sets the command line names; a ``--split-file`` that looks like a test split is refused.

    A ``--split-file`` without ``--dataset`` splits Penn-Fudan.
    """
    if args.split_file and "test" in args.split_file.name.lower():
        raise EdgeDetectError(
            f"--split-file {args.split_file} looks like a test split; select on a validation split"
        )
    if args.split_file and not args.dataset:
        args.dataset = f"pennfudan:{PENNFUDAN}"
    return parse_val_sets(args.val, args.dataset, args.split_file)


def write_validation_json(
    run_dir: Path,
    val_sets: dict[str, Dataset],
    select: str,
    best: dict[str, Any],
    rows: list[dict[str, Any]],
) -> None:
    """``RUN/validation.json``: the sets, the selection rule, the best step and every row."""
    out = {
        "sets": {n: {"spec": d.spec, "images": len(d)} for n, d in val_sets.items()},
        "select": f"mean {select} over the sets",
        "best_step": best["step"],
        "checkpoints": rows,
    }
    (run_dir / "validation.json").write_text(json.dumps(out, indent=2))


@cli_errors("validate")
def main(argv: list[str] | None = None) -> int:
    """Score every checkpoint, write validation.json and (unless --no-export) best.weights.h5."""
    args = build_parser().parse_args(argv)
    require("pycocotools")  # AP, checked before the first checkpoint is scored
    val_sets = val_sets_from_args(args)
    saved = args.run_dir / "config.json"
    if not saved.is_file():
        raise EdgeDetectError(
            f"{saved} not found: {args.run_dir} is not a run directory of host_tools.train; "
            "pass the --run-dir a training wrote"
        )
    ssd = build_ssd(load_config(saved))
    rows = validate_run(
        ssd,
        args.run_dir / "checkpoints",
        val_sets,
        threshold=args.threshold,
        conditions=tuple(args.condition),
    )
    best = best_row(rows, args.select)
    write_validation_json(args.run_dir, val_sets, args.select, best, rows)
    print(
        f"best by mean {args.select}: step {best['step']} ({args.select} {best[args.select]:.4f})"
    )
    if not args.no_export:
        restore_checkpoint(ssd, best["checkpoint"])
        dest = args.run_dir / "best.weights.h5"
        save_weights(ssd.keras_model, dest)
        print(f"wrote {dest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
