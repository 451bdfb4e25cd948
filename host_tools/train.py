"""Train (fine-tune) a Keras SSD on a person dataset: ``python -m host_tools.train``.

The TF1 OD-API SSD recipe in TF2/Keras, CPU-trainable: augmentation (photometric, zoom-out, SSD
crop, flip), ArgMax matcher, smooth-L1 + sigmoid loss with hard-negative mining (or focal loss),
cosine LR with linear warm-up, checkpoints every N steps and ``--resume``, a progress bar,
``log.csv`` (and TensorBoard with ``--tensorboard``), fixed seeds. The run directory gets
``config.json``, ``checkpoints/``, ``log.csv`` and, once the schedule is done, ``final.weights.h5``
(the input of ``host_tools.export``; a run stopped by ``--stop-after`` has only its checkpoints).

Starting weights (``--init``): a ``.weights.h5`` file (e.g. from ``host_tools.import_weights``), an
OD-API frozen graph ``.pb`` (imported on the fly), or ``none`` (random init).
"""

from __future__ import annotations

import argparse
import csv
import math
import random
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import host_tools.ssd  # noqa: F401  (selects tf_keras before TensorFlow loads)

# isort: split
import numpy as np
import tensorflow as tf

from edgedetect.cli import path_arg, positive_int
from edgedetect.errors import ConfigError, EdgeDetectError, ModelError
from host_tools._cli import (
    cli_errors,
    first_line,
    folder_not_file,
    path_option,
    positive_float,
    seed,
)
from host_tools.datasets import DatasetError
from host_tools.datasets.sources import SOURCE_FORM, DataSource, refuse_repeats
from host_tools.export import (
    check_weights_file,
    checkpoint_cut_short,
    checkpoint_step,
    save_weights,
)
from host_tools.shared_data import PENNFUDAN, TRAIN_SPLIT
from host_tools.ssd.config import SSDConfig, check_config, load_config, save_config
from host_tools.ssd.data import TrainImages, load_train_mix, train_batches
from host_tools.ssd.keras_compat import keras
from host_tools.ssd.losses import ssd_loss
from host_tools.ssd.model import SSDModel, build_ssd

DEFAULT_DATASET = f"pennfudan:{PENNFUDAN}"
DEFAULT_SPLIT = TRAIN_SPLIT
DEFAULT_SOURCES = (DataSource(DEFAULT_DATASET, str(DEFAULT_SPLIT)),)
DEFAULT_CONFIG = "ssdlite_mobilenet_v2"
# Config sections that decide the weights' shapes and meaning: a resumed run must keep them.
FIXED_ON_RESUME = ("model", "anchors")


