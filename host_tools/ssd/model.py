"""Keras SSD models: SSDLite-MobileNetV2, SSD-MobileNetV2, SSD-MobileNetV1 (OD-API layouts).

Layer names are the TF1 OD-API variable scopes with ``/`` written as ``__``, so weights from an
OD-API graph or checkpoint map onto layers by name (see ``host_tools.import_weights``). Keras
``padding="same"`` is TensorFlow's SAME padding, which is what the TF1 slim layers used (extra
row/column at the bottom/right for stride 2), so no explicit padding is needed to reproduce the
OD-API outputs.

The model takes a normalised image [B, H, W, 3] in [-1, 1] (``p / 127.5 - 1``, the OD-API MobileNet
preprocessing) and returns ``box_encodings`` [B, N, 4] and ``class_logits`` [B, N, num_classes + 1]
(column 0 = background), N = number of anchors.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edgedetect.errors import ConfigError, ModelError
from host_tools.ssd.anchors import (
    center_size_to_corners,
    corners_to_center_size,
    generate_anchors,
)
from host_tools.ssd.config import ModelConfig, SSDConfig
from host_tools.ssd.keras_compat import keras

layers = keras.layers

SEP = "__"


def scope(*parts: str) -> str:
    """Keras layer name for an OD-API scope path."""
    return SEP.join(parts)


def _make_divisible(v: float, divisor: int = 8, min_value: int | None = None) -> int:
    """MobileNetV2 channel rounding (as in slim's ``_make_divisible``)."""
    min_value = min_value or divisor
    new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
    if new_v < 0.9 * v:
        new_v += divisor
    return new_v


class _Builder:
    """Holds regularisation / batch-norm settings so that every conv is made the same way."""

    def __init__(self, cfg: SSDConfig):
        m = cfg.model
        self.reg = keras.regularizers.l2(m.weight_decay) if m.weight_decay > 0 else None
        self.bn_momentum = m.bn_momentum
        self.bn_epsilon = m.bn_epsilon

    def bn(self, x, name: str, act: bool = True):
        x = layers.BatchNormalization(
            momentum=self.bn_momentum, epsilon=self.bn_epsilon, name=scope(name, "BatchNorm")
        )(x)
        return layers.ReLU(6.0, name=scope(name, "Relu6"))(x) if act else x

    def conv(self, x, filters: int, kernel: int, stride: int, name: str, act: bool = True):
        x = layers.Conv2D(
            filters,
            kernel,
            stride,
            padding="same",
            use_bias=False,
            kernel_regularizer=self.reg,
            kernel_initializer=keras.initializers.TruncatedNormal(stddev=0.03),
            name=name,
        )(x)
        return self.bn(x, name, act)

    def dwconv(self, x, kernel: int, stride: int, name: str, act: bool = True):
        x = layers.DepthwiseConv2D(
            kernel,
            stride,
            padding="same",
            use_bias=False,
            depthwise_regularizer=self.reg,
            depthwise_initializer=keras.initializers.TruncatedNormal(stddev=0.03),
            name=name,
        )(x)
        return self.bn(x, name, act)


# MobileNetV2 (slim V2_DEF): (expansion, out channels, stride) of expanded_conv .. expanded_conv_16
_V2_BLOCKS = [
    (1, 16, 1),
    (6, 24, 2),
    (6, 24, 1),
    (6, 32, 2),
    (6, 32, 1),
    (6, 32, 1),
    (6, 64, 2),
    (6, 64, 1),
    (6, 64, 1),
    (6, 64, 1),
    (6, 96, 1),
    (6, 96, 1),
    (6, 96, 1),
    (6, 160, 2),
    (6, 160, 1),
    (6, 160, 1),
    (6, 320, 1),
]


def _mobilenet_v2(b: _Builder, x, mult: float, stride8: bool = False):
    """The base feature maps: layer_15/expansion_output (stride 16) and layer_19 (stride 32).

    With ``stride8`` also layer_8/expansion_output (stride 8, 38x38 at 300) first, the same kind
    of map one octave finer, for anchors smaller than the stride-16 layer can place.
    """
    root = scope("FeatureExtractor", "MobilenetV2")
    d = lambda c: _make_divisible(c * mult, 8, 16)  # noqa: E731
    x = b.conv(x, d(32), 3, 2, scope(root, "Conv"))
    feature_8 = feature_16 = None
    for i, (t, c, s) in enumerate(_V2_BLOCKS):
        name = scope(root, "expanded_conv" if i == 0 else f"expanded_conv_{i}")
        inp = x
        in_ch = int(x.shape[-1])
        if t != 1:
            x = b.conv(x, _make_divisible(in_ch * t, 8), 1, 1, scope(name, "expand"))
            if i == 6:
                feature_8 = x  # layer_8/expansion_output
            if i == 13:
                feature_16 = x  # layer_15/expansion_output
        x = b.dwconv(x, 3, s, scope(name, "depthwise"))
        out_ch = d(c) if i < 16 else d(c)
        x = b.conv(x, out_ch, 1, 1, scope(name, "project"), act=False)
        if s == 1 and in_ch == out_ch:
            x = layers.Add(name=scope(name, "add"))([inp, x])
    # slim keeps Conv_1 at 1280 for multipliers < 1
    x = b.conv(x, max(1280, d(1280)) if mult > 1.0 else 1280, 1, 1, scope(root, "Conv_1"))
    return root, "layer_19", ([feature_8] if stride8 else []) + [feature_16, x]


_V1_BLOCKS = [
    (1, 64),
    (2, 128),
    (1, 128),
    (2, 256),
    (1, 256),
    (2, 512),
    (1, 512),
    (1, 512),
    (1, 512),
    (1, 512),
    (1, 512),
    (2, 1024),
    (1, 1024),
]


def _mobilenet_v1(b: _Builder, x, mult: float):
    """Returns Conv2d_11_pointwise (stride 16) and Conv2d_13_pointwise (stride 32)."""
    root = scope("FeatureExtractor", "MobilenetV1")
    net = scope(
        root, "MobilenetV1"
    )  # the OD API nests the slim scope: FeatureExtractor/MobilenetV1/MobilenetV1
    d = lambda c: max(int(c * mult), 8)  # noqa: E731
    x = b.conv(x, d(32), 3, 2, scope(net, "Conv2d_0"))
    feats = []
    for i, (s, c) in enumerate(_V1_BLOCKS, start=1):
        x = b.dwconv(x, 3, s, scope(net, f"Conv2d_{i}_depthwise"))
        x = b.conv(x, d(c), 1, 1, scope(net, f"Conv2d_{i}_pointwise"))
        if i in (11, 13):
            feats.append(x)
    return root, "Conv2d_13_pointwise", feats


@dataclass
class SSDModel:
    """A built SSD: the Keras model plus the constants that define its output (anchors, scales)."""

    config: SSDConfig
    keras_model: keras.Model
    feature_map_sizes: list[tuple[int, int]]
    anchors: np.ndarray  # (N, 4) ymin, xmin, ymax, xmax normalised
    anchors_cs: np.ndarray  # (N, 4) ycenter, xcenter, h, w

    @property
    def num_anchors(self) -> int:
        return int(self.anchors.shape[0])


def _top_down_stride8(b: _Builder, feature_8, feature_16, depth: int = 128):
    """FPN-lite merge for the stride-8 layer: its own map plus the stride-16 map upsampled.

    layer_8 alone sits early in MobileNetV2 and knows edges more than people; the top-down path
    brings the stride-16 map's semantics down one octave, as the OD API's FPN-lite extractors do
    (1x1 laterals, nearest 2x, add, separable 3x3). Every layer is under the ``Stride8`` scope, so
    ``train.train_only`` can name them all. Measured results: docs/training.md.
    """
    lateral = b.conv(feature_8, depth, 1, 1, scope("Stride8", "lateral"), act=False)
    top = b.conv(feature_16, depth, 1, 1, scope("Stride8", "top_down"), act=False)
    top = layers.UpSampling2D(2, interpolation="nearest", name=scope("Stride8", "upsample"))(top)
    h, w = int(lateral.shape[1]), int(lateral.shape[2])
    if (int(top.shape[1]), int(top.shape[2])) != (h, w):  # odd input sizes: SAME padding rounds up
        top = layers.Cropping2D(
            ((0, int(top.shape[1]) - h), (0, int(top.shape[2]) - w)), name=scope("Stride8", "crop")
        )(top)
    x = layers.Add(name=scope("Stride8", "add"))([lateral, top])
    x = b.dwconv(x, 3, 1, scope("Stride8", "smooth_depthwise"))
    return b.conv(x, depth, 1, 1, scope("Stride8", "smooth"))


def _prior_bias(n_cls: int):
    """Class-logit bias of a head added to trained ones: object classes start near 1 %.

    A zero bias would score every one of its thousands of anchors 0.5 (sigmoid) at step 0, a burst
    of false positives the first steps spend undoing (Lin et al.'s focal-loss prior, 0.01).
    """

    def init(shape, dtype=None):
        import tensorflow as tf

        per_anchor = np.array([0.0] + [-4.6] * (n_cls - 1), np.float32)
        return tf.constant(np.tile(per_anchor, shape[0] // n_cls), dtype=dtype)

    return init


def build_ssd(cfg: SSDConfig) -> SSDModel:
    """Build the Keras SSD of ``cfg`` (random init; see import_weights / train for weights)."""
    m = cfg.model
    if m.arch == "tflite_graph":
        return _build_from_graph(cfg)
    b = _Builder(cfg)
    inp = keras.Input(
        (m.input_size, m.input_size, 3), batch_size=None, name="normalized_input_image_tensor"
    )
    stride8 = bool(cfg.anchors.stride8_anchors)
    if "mobilenet_v2" in m.arch:
        root, last, feats = _mobilenet_v2(b, inp, m.depth_multiplier, stride8)
    else:  # config_from_dict refuses stride8_anchors here; a hand-made config fails the count below
        root, last, feats = _mobilenet_v1(b, inp, m.depth_multiplier)
    if stride8:
        feats[0] = _top_down_stride8(b, feats[0], feats[1])
    feats += _extra_feature_maps(b, m, feats[-1], root, last)
    per_loc = cfg.anchors.anchors_per_location()
    if len(feats) != len(per_loc):
        raise ValueError(f"{len(feats)} feature maps but {len(per_loc)} anchor layers")
    # The stride-8 head is not an OD-API layer: its own scope keeps BoxPredictor_0..5 named (and
    # loadable by --init-partial) as in the model without it.
    names = (["BoxPredictor_stride8"] if stride8 else []) + [
        f"BoxPredictor_{i}" for i in range(cfg.anchors.num_layers)
    ]
    boxes, classes = _box_predictors(b, m, feats, per_loc, names)
    sizes = [(int(f.shape[1]), int(f.shape[2])) for f in feats]
    box_enc = layers.Concatenate(axis=1, name="box_encodings")(boxes)
    cls_logits = layers.Concatenate(axis=1, name="class_logits")(classes)
    model = keras.Model(inp, [box_enc, cls_logits], name=cfg.name)
    anchors = generate_anchors(cfg.anchors, sizes, (m.input_size, m.input_size))
    if anchors.shape[0] != int(box_enc.shape[1]):
        raise AssertionError(f"{anchors.shape[0]} anchors but {box_enc.shape[1]} predictions")
    return SSDModel(cfg, model, sizes, anchors, corners_to_center_size(anchors))


def _build_from_graph(cfg: SSDConfig) -> SSDModel:
    """The SSD of the TFLite file ``model.graph``, with its weights and anchors (tflite_graph)."""
    from host_tools.datasets.sources import rooted
    from host_tools.ssd.tflite_graph import build_keras, feature_map_sizes, read_graph

    m = cfg.model
    # A config's relative paths resolve against the checkout, as its data sources do, so a
    # shipped config (person_ssdlite_int8_mix_objects: models/...) works from any folder.
    graph = read_graph(rooted(m.graph))
    where = f"model.graph {m.graph}"
    if graph.input_size != m.input_size:
        raise ConfigError(f"{where} takes {graph.input_size} px; set model.input_size to it")
    if tuple(graph.box_scales) != tuple(m.box_scales):
        raise ConfigError(
            f"{where} decodes boxes with scales {graph.box_scales}; set model.box_scales"
        )
    model = build_keras(graph, columns=tuple(range(m.num_classes + 1)))
    cs = graph.anchors_cs.astype(np.float32)
    corners = center_size_to_corners(cs)
    if corners.shape[0] != int(model.outputs[0].shape[1]):
        raise ModelError(
            f"{where}: {corners.shape[0]} anchors for {model.outputs[0].shape[1]} boxes"
        )
    return SSDModel(cfg, model, feature_map_sizes(graph), corners, cs)


def _extra_feature_maps(b: _Builder, m: ModelConfig, x, root: str, last: str) -> list:
    """The OD-API's extra stride-2 layers after the backbone (separable in SSDLite)."""
    lite = m.arch.startswith("ssdlite")
    feats = []
    for i, depth in enumerate(m.extra_depths, start=2):
        d = max(int(depth * m.depth_multiplier), 16)
        x = b.conv(x, d // 2, 1, 1, scope(root, f"{last}_1_Conv2d_{i}_1x1_{d // 2}"))
        name = scope(root, f"{last}_2_Conv2d_{i}_3x3_s2_{d}")
        if lite:
            x = b.dwconv(x, 3, 2, name + "_depthwise")
            x = b.conv(x, d, 1, 1, name)
        else:
            x = b.conv(x, d, 3, 2, name)
        feats.append(x)
    return feats


def _box_predictors(
    b: _Builder, m: ModelConfig, feats: list, per_loc: list[int], names: list[str]
) -> tuple[list, list]:
    """One box-encoding and one class head per feature map, reshaped to (anchors, width)."""
    n_cls = m.num_classes + 1
    lite = m.arch.startswith("ssdlite")
    boxes, classes = [], []
    for f, a, predictor in zip(feats, per_loc, names, strict=True):
        outs = []
        for head, width in (("BoxEncodingPredictor", 4), ("ClassPredictor", n_cls)):
            name = scope(predictor, head)
            fresh_cls = predictor.endswith("stride8") and head == "ClassPredictor"
            bias = _prior_bias(n_cls) if fresh_cls else "zeros"
            if lite:
                y = b.dwconv(f, m.head_kernel_size, 1, name + "_depthwise")
                y = layers.Conv2D(
                    a * width,
                    1,
                    padding="same",
                    kernel_regularizer=b.reg,
                    name=name,
                    kernel_initializer=keras.initializers.TruncatedNormal(stddev=0.03),
                    bias_initializer=bias,
                )(y)
            else:
                y = layers.Conv2D(
                    a * width,
                    m.head_kernel_size,
                    padding="same",
                    kernel_regularizer=b.reg,
                    name=name,
                    kernel_initializer=keras.initializers.TruncatedNormal(stddev=0.03),
                    bias_initializer=bias,
                )(f)
            outs.append(layers.Reshape((-1, width), name=scope(predictor, head + "_reshape"))(y))
        boxes.append(outs[0])
        classes.append(outs[1])
    return boxes, classes


def score_fn(cfg: SSDConfig):
    """The score converter (logits -> class scores incl. background) the config asks for."""
    import tensorflow as tf

    if cfg.model.score_converter == "softmax":
        return tf.nn.softmax
    return tf.sigmoid
