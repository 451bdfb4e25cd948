"""SSD architecture and training hyper-parameters, from a small JSON file in ``host_tools/configs``.

JSON (not protobuf text like the OD API) so that no extra parser is needed; every key has a default,
unknown keys are rejected so a typo cannot silently fall back to a default.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from edgedetect.errors import ConfigError
from host_tools.datasets.sources import DataSource
from host_tools.ssd.anchors import AnchorConfig

CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs"
ARCHS = ("ssdlite_mobilenet_v2", "ssd_mobilenet_v2", "ssd_mobilenet_v1")


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


@dataclass
class PostprocessConfig:
    max_detections: int = 100
    detections_per_class: int = 100
    nms_score_threshold: float = 1e-8
    nms_iou_threshold: float = 0.6
    use_regular_nms: bool = False


@dataclass
class DataConfig:
    """The training mix; empty means the CLI's ``--dataset`` (default: Penn-Fudan train split)."""

    sources: tuple[DataSource, ...] = ()


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


def _build(cls, data: dict, where: str):
    known = {f.name: f for f in fields(cls)}
    unknown = set(data) - set(known)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {sorted(unknown)}; allowed: {sorted(known)}")
    kwargs = {}
    for key, value in data.items():
        if isinstance(value, list):
            value = tuple(value)
        kwargs[key] = value
    return cls(**kwargs)


def config_from_dict(data: dict, where: str = "config") -> SSDConfig:
    data = dict(data)
    sections = {
        "model": ModelConfig,
        "train": TrainConfig,
        "augment": AugmentConfig,
        "postprocess": PostprocessConfig,
    }
    unknown = set(data) - set(sections) - {"name", "anchors", "data"}
    if unknown:
        raise ConfigError(f"{where}: unknown section(s) {sorted(unknown)}")
    cfg = SSDConfig(name=str(data.get("name", "ssd")))
    for key, cls in sections.items():
        if key in data:
            setattr(cfg, key, _build(cls, data[key], f"{where} [{key}]"))
    if "anchors" in data:
        known = {f.name for f in fields(AnchorConfig)}
        if set(data["anchors"]) - known:
            raise ConfigError(
                f"{where} [anchors]: unknown key(s) {sorted(set(data['anchors']) - known)}"
            )
        try:
            cfg.anchors = AnchorConfig.from_dict(data["anchors"])
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{where} [anchors]: {exc}") from exc
    if "data" in data:
        d = data["data"]
        if not isinstance(d, dict) or set(d) - {"sources"}:
            raise ConfigError(
                f"{where} [data]: only key 'sources' (a list of {{spec, split_file, weight}})"
            )
        cfg.data = DataConfig(
            tuple(DataSource.from_dict(s, f"{where} [data]") for s in d.get("sources", []))
        )
    if cfg.model.arch not in ARCHS:
        raise ConfigError(f"{where}: model.arch {cfg.model.arch!r} is not one of {ARCHS}")
    if cfg.anchors.stride8_anchors and "mobilenet_v2" not in cfg.model.arch:
        raise ConfigError(f"{where}: anchors.stride8_anchors needs a MobileNetV2 arch")
    if any(v <= 0 for pair in cfg.anchors.stride8_anchors for v in pair):
        raise ConfigError(f"{where}: anchors.stride8_anchors scales and aspect ratios must be > 0")
    if cfg.model.score_converter not in ("sigmoid", "softmax"):
        raise ConfigError(f"{where}: model.score_converter must be 'sigmoid' or 'softmax'")
    if cfg.train.box_code_limit < 0:
        raise ConfigError(f"{where}: train.box_code_limit must be >= 0 (0 turns it off)")
    if cfg.train.giou_weight < 0:
        raise ConfigError(f"{where}: train.giou_weight must be >= 0")
    if not cfg.train.background_loss and cfg.model.score_converter != "sigmoid":
        raise ConfigError(
            f"{where}: train.background_loss false needs model.score_converter 'sigmoid' "
            "(softmax scores are relative to the background column)"
        )
    if cfg.train.loss not in ("hard_negative", "focal"):
        raise ConfigError(f"{where}: train.loss must be 'hard_negative' or 'focal'")
    return cfg


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