class WarmupCosine(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up ``start_factor * base`` -> ``base``, then cosine decay to 0 at ``total``."""

    def __init__(self, base: float, total: int, warmup: int, start_factor: float = 0.1):
        super().__init__()
        self.base, self.total, self.warmup, self.start_factor = (
            base,
            max(total, 1),
            warmup,
            start_factor,
        )

    def __call__(self, step):
        step = tf.cast(step, tf.float32)
        warm = self.base * (
            self.start_factor + (1 - self.start_factor) * step / max(self.warmup, 1)
        )
        progress = tf.clip_by_value(
            (step - self.warmup) / max(self.total - self.warmup, 1), 0.0, 1.0
        )
        cos = 0.5 * self.base * (1 + tf.cos(math.pi * progress))
        return tf.where(step < self.warmup, warm, cos)

    def get_config(self):
        return {
            "base": self.base,
            "total": self.total,
            "warmup": self.warmup,
            "start_factor": self.start_factor,
        }


def set_seeds(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    tf.random.set_seed(seed)


def init_weights(
    ssd: SSDModel,
    init: str | None,
    partial: bool = False,
    source_config: str | Path = "ssdlite_mobilenet_v2",
) -> str:
    """Load starting weights; returns a short description for the log.

    ``partial`` copies from a ``.weights.h5`` of *another* architecture (``source_config``) only the
    variables whose scoped names and shapes match: e.g. SSD-MobileNetV2 takes the whole MobileNetV2
    backbone of the pedestrian SSDLite and starts only its full-convolution extra layers and box
    predictors from scratch.
    """
    if init is None or init.lower() == "none":
        graph = ssd.config.model.graph  # a tflite_graph model is built with its file's weights
        return f"weights of {graph}" if graph else "random init"
    if partial:
        return _init_partial(ssd, Path(init), source_config)
    p = Path(init)
    if not p.exists():
        raise ModelError(
            f"--init {p} not found; pass a .weights.h5, an OD-API frozen .pb, or 'none'"
        )
    if p.suffix == ".pb":
        from host_tools.import_weights import assign_weights, graph_constants, load_graph_def

        unused = assign_weights(ssd, graph_constants(load_graph_def(p)))
        if unused:
            raise ModelError(
                f"{p}: {len(unused)} graph weights have no Keras layer (e.g. {unused[0]}); "
                "wrong config?"
            )
        return f"imported from {p}"
    check_weights_file(p, "--init")
    try:
        ssd.keras_model.load_weights(str(p))
    except Exception as exc:  # Keras / h5py raise assorted types
        raise ModelError(
            f"cannot load --init {p} into {ssd.config.name} ({first_line(exc)}); pass the "
            "--config it was made with, or --init-partial to copy only the layers that match"
        ) from exc
    return f"weights {p}"


def _init_partial(ssd: SSDModel, path: Path, source_config: str | Path) -> str:
    """Copy every variable whose scoped name and shape match from a model of ``source_config``.

    By variable name, not by Keras layer order: the ``.weights.h5`` format matches layers by
    position, which would pour another architecture's head weights into any layer of the same shape.
    """
    if path.suffix != ".h5" or not path.is_file():
        raise ModelError(
            f"--init-partial needs an existing Keras .weights.h5 file, not {path} "
            "(make one with host_tools.import_weights)"
        )
    check_weights_file(path, "--init")
    src = build_ssd(load_config(source_config))
    try:
        src.keras_model.load_weights(str(path))
    except Exception as exc:  # h5py / Keras raise assorted types
        raise ModelError(
            f"cannot load --init {path} as {src.config.name} ({exc}); "
            "pass the config it was trained with as --init-config"
        ) from exc
    source = {v.name: v for v in src.keras_model.weights}
    loaded = 0
    for v in ssd.keras_model.weights:
        s = source.get(v.name)
        if s is not None and tuple(s.shape) == tuple(v.shape):
            v.assign(s)
            loaded += 1
    if loaded == 0:
        raise ModelError(
            f"--init {path}: no variable name and shape matches {ssd.config.name}; "
            "partial init needs a model with the same layer scopes (e.g. the same backbone)"
        )
    total = len(ssd.keras_model.weights)
    return (
        f"{loaded} of {total} weight tensors from {path} "
        f"({src.config.name}; the rest initialised fresh)"
    )


def freeze_batchnorm(model: keras.Model) -> None:
    """Keep batch-norm statistics fixed (small CPU batches would only add noise to them)."""
    for layer in model.layers:
        inner = getattr(layer, "layer", layer)  # TF-MOT's QuantizeWrapperV2 holds the real layer
        if isinstance(inner, keras.layers.BatchNormalization):
            inner.trainable = False


def train_only(model: keras.Model, prefixes: tuple[str, ...]) -> int:
    """Freeze every layer whose name starts with none of ``prefixes``; returns how many train.

    Training only a head added to a trained model (``BoxPredictor_stride8``) cannot move what the
    model already does, and skips the backward pass through the backbone: about half the step.
    """
    trained = 0
    for layer in model.layers:
        layer.trainable = layer.name.startswith(prefixes)
        trained += int(layer.trainable)
    if trained == 0:
        names = sorted({layer.name.split("/")[0] for layer in model.layers})
        raise ConfigError(f"train.train_only {list(prefixes)} matches no layer; scopes: {names}")
    return trained


def make_optimizer(cfg: SSDConfig):
    t = cfg.train
    lr = WarmupCosine(t.learning_rate, t.steps, t.warmup_steps, t.warmup_start_factor)
    if t.optimizer == "momentum":
        return keras.optimizers.SGD(lr, momentum=0.9)
    return keras.optimizers.Adam(lr)


def device_line() -> str:
    """Which device the training step runs on, said once at the start (TF picks a GPU by itself)."""
    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        return f"device: GPU ({', '.join(g.name for g in gpus)})"
    threads = tf.config.threading.get_inter_op_parallelism_threads() or "all"
    return f"device: CPU ({threads} threads; no GPU visible)"


class TrainLog:
    """Where each step's losses go: ``log.csv`` always, TensorBoard and a progress bar when asked.

    A resumed run appends to its ``log.csv``, so one file holds the whole run across sessions.
    """

    COLUMNS = ["step", "loss", "loc", "cls", "num_pos", "lr", "sec_per_step", "giou", "range"]

    def __init__(
        self, run_dir: Path, start: int, total: int, progress: bool, tensorboard: bool
    ) -> None:
        path = run_dir / "log.csv"
        new = not path.exists() or start == 0
        self._file = path.open("w" if new else "a", newline="")
        self._csv = csv.writer(self._file)
        if new:
            self._csv.writerow(self.COLUMNS)
        self._tb = tf.summary.create_file_writer(str(run_dir / "tb")) if tensorboard else None
        self._bar = None
        if progress:
            from tqdm import tqdm

            self._bar = tqdm(total=total, initial=start, unit="step", dynamic_ncols=True)

    def write(self, step: int, vals: dict[str, float], lr: float, seconds: float) -> None:
        self._csv.writerow(
            [
                step,
                f"{vals['loss']:.5f}",
                f"{vals['loc']:.5f}",
                f"{vals['cls']:.5f}",
                int(vals["num_pos"]),
                f"{lr:.3g}",
                f"{seconds:.3f}",
                f"{vals.get('giou', 0.0):.5f}",
                f"{vals.get('range', 0.0):.5f}",
            ]
        )
        if step % 10 == 0:
            self._file.flush()
        if self._tb is not None:
            with self._tb.as_default(step=step):
                for k, v in vals.items():
                    tf.summary.scalar(k, v)
                tf.summary.scalar("lr", lr)
        if self._bar is not None:
            self._bar.set_postfix(
                loss=f"{vals['loss']:.3f}", loc=f"{vals['loc']:.3f}", cls=f"{vals['cls']:.3f}"
            )
            self._bar.update(1)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
        self._file.close()


def make_train_step(ssd: SSDModel, cfg: SSDConfig, opt):
    """One optimiser step on a batch (loss + Keras regularisers, gradients clipped to norm 10)."""
    model = ssd.keras_model
    anchors_cs = tf.constant(ssd.anchors_cs, tf.float32)

    @tf.function(reduce_retracing=True)
    def train_step(x, loc_t, cls_t):
        with tf.GradientTape() as tape:
            box, logits = model(x, training=True)
            parts = ssd_loss(cfg, box, logits, loc_t, cls_t, anchors_cs)
            reg = tf.add_n(model.losses) if model.losses else 0.0
            total = parts["loss"] + reg
        grads = tape.gradient(total, model.trainable_variables)
        grads, _ = tf.clip_by_global_norm(grads, 10.0)
        opt.apply_gradients(zip(grads, model.trainable_variables, strict=True))
        return parts

    return train_step


def _require_tensorboard() -> None:
    try:
        import tensorboard  # noqa: F401  (tf.summary needs it; tensorflow-cpu does not bring it)
    except ImportError as exc:
        raise EdgeDetectError(
            "--tensorboard needs the 'tensorboard' package (pip install tensorboard); "
            "log.csv is always written"
        ) from exc


def train(
    cfg: SSDConfig,
    run_dir: Path,
    init: str | None,
    data: TrainImages,
    resume: bool = False,
    steps: int | None = None,
    progress: bool = True,
    tensorboard: bool = False,
    ssd: SSDModel | None = None,
    stop_after: int | None = None,
    init_partial: bool = False,
    init_config: str | Path = "ssdlite_mobilenet_v2",
) -> Path:
    """Train and return the path of ``final.weights.h5``, or of the last checkpoint (its prefix)
    when ``stop_after`` ended the run before its schedule.

    ``stop_after`` ends the run early at that step (checkpoint written, no ``final.weights.h5``)
    while keeping the LR schedule of ``steps``, so that a later ``resume`` can continue or shorten
    it.

    ``cfg`` is checked (:func:`check_config`) and so is ``run_dir`` (:func:`check_run_dir`): one
    holding checkpoints is only resumed, with the model and anchors of its ``config.json``.
    ``config.json`` is written once the checkpoint is restored (or at once for a new run).
    """
    latest = _check_train_args(cfg, run_dir, resume, init, steps, stop_after, tensorboard)
    set_seeds(cfg.train.seed)
    run_dir.mkdir(parents=True, exist_ok=True)
    keep_given = ssd is not None and init is None
    ssd = ssd or build_ssd(cfg)
    how = _starting_weights(ssd, cfg, latest, keep_given, init, init_partial, init_config)
    opt = make_optimizer(cfg)
    # Its slots made now, not inside the first step: a tf.function that creates variables is
    # traced twice, and one trace of this step costs about 15 s of CPU. A resume restores them
    # at once instead of on first use.
    opt.build(ssd.keras_model.trainable_variables)
    step_var = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
    manager = _open_checkpoints(ssd, cfg, opt, step_var, run_dir, latest)
    start = int(step_var.numpy())
    print(_start_line(cfg, len(data), start, how), flush=True)
    if (done := _finished(run_dir, start, cfg.train.steps)) is not None:
        return done  # resumed at the end of its schedule
    if start < cfg.train.steps:  # a schedule goes on past an earlier one's end
        _retire_earlier_final(run_dir, start)
    end = cfg.train.steps if stop_after is None else min(stop_after, cfg.train.steps)
    log = TrainLog(run_dir, start, cfg.train.steps, progress, tensorboard)
    try:
        with train_batches(data, ssd, cfg, cfg.train.seed, start_step=start) as batches:
            step = make_train_step(ssd, cfg, opt)
            _run_steps(step, batches, opt, step_var, manager, log, cfg, end)
    finally:
        log.close()
    if end < cfg.train.steps:
        return _save_stopped(manager, run_dir, end, cfg.train.steps)
    return _save_final(ssd, manager, run_dir, end)


def _finished(run_dir: Path, start: int, steps: int) -> Path | None:
    """The final weights of a run resumed at the end of its schedule, said so: there is nothing
    to train, and writing them again would pass for a new result."""
    final = run_dir / "final.weights.h5"
    if start != steps or not final.is_file():
        return None
    print(
        f"the run finished its {start} steps: nothing to train; its weights are {final} "
        "(to train on, resume with a longer --steps)",
        flush=True,
    )
    return final


def _start_line(cfg: SSDConfig, images: int, start: int, how: str) -> str:
    """The run's first log line: what trains on what, from where, and on which device."""
    return (
        f"train: {cfg.name}, {images} images, steps {start}->{cfg.train.steps}, "
        f"batch {cfg.train.batch_size}, {how}; {device_line()}"
    )


def resume_point(cfg: SSDConfig, run_dir: Path, resume: bool, init: str | None) -> str | None:
    """`check_run_dir`, and an ``init`` beside a checkpoint to resume refused: the run goes on
    from its own weights, so the other file was silently not used."""
    latest = check_run_dir(run_dir, cfg, resume)
    if latest and init and init.lower() != "none":
        raise ConfigError(
            f"--init {init}: the run resumes from its checkpoint {latest}, not from other "
            "weights; drop --init, or start a new --run-dir from them"
        )
    return latest


def _check_train_args(
    cfg: SSDConfig,
    run_dir: Path,
    resume: bool,
    init: str | None,
    steps: int | None,
    stop_after: int | None,
    tensorboard: bool,
) -> str | None:
    """Apply ``steps`` and refuse bad arguments before anything is written.

    Returns the checkpoint to resume from (None: start afresh), as :func:`check_run_dir`.
    """
    if steps is not None:
        cfg.train.steps = steps
    check_config(cfg)
    if stop_after is not None and stop_after < 1:
        raise ConfigError(f"stop_after must be at least 1, not {stop_after}")
    latest = resume_point(cfg, run_dir, resume, init)
    end = cfg.train.steps if stop_after is None else min(stop_after, cfg.train.steps)
    at = checkpoint_step(latest) if latest else 0
    if end < at:
        raise ConfigError(
            f"--resume: the run is at step {at} ({latest}); ending at step {end} would train "
            f"nothing and overwrite checkpoint {end}: pass --steps and --stop-after above {at}"
        )
    if tensorboard:
        _require_tensorboard()
    return latest


def _starting_weights(
    ssd: SSDModel,
    cfg: SSDConfig,
    latest: str | None,
    keep_given: bool,
    init: str | None,
    init_partial: bool,
    init_config: str | Path,
) -> str:
    """Load the starting weights (unless resuming or keeping a given model's) and set what trains.

    Returns how the run starts, for the start-up line.
    """
    if latest:
        how = f"resumed from {latest}"
    elif keep_given:
        how = "weights of the given model"
    else:
        how = init_weights(ssd, init, init_partial, init_config)
    return how + _trainable_layers(ssd, cfg)


def _open_checkpoints(
    ssd: SSDModel,
    cfg: SSDConfig,
    opt: Any,
    step_var: tf.Variable,
    run_dir: Path,
    latest: str | None,
) -> tf.train.CheckpointManager:
    """The run's checkpoint manager, with ``latest`` restored; then writes ``config.json``.

    ``config.json`` comes only after the restore, so a resume that could not restore leaves the
    run's own ``config.json`` as it was.
    """
    ckpt = tf.train.Checkpoint(model=ssd.keras_model, optimizer=opt, step=step_var)
    manager = tf.train.CheckpointManager(
        ckpt, str(run_dir / "checkpoints"), max_to_keep=cfg.train.keep_checkpoints
    )
    if latest:
        _restore(ckpt, latest, cfg)
        note = resume_note(run_dir, cfg)
        if note:
            print(note, flush=True)
    save_config(cfg, run_dir / "config.json")
    return manager


def _save_stopped(manager: tf.train.CheckpointManager, run_dir: Path, end: int, steps: int) -> Path:
    """Checkpoint step ``end`` of a run stopped before its schedule, and no
    ``final.weights.h5``: that name says the training is done, and export, validate or a script
    waiting for it would take these weights for the finished run's."""
    prefix = Path(manager.save(checkpoint_number=end))
    print(
        f"stopped at step {end} of {steps} (--stop-after): checkpoint {prefix}, no "
        f"final.weights.h5; continue with python -m host_tools.train --run-dir {run_dir} "
        "--resume (export and validate read the checkpoints/ folder meanwhile)",
        flush=True,
    )
    return prefix


def _save_final(
    ssd: SSDModel, manager: tf.train.CheckpointManager, run_dir: Path, end: int
) -> Path:
    """Checkpoint step ``end`` (so a later resume starts there) and write ``final.weights.h5``."""
    manager.save(checkpoint_number=end)
    out = run_dir / "final.weights.h5"
    save_weights(ssd.keras_model, out)
    print(f"wrote {out}", flush=True)
    return out


def _retire_earlier_final(run_dir: Path, start: int) -> None:
    """Move an earlier schedule's ``final.weights.h5`` to ``final-step<start>.weights.h5`` when a
    resume trains on past it: left in place it would pass for this schedule's result while the
    run is stopped (``--stop-after``) or still going. Kept, not deleted: they are the weights of
    a finished schedule."""
    final = run_dir / "final.weights.h5"
    if final.is_file():
        kept = run_dir / f"final-step{start}.weights.h5"
        final.replace(kept)
        print(f"moved the earlier schedule's {final.name} to {kept.name}", flush=True)


def has_checkpoints(run_dir: Path) -> bool:
    """Whether ``RUN/checkpoints`` holds a checkpoint (its state file or any checkpoint's index)."""
    ckpt_dir = run_dir / "checkpoints"
    if not ckpt_dir.is_dir():
        return False
    return (ckpt_dir / "checkpoint").exists() or any(ckpt_dir.glob("*.index"))


def check_run_dir(run_dir: Path, cfg: SSDConfig, resume: bool) -> str | None:
    """The checkpoint to resume from (None: start afresh), or a one-line error.

    A run directory that holds checkpoints is only continued (``resume``), never trained into
    afresh: the new run would truncate ``log.csv``, replace ``config.json`` and leave the old
    checkpoints beside its own, which ``host_tools.validate`` would then score as one run. A resumed
    run keeps its ``model`` and ``anchors`` (the weights' shapes and meaning): a ``cfg`` that
    differs from ``RUN/config.json`` there is refused before anything is written.
    """
    if not has_checkpoints(run_dir):
        return None
    if not resume:
        raise EdgeDetectError(
            f"{run_dir} already holds checkpoints of a run; "
            "pass --resume to continue it or pick a new --run-dir"
        )
    saved_path = run_dir / "config.json"
    if saved_path.is_file():
        saved = load_config(saved_path)
        fixed = [k for k in config_differences(saved, cfg) if k.startswith(FIXED_ON_RESUME)]
        if fixed:
            raise ConfigError(
                f"--resume: the config differs from {saved_path} in {', '.join(fixed)}; a resumed "
                "run keeps its model and anchors (leave out --config to use the run's own)"
            )
    latest = tf.train.latest_checkpoint(str(run_dir / "checkpoints"))
    if latest is None:
        raise ModelError(
            f"{run_dir / 'checkpoints'} holds checkpoint files but no readable 'checkpoint' state "
            "file; restore it or pick a new --run-dir"
        )
    return latest


def config_differences(old: SSDConfig, new: SSDConfig) -> dict[str, tuple[Any, Any]]:
    """``section.key`` -> (old, new) for every value that differs (``name`` aside)."""
    a, b = old.to_dict(), new.to_dict()
    out: dict[str, tuple[Any, Any]] = {}
    for section in sorted(set(a) | set(b)):
        if section == "name":
            continue
        sa, sb = a.get(section, {}), b.get(section, {})
        for key in sorted(set(sa) | set(sb)):
            if sa.get(key) != sb.get(key):
                out[f"{section}.{key}"] = (sa.get(key), sb.get(key))
    return out


def resume_note(run_dir: Path, cfg: SSDConfig) -> str:
    """What a resume changes against ``RUN/config.json`` (empty: nothing), for the log."""
    saved_path = run_dir / "config.json"
    if not saved_path.is_file():
        return ""
    diffs = config_differences(load_config(saved_path), cfg)
    if not diffs:
        return ""
    shown = [
        f"{k} {old} -> {new}" if not isinstance(new, (list, tuple, dict)) else k
        for k, (old, new) in diffs.items()
    ]
    return f"resume: changed from {saved_path}: " + ", ".join(shown)


def _restore(ckpt: tf.train.Checkpoint, latest: str, cfg: SSDConfig) -> None:
    """Restore ``latest`` into the model and optimizer; every model variable must come from it."""
    try:
        ckpt.restore(latest).assert_existing_objects_matched()
    except IndexError as exc:
        raise checkpoint_cut_short(latest, exc) from exc
    except (AssertionError, ValueError, tf.errors.OpError) as exc:
        raise ModelError(
            f"cannot resume {latest} as {cfg.name} ({first_line(exc)}); "
            "resume with the run's own config"
        ) from exc


def _trainable_layers(ssd: SSDModel, cfg: SSDConfig) -> str:
    """Apply ``train_only`` and ``freeze_batchnorm``; what to add to the start-up line."""
    note = ""
    if cfg.train.train_only:
        note = f"; training only {train_only(ssd.keras_model, cfg.train.train_only)} layers"
    if cfg.train.freeze_batchnorm:
        freeze_batchnorm(ssd.keras_model)
    return note


def _run_steps(
    train_step: Any,
    batches: Iterator[Any],
    opt: Any,
    step_var: tf.Variable,
    manager: tf.train.CheckpointManager,
    log: TrainLog,
    cfg: SSDConfig,
    end: int,
) -> None:
    """Steps ``step_var`` .. ``end``: log each, stop on a non-finite loss (one-line error, the
    last checkpoint kept), checkpoint every ``checkpoint_every``."""
    t_last = time.time()
    for step in range(int(step_var.numpy()), end):
        vals = {k: float(v) for k, v in train_step(*next(batches)).items()}
        step_var.assign(step + 1)
        now = time.time()
        lr = opt.learning_rate
        log.write(step + 1, vals, float(lr(step) if callable(lr) else lr), now - t_last)
        t_last = now
        if not math.isfinite(vals["loss"]):
            raise EdgeDetectError(
                f"training diverged at step {step + 1} (loss {vals['loss']}); lower learning_rate"
            )
        if (step + 1) % cfg.train.checkpoint_every == 0:
            manager.save(checkpoint_number=step + 1)


def training_sources(
    datasets: list[str] | None, split_file: str | None, cfg: SSDConfig
) -> list[DataSource]:
    """``--dataset`` (CLI), else ``[data]`` (config), else the Penn-Fudan train split."""
    if datasets:
        sources = [DataSource.parse(d) for d in datasets]
        sources = [
            s if s.split_file else replace(s, split_file=split_file).checked("--split-file")
            for s in sources
        ]
        refuse_repeats(sources, "--dataset", "with #weight=W", Path.cwd())
        return sources
    if split_file:  # the default dataset with another split
        return [DataSource(DEFAULT_DATASET, split_file).checked("--split-file")]
    return [s.resolved() for s in cfg.data.sources] or list(DEFAULT_SOURCES)


def run_config(config: str | None, run_dir: Path, resume: bool) -> SSDConfig:
    """The config of a run: ``--config``, else (``--resume``) the run's own ``config.json``, else
    the default. A resume with a ``--config`` whose model or anchors differ from the run's is
    refused (:func:`check_run_dir`), before any data is read."""
    saved = run_dir / "config.json"
    if config is None and resume:
        if not saved.is_file():
            raise ConfigError(
                f"--resume: {saved} not found, so the run's config is unknown; "
                "pass --config (the config it was started with)"
            )
        return load_config(saved)
    return load_config(config if config is not None else DEFAULT_CONFIG)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m host_tools.train", description=__doc__.split("\n")[0]
    )
    _add_model_args(p)
    _add_data_args(p)
    _add_schedule_args(p)
    return p


