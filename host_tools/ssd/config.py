"""SSD architecture and training hyper-parameters, from a small JSON file in ``host_tools/configs``.

JSON (not protobuf text like the OD API) so that no extra parser is needed; every key has a default,
unknown keys are rejected so a typo cannot silently fall back to a default.
"""

from __future__ import annotations

import json
import math
import typing
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from edgedetect.errors import ConfigError, did_you_mean
from host_tools.datasets.sources import PROJECT_ROOT, DataSource, refuse_repeats
from host_tools.ssd.anchors import AnchorConfig

CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs"
ARCHS = ("ssdlite_mobilenet_v2", "ssd_mobilenet_v2", "ssd_mobilenet_v1", "tflite_graph")


@dataclass
class ModelConfig:
    arch: str = "ssdlite_mobilenet_v2"
    input_size: int = 300
    num_classes: int = 1  # without background
    depth_multiplier: float = 1.0
    extra_depths: tuple[int, ...] = (512, 256, 256, 128)
    head_kernel_size: int = 3
    score_converter: str = "sigmoid"  # or "softmax"
    box_scales: tuple[float, float, float, float] = (10.0, 10.0, 5.0, 5.0)
    weight_decay: float = 4e-5
    bn_momentum: float = 0.997
    bn_epsilon: float = 0.001
    # arch "tflite_graph": the OD-API SSD TFLite file whose graph, weights and anchors the model is
    # (host_tools.ssd.tflite_graph); the anchors section is then unused.
    graph: str = ""


@dataclass
class TrainConfig:
    batch_size: int = 16
    steps: int = 1000
    learning_rate: float = 2e-4
    warmup_steps: int = 50
    warmup_start_factor: float = 0.1
    optimizer: str = "adam"  # or "momentum"
    freeze_batchnorm: bool = True
    matched_iou: float = 0.5
    unmatched_iou: float = 0.5
    loss: str = "hard_negative"  # or "focal"
    neg_pos_ratio: float = 3.0
    min_negatives: int = 8
    focal_alpha: float = 0.25
    focal_gamma: float = 2.0
    localization_weight: float = 1.0
    box_code_limit: float = 0.0  # > 0: penalise box codes beyond +-limit (narrower int8 range)
    giou_weight: float = 0.0  # > 0 adds weight * (1 - GIoU) of the positives to the smooth-L1 loss
    classification_weight: float = 1.0
    # False: the sigmoid loss skips the background column, which inference never reads. Needed when
    # the start is a many-class model (COCO): its background logit is low on cars and chairs, which
    # are background here, and that column's loss would drown the person column's and its mining.
    background_loss: bool = True
    checkpoint_every: int = 100
    keep_checkpoints: int = 3  # newest N kept; raise it to pick a checkpoint on a validation split
    seed: int = 1234
    train_only: tuple[str, ...] = ()  # layer-name prefixes to train (e.g. a new head); () = all


@dataclass
class AugmentConfig:
    flip: bool = True
    crop_prob: float = 0.6
    expand_prob: float = 0.3
    max_expand_ratio: float = 2.5
    photometric: bool = True
    # Share of examples given night-camera conditions after the resize (augment.camera_conditions).
    camera_prob: float = 0.0
    # Share of examples replaced by a crop that touches no person or ignore region (a person-free
    # scene cut from a real photo: augment.background_crop).
    background_crop_prob: float = 0.0
    # Share of examples replaced by a close-up of a labelled thing that is not a person (a cup, a
    # cat, a chair) and touches no person: augment.object_crop.
    object_crop_prob: float = 0.0


@dataclass
class PostprocessConfig:
    max_detections: int = 100
    detections_per_class: int = 100
    nms_score_threshold: float = 1e-8
    nms_iou_threshold: float = 0.6
    use_regular_nms: bool = False


@dataclass
class DataConfig:
    """The training mix; empty means the CLI's ``--dataset`` (default: Penn-Fudan train split).

    ``limit`` (``--limit``) keeps the first N images of each source. It is part of the run's
    ``config.json`` so that ``--resume`` trains on the same images: not recorded, a resume without
    ``--limit`` went on with the whole data set and said nothing.
    """

    sources: tuple[DataSource, ...] = ()
    limit: int | None = None


