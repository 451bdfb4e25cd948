"""Quantization-aware fine-tuning with TF-Model-Optimization (on ``tf_keras``, as TF-MOT requires).

``quantize_model`` inserts fake-quant ops (per-channel weights, 8-bit activations with
moving-average ranges); the model is then fine-tuned with the usual SSD loss so the weights adapt to
int8 rounding before the int8 TFLite conversion. Batch norm stays frozen as in float fine-tuning
(``train.freeze_batchnorm``; the layers are reached inside TF-MOT's wrappers): with batch statistics
from small CPU batches QAT lost 4 AP50 points in a first try. TF-MOT's Keras API has no
"quantization delay" knob, so the delay is done literally: ``delay`` steps of float fine-tuning
first, then the fake-quant model for the remaining steps.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import host_tools.ssd  # noqa: F401  (selects tf_keras before TensorFlow loads)
from host_tools.ssd.config import TrainConfig
from host_tools.ssd.model import SSDModel


def qat_finetune(
    ssd: SSDModel,
    steps: int,
    delay: int,
    out_dir: Path,
    data=None,
    learning_rate: float | None = None,
    batch_size: int | None = None,
    progress: bool = True,
):
    """Fine-tune ``ssd`` (weights loaded) with fake quantization; returns the QAT Keras model.

    Without ``data`` it trains on the config's training mix (``data.sources``), else the Penn-Fudan
    train split: a general-scene model fine-tuned on street photos alone would drift toward them.
    """
    import tensorflow_model_optimization as tfmot

    from host_tools.ssd.data import load_train_mix
    from host_tools.train import train, training_sources

    cfg = ssd.config
    _set_schedule(cfg.train, steps, learning_rate, batch_size)
    data = data if data is not None else load_train_mix(training_sources(None, None, cfg))
    _clear_scratch(Path(out_dir))
    if delay > 0:
        train(
            cfg, Path(out_dir) / "float_delay", None, data, steps=delay, progress=progress, ssd=ssd
        )
    qmodel = tfmot.quantization.keras.quantize_model(ssd.keras_model)
    qssd = SSDModel(cfg, qmodel, ssd.feature_map_sizes, ssd.anchors, ssd.anchors_cs)
    train(
        cfg,
        Path(out_dir) / "qat",
        None,
        data,
        steps=max(steps - delay, 1),
        progress=progress,
        ssd=qssd,
    )
    return qmodel


def _set_schedule(
    t: TrainConfig, steps: int, learning_rate: float | None, batch_size: int | None
) -> None:
    """The fine-tuning schedule: the given rate, else a quarter of the config's (gentle: the float
    model is already trained), and a warmup of at most a tenth of the steps."""
    if learning_rate:
        t.learning_rate = learning_rate
    else:
        t.learning_rate = t.learning_rate * 0.25  # gentle: the float model is already trained
    if batch_size:
        t.batch_size = batch_size
    t.warmup_steps = min(t.warmup_steps, max(steps // 10, 1))


def _clear_scratch(out_dir: Path) -> None:
    """Both runs start afresh: the checkpoints and log of an earlier QAT into the same folder
    (quantize run again with the same --out-dir) are this function's own scratch, and train()
    refuses to train over checkpoints."""
    from host_tools.train import has_checkpoints

    for run in (out_dir / "float_delay", out_dir / "qat"):
        if has_checkpoints(run):
            shutil.rmtree(run / "checkpoints")
            (run / "log.csv").unlink(missing_ok=True)