def _add_model_args(p: argparse.ArgumentParser) -> None:
    """The config and the weights a run starts from."""
    p.add_argument(
        "--config",
        type=path_arg,
        help=f"config name in host_tools/configs or a JSON path (default: {DEFAULT_CONFIG}; "
        "with --resume, the run's own RUN/config.json)",
    )
    p.add_argument(
        "--init",
        type=path_arg,
        default=None,
        help=".weights.h5, OD-API frozen .pb, or 'none' (default: none)",
    )
    p.add_argument(
        "--init-partial",
        action="store_true",
        help="copy only the --init variables whose names and shapes match (transfer a backbone)",
    )
    p.add_argument(
        "--init-config",
        type=path_arg,
        default="ssdlite_mobilenet_v2",
        help="with --init-partial: the config the --init weights were made with",
    )


def _add_data_args(p: argparse.ArgumentParser) -> None:
    """What the run trains on and where it writes."""
    p.add_argument(
        "--dataset",
        action="append",
        metavar=SOURCE_FORM,
        help="a dataset of the training mix (repeat to mix; host_tools.datasets spec, e.g. "
        "yolo:../shared/data/capston2/train#weight=3; #ignore= adds ignore regions from "
        "host_tools.ignore_regions; #ignore_below=0.08 ignores people under 0.08 of the image "
        "height where a taller one is kept); default: the config's [data] sources, "
        "else the Penn-Fudan train split",
    )
    p.add_argument(
        "--split-file",
        type=path_arg,
        help="image names to train on, for each --dataset without its own #split=",
    )
    p.add_argument(
        "--run-dir",
        type=path_option,
        required=True,
        help="output directory (checkpoints, logs, weights)",
    )