@dataclass
class SSDConfig:
    name: str = "ssdlite_mobilenet_v2_300"
    model: ModelConfig = field(default_factory=ModelConfig)
    anchors: AnchorConfig = field(default_factory=AnchorConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    postprocess: PostprocessConfig = field(default_factory=PostprocessConfig)
    data: DataConfig = field(default_factory=DataConfig)

    def to_dict(self) -> dict:
        return asdict(self)


def _refuse_unknown(data: dict, known: list[str], where: str, what: str = "key {!r}") -> None:
    """A key (or, with ``what``, a section) that is not one of ``known``, with the closest known
    one (a typo would otherwise leave the default in place), as the service config says it."""
    unknown = sorted(set(data) - set(known))
    if unknown:
        name = unknown[0]
        raise ConfigError(f"{where}: unknown {what.format(name)}{did_you_mean(name, known)}")


def _build(cls, data: dict, where: str):
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: must be an object of keys and values, not {data!r}")
    known = {f.name: f for f in fields(cls)}
    _refuse_unknown(data, list(known), where)
    kwargs = {}
    for key, value in data.items():
        if isinstance(value, list):
            value = tuple(tuple(v) if isinstance(v, list) else v for v in value)
        kwargs[key] = value
    return cls(**kwargs)


# ----------------------------------------------------------------------------- value checks
# Each config section's fields are checked against their annotated type and the range below, so a
# typo'd value is one line naming the key instead of a traceback deep in training (batch_size "16":
# TypeError; checkpoint_every 0: ZeroDivisionError; steps -5: final weights with no training).

Check = tuple[Callable[[float], bool], str]


def _num(x: float) -> str:
    return f"{x:g}" if isinstance(x, float) else str(x)


def _at_least(low: float) -> Check:
    return (lambda v: v >= low), f">= {_num(low)}"


def _above(low: float) -> Check:
    return (lambda v: v > low), f"> {_num(low)}"


def _within(low: float, high: float) -> Check:
    return (lambda v: low <= v <= high), f"between {_num(low)} and {_num(high)}"


_RANGES: dict[str, Check] = {
    "model.input_size": _at_least(32),  # 32 px: the stride-32 map and the extras are 1x1
    "model.num_classes": _at_least(1),
    "model.depth_multiplier": _above(0),
    "model.extra_depths": _at_least(1),
    "model.head_kernel_size": _at_least(1),
    "model.box_scales": _above(0),
    "model.weight_decay": _at_least(0),
    "model.bn_momentum": _within(0, 1),
    "model.bn_epsilon": _above(0),
    "anchors.num_layers": _at_least(1),
    "anchors.min_scale": _above(0),
    "anchors.max_scale": _above(0),
    "anchors.aspect_ratios": _above(0),
    "anchors.interpolated_scale_aspect_ratio": _at_least(0),  # 0 turns it off
    "anchors.base_anchor_size": _above(0),
    "anchors.scales": _above(0),
    "train.batch_size": _at_least(1),
    "train.steps": _at_least(1),
    "train.learning_rate": _above(0),
    "train.warmup_steps": _at_least(0),
    "train.warmup_start_factor": _within(0, 1),
    "train.matched_iou": _within(0, 1),
    "train.unmatched_iou": _within(0, 1),
    "train.neg_pos_ratio": _above(0),
    "train.min_negatives": _at_least(0),
    "train.focal_alpha": _within(0, 1),
    "train.focal_gamma": _at_least(0),
    "train.localization_weight": _at_least(0),
    "train.box_code_limit": _at_least(0),  # 0 turns it off
    "train.giou_weight": _at_least(0),
    "train.classification_weight": _at_least(0),
    "train.checkpoint_every": _at_least(1),
    "train.keep_checkpoints": _at_least(1),
    "train.seed": _within(0, 2**32 - 1),  # numpy's seed range
    "augment.crop_prob": _within(0, 1),
    "augment.expand_prob": _within(0, 1),
    "augment.max_expand_ratio": _at_least(1),
    "augment.camera_prob": _within(0, 1),
    "augment.background_crop_prob": _within(0, 1),
    "augment.object_crop_prob": _within(0, 1),
    "postprocess.max_detections": _at_least(1),
    "postprocess.detections_per_class": _at_least(1),
    "postprocess.nms_score_threshold": _within(0, 1),
    "postprocess.nms_iou_threshold": _within(0, 1),
}
# What a field of a type the generic wording would describe badly must be.
_SHAPES = {"anchors.stride8_anchors": "a list of [scale, aspect_ratio] pairs"}
_KINDS: dict[Any, tuple[str, str]] = {
    bool: ("true or false", "true/false values"),
    int: ("a whole number", "whole numbers"),
    float: ("a number", "numbers"),
    str: ("a string", "strings"),
}


def _show(v: Any) -> str:
    """A value as the JSON file spells it (lists in brackets), else its repr."""
    try:
        return json.dumps(v)
    except (TypeError, ValueError):
        return repr(v)


def _fits(hint: Any, v: Any) -> bool:
    """Whether ``v`` (JSON-loaded, lists as tuples or lists) is of the annotated type ``hint``."""
    if typing.get_origin(hint) is tuple:
        args = typing.get_args(hint)
        if not isinstance(v, (list, tuple)):
            return False
        if len(args) == 2 and args[1] is Ellipsis:
            return all(_fits(args[0], x) for x in v)
        return len(v) == len(args) and all(_fits(h, x) for h, x in zip(args, v, strict=True))
    if hint is bool:
        return isinstance(v, bool)
    if hint is int:
        return isinstance(v, int) and not isinstance(v, bool)
    if hint is float:
        return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
    if hint is str:
        return isinstance(v, str)
    return True


def _describe(hint: Any) -> str:
    """``hint`` in words for an error: 'a whole number', 'a list of 4 numbers', ..."""
    if typing.get_origin(hint) is tuple:
        args = typing.get_args(hint)
        if len(args) == 2 and args[1] is Ellipsis:
            return f"a list of {_KINDS.get(args[0], ('', 'values'))[1]}"
        return f"a list of {len(args)} {_KINDS.get(args[0], ('', 'values'))[1]}"
    return _KINDS.get(hint, ("a valid value", ""))[0]


def _check_section(section: str, cls: type, values: dict[str, Any], where: str) -> None:
    """Type and range of every given field of ``cls`` (one line naming the key on the first bad)."""
    hints = typing.get_type_hints(cls)
    for key, v in values.items():
        if key not in hints:
            continue
        name = f"{section}.{key}"
        if not _fits(hints[key], v):
            shape = _SHAPES.get(name) or _describe(hints[key])
            raise ConfigError(f"{where}: {name} must be {shape}, not {_show(v)}")
        rule = _RANGES.get(name)
        if rule is None:
            continue
        ok, text = rule
        for x in v if isinstance(v, (list, tuple)) else (v,):
            if not ok(x):
                raise ConfigError(f"{where}: {name} must be {text}, not {_show(x)}")


def check_config(cfg: SSDConfig, where: str = "config") -> None:
    """Every value of ``cfg`` of its type and in its range; raises a one-line ConfigError.

    ``config_from_dict`` runs it; ``host_tools.train`` runs it again after the command line's
    overrides.
    """
    sections: dict[str, Any] = {
        "model": cfg.model,
        "anchors": cfg.anchors,
        "train": cfg.train,
        "augment": cfg.augment,
        "postprocess": cfg.postprocess,
    }
    for section, obj in sections.items():
        _check_section(section, type(obj), asdict(obj), where)
    _check_combinations(cfg, where)


def _check_combinations(cfg: SSDConfig, where: str) -> None:
    """The rules that tie fields together."""
    m, t = cfg.model, cfg.train
    if m.arch not in ARCHS:
        raise ConfigError(f"{where}: model.arch {m.arch!r} is not one of {ARCHS}")
    if m.arch == "tflite_graph":
        if not m.graph:
            raise ConfigError(
                f"{where}: model.arch 'tflite_graph' needs model.graph, a .tflite file"
            )
    elif m.graph:
        raise ConfigError(f"{where}: model.graph is only read with model.arch 'tflite_graph'")
    else:  # a tflite_graph model takes its anchors from the file
        _check_anchors(cfg, where)
    if t.unmatched_iou > t.matched_iou:
        raise ConfigError(
            f"{where}: train.unmatched_iou {t.unmatched_iou:g} is above "
            f"train.matched_iou {t.matched_iou:g}"
        )
    if t.optimizer not in ("adam", "momentum"):
        raise ConfigError(f"{where}: train.optimizer must be 'adam' or 'momentum'")
    if m.score_converter not in ("sigmoid", "softmax"):
        raise ConfigError(f"{where}: model.score_converter must be 'sigmoid' or 'softmax'")
    if not t.background_loss and m.score_converter != "sigmoid":
        raise ConfigError(
            f"{where}: train.background_loss false needs model.score_converter 'sigmoid' "
            "(softmax scores are relative to the background column)"
        )
    if t.loss not in ("hard_negative", "focal"):
        raise ConfigError(f"{where}: train.loss must be 'hard_negative' or 'focal'")


def _check_anchors(cfg: SSDConfig, where: str) -> None:
    """The rules of the anchors section and the feature maps it must match."""
    m, a = cfg.model, cfg.anchors
    if not a.aspect_ratios:
        raise ConfigError(f"{where}: anchors.aspect_ratios is empty; list at least one, e.g. [1.0]")
    if a.num_layers != len(m.extra_depths) + 2:
        raise ConfigError(
            f"{where}: anchors.num_layers {a.num_layers} does not match the model's "
            f"{len(m.extra_depths) + 2} feature maps (2 backbone maps + one per "
            f"model.extra_depths entry)"
        )
    if a.scales and len(a.scales) != a.num_layers:
        raise ConfigError(
            f"{where}: anchors.scales has {len(a.scales)} entries for "
            f"anchors.num_layers {a.num_layers}"
        )
    if a.min_scale > a.max_scale:
        raise ConfigError(
            f"{where}: anchors.min_scale {a.min_scale:g} is above max_scale {a.max_scale:g}"
        )
    if a.stride8_anchors and "mobilenet_v2" not in m.arch:
        raise ConfigError(f"{where}: anchors.stride8_anchors needs a MobileNetV2 arch")
    if any(v <= 0 for pair in a.stride8_anchors for v in pair):
        raise ConfigError(f"{where}: anchors.stride8_anchors scales and aspect ratios must be > 0")


def config_from_dict(data: dict, where: str = "config") -> SSDConfig:
    data = dict(data)
    sections = {
        "model": ModelConfig,
        "train": TrainConfig,
        "augment": AugmentConfig,
        "postprocess": PostprocessConfig,
    }
    _refuse_unknown(data, [f.name for f in fields(SSDConfig)], where, what="section [{}]")
    cfg = SSDConfig(name=str(data.get("name", "ssd")))
    for key, cls in sections.items():
        if key in data:
            setattr(cfg, key, _build(cls, data[key], f"{where} [{key}]"))
    if "anchors" in data:
        cfg.anchors = _anchors_section(data["anchors"], where)
    if "data" in data:
        cfg.data = _data_section(data["data"], where)
    check_config(cfg, where)
    return cfg


def _anchors_section(anchors: Any, where: str) -> AnchorConfig:
    """The ``[anchors]`` section, checked key by key (a misspelt key would be a silent
    default)."""
    if not isinstance(anchors, dict):
        raise ConfigError(
            f"{where} [anchors]: must be an object of keys and values, not {anchors!r}"
        )
    _refuse_unknown(anchors, [f.name for f in fields(AnchorConfig)], f"{where} [anchors]")
    _check_section("anchors", AnchorConfig, anchors, where)
    try:
        return AnchorConfig.from_dict(anchors)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where} [anchors]: {exc}") from exc