def _add_schedule_args(p: argparse.ArgumentParser) -> None:
    """The config's training overrides, resuming and stopping, and progress output."""
    p.add_argument("--steps", type=positive_int, help="override train.steps")
    p.add_argument("--batch-size", type=positive_int, help="override train.batch_size")
    p.add_argument("--lr", type=positive_float, help="override train.learning_rate")
    p.add_argument(
        "--limit",
        type=positive_int,
        help="use only the first N training images of each source (smoke tests; recorded in "
        "config.json as data.limit, so --resume reads the same images)",
    )
    p.add_argument("--seed", type=seed, help="override train.seed")
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue from the run directory's latest checkpoint, with its config.json unless "
        "--config is given (the command line's overrides apply on top)",
    )
    p.add_argument(
        "--stop-after",
        type=positive_int,
        help="stop at this step (checkpointed), keeping the --steps LR schedule; final.weights.h5 "
        "comes when a --resume finishes the schedule",
    )
    p.add_argument(
        "--tensorboard", action="store_true", help="also write TensorBoard summaries to RUN/tb"
    )
    p.add_argument("--no-progress", action="store_true")


def _read_mix(
    sources: list[DataSource], limit: int | None, args: argparse.Namespace, from_config: bool
) -> TrainImages:
    """The training mix; a source of the config that cannot be read is named with the config
    (the dataset's own message named only its folder)."""
    try:
        return load_train_mix(sources, limit)
    except DatasetError as exc:
        if not from_config:
            raise
        where = args.config or (args.run_dir / "config.json" if args.resume else DEFAULT_CONFIG)
        raise DatasetError(f"config {where}, data.sources: {exc}") from None


@cli_errors("train")
def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    folder_not_file(args.run_dir, "--run-dir")
    cfg = run_config(args.config, args.run_dir, args.resume)
    resume_point(cfg, args.run_dir, args.resume, args.init)  # before the data is read (minutes)
    if args.batch_size is not None:
        cfg.train.batch_size = args.batch_size
    if args.lr is not None:
        cfg.train.learning_rate = args.lr
    if args.seed is not None:
        cfg.train.seed = args.seed
    if args.limit is not None:  # recorded in config.json: a resume reads the same images
        cfg.data.limit = args.limit
    sources = training_sources(args.dataset, args.split_file, cfg)
    if args.dataset or args.split_file:
        # config.json records the mix the run trained on, so --resume (and export's calibration)
        # takes it from there; the command line's relative paths are the current folder's.
        cfg.data.sources = tuple(s.resolved(Path.cwd()) for s in sources)
    from_config = bool(cfg.data.sources) and not args.dataset
    data = _read_mix(sources, cfg.data.limit, args, from_config=from_config)
    train(
        cfg,
        args.run_dir,
        args.init,
        data,
        resume=args.resume,
        steps=args.steps,
        progress=not args.no_progress,
        tensorboard=args.tensorboard,
        stop_after=args.stop_after,
        init_partial=args.init_partial,
        init_config=args.init_config,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