def _data_section(d: Any, where: str) -> DataConfig:
    """The ``[data]`` section: its list of training sources, each a spec object, and ``limit``."""
    if not isinstance(d, dict):
        raise ConfigError(
            f"{where} [data]: must be an object with 'sources' (a list of {{spec, split_file, "
            f"weight}}) and optionally 'limit', not {_show(d)}"
        )
    _refuse_unknown(d, [f.name for f in fields(DataConfig)], f"{where} [data]")
    limit = d.get("limit")
    if limit is not None and not (_fits(int, limit) and limit >= 1):
        raise ConfigError(
            f"{where}: data.limit must be a whole number >= 1 (images per source) or null, "
            f"not {_show(limit)}"
        )
    sources = d.get("sources", [])
    if not isinstance(sources, list) or not all(isinstance(s, dict) for s in sources):
        # A string was read character by character: "got ['y']" for "yolo:y".
        raise ConfigError(
            f"{where} [data]: sources is a list of specs, each "
            f'{{"spec": ..., "split_file": ..., "weight": ...}}, not {json.dumps(sources)}; '
            f'e.g. "sources": [{{"spec": "yolo:ROOT"}}]'
        )
    mix = tuple(DataSource.from_dict(s, f"{where} [data]") for s in sources)
    refuse_repeats(mix, f"{where} [data]: source", 'with "weight": W', PROJECT_ROOT)
    return DataConfig(mix, limit)


def load_config(path_or_name: str | Path) -> SSDConfig:
    """Load a config by path, or by name from ``host_tools/configs`` (``ssdlite_mobilenet_v2``)."""
    path = Path(path_or_name)
    if not path.exists():
        candidate = CONFIG_DIR / f"{path_or_name}.json"
        if not candidate.exists():
            names = sorted(p.stem for p in CONFIG_DIR.glob("*.json"))
            raise ConfigError(f"config {path_or_name!r} not found (a path, or one of {names})")
        path = candidate
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}: not valid JSON ({exc}); fix the file") from exc
    return config_from_dict(data, str(path))


def save_config(cfg: SSDConfig, path: Path) -> None:
    path.write_text(json.dumps(cfg.to_dict(), indent=2) + "\n")
