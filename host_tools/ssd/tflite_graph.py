"""A trainable Keras SSD rebuilt from an OD-API SSD TFLite export: its graph, weights and anchors.

Why: the best COCO reference here (TF2 SSD-MobileNetV2 FPNLite 320) comes only as a TFLite file;
no checkpoint or config of it is on hand. The file holds all a fine-tune needs: the ops (with
batch norm folded into the convolutions), their weights (int8 for a dynamic-range export,
dequantised here), and the anchors and box-coder scales of its ``TFLite_Detection_PostProcess``
op. So the Keras model is the file's graph op for op, with its weights, up to that op: box
encodings [B, N, 4] and class logits [B, N, C] (the input of the ``LOGISTIC`` op), and the class
predictor convolutions cut to the columns kept (background, person). A kernel the file shares
between ops (the weight-shared box predictor of every FPN level) stays one Keras variable.
Biases that are all zero (the depthwise halves of separable convolutions) are left out, as in
the model the file was exported from.

Ops handled: CONV_2D, DEPTHWISE_CONV_2D, ADD, PACK, RESHAPE, CONCATENATION, LOGISTIC (what the
OD API's SSD exports use, the FPN's nearest-neighbour upsampling included, which TF2 writes as
two PACKs and a RESHAPE). Any other op is refused with its name.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from edgedetect.errors import ModelError
from host_tools.ssd.keras_compat import keras

POSTPROCESS_OP = "TFLite_Detection_PostProcess"
SUPPORTED = {"CONV_2D", "DEPTHWISE_CONV_2D", "ADD", "PACK", "RESHAPE", "CONCATENATION", "LOGISTIC"}
# A full-int8 export's QUANTIZE / DEQUANTIZE ops change only the number format, not the values the
# float model sees, so they pass their input through.
PASS_THROUGH = frozenset({"QUANTIZE", "DEQUANTIZE"})
_ACTIVATIONS = {0: None, 1: "relu", 3: "relu6"}  # TFLite ActivationFunctionType NONE, RELU, RELU6


@dataclass(frozen=True)
class GraphOp:
    """One operator of the file: what it is, which tensors it reads and writes, its options."""

    index: int
    kind: str
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    options: dict[str, Any]


@dataclass
class SSDGraph:
    """What :func:`read_graph` finds in an SSD TFLite file."""

    path: Path
    ops: list[GraphOp]
    input_tensor: int
    input_size: int
    box_tensor: int  # input 0 of the postprocess op: box encodings [1, N, 4]
    logits_tensor: int  # the LOGISTIC op's input: class logits [1, N, C]
    anchors_cs: np.ndarray  # (N, 4) ycenter, xcenter, h, w
    box_scales: tuple[float, float, float, float]
    shapes: dict[int, tuple[int, ...]] = field(default_factory=dict)
    constants: dict[int, np.ndarray] = field(default_factory=dict)
    # float range an 8-bit activation tensor can hold; TF1 quantized graphs fold ReLU6 into it
    ranges: dict[int, tuple[float, float]] = field(default_factory=dict)

    @cached_property
    def producer(self) -> dict[int, GraphOp]:
        """The op that writes each tensor."""
        return {t: op for op in self.ops for t in op.outputs}


def read_graph(path: str | Path) -> SSDGraph:
    """Read the ops, shapes, constants and postprocess settings of an SSD TFLite file."""
    p = Path(path)
    if not p.is_file():
        raise ModelError(f"TFLite graph {p} not found; set model.graph to an SSD .tflite file")
    from tensorflow.lite.tools import flatbuffer_utils

    try:
        model = flatbuffer_utils.read_model(str(p))
    except Exception as exc:  # the flatbuffer reader raises assorted types on a bad file
        raise ModelError(f"{p} is not a readable TFLite model ({exc})") from exc
    graph = model.subgraphs[0]
    ops = [_graph_op(model, i, op) for i, op in enumerate(graph.operators)]
    post = [op for op in ops if op.kind == POSTPROCESS_OP]
    if len(post) != 1:
        raise ModelError(f"{p}: expected one {POSTPROCESS_OP} op, found {len(post)}")
    shapes = {
        i: tuple(int(d) for d in (t.shape if t.shape is not None else ()))
        for i, t in enumerate(graph.tensors)
    }
    constants = _constants(model)
    box_t, score_t, anchor_t = post[0].inputs[:3]
    producer = {t: op for op in ops for t in op.outputs}
    score_op = _source(producer, score_t)
    if score_op is None or score_op.kind != "LOGISTIC":
        raise ModelError(
            f"{p}: the class scores of {POSTPROCESS_OP} do not come from a LOGISTIC op"
        )
    inp = int(graph.inputs[0])
    return SSDGraph(
        path=p,
        ops=[op for op in ops if op.kind != POSTPROCESS_OP],
        input_tensor=inp,
        input_size=shapes[inp][1],
        box_tensor=box_t,
        logits_tensor=score_op.inputs[0],
        anchors_cs=constants[anchor_t].reshape(-1, 4),
        box_scales=_box_scales(bytes(graph.operators[post[0].index].customOptions)),
        shapes=shapes,
        constants=constants,
        ranges=_activation_ranges(graph, constants),
    )


def _source(
    producer: dict[int, GraphOp], tensor: int, through: frozenset[str] = PASS_THROUGH
) -> GraphOp | None:
    """The op that computes ``tensor``, looking through QUANTIZE / DEQUANTIZE (and ``through``)."""
    op = producer.get(tensor)
    while op is not None and op.kind in through:
        op = producer.get(op.inputs[0])
    return op


def _graph_op(model, index: int, op) -> GraphOp:
    from tensorflow.lite.python import schema_py_generated as schema

    code = model.operatorCodes[op.opcodeIndex]
    builtin = max(code.builtinCode, code.deprecatedBuiltinCode)
    names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    kind = names[builtin] if builtin != schema.BuiltinOperator.CUSTOM else code.customCode.decode()
    opts = op.builtinOptions
    options = {k: v for k, v in vars(opts).items() if not k.startswith("_")} if opts else {}
    ins = tuple(int(i) for i in op.inputs) if op.inputs is not None else ()
    return GraphOp(index, kind, ins, tuple(int(i) for i in op.outputs), options)


_DTYPES = {0: np.float32, 1: np.float16, 2: np.int32, 3: np.uint8, 9: np.int8}  # TensorType


def dequantize(q: np.ndarray, scales, zero_points, axis: int = 0) -> np.ndarray:
    """``(q - zero_point) * scale`` as float32, per tensor or per channel on ``axis``."""
    if scales is None or len(scales) == 0 or q.dtype in (np.float32, np.float16):
        return q.astype(np.float32)
    shape = [1] * q.ndim
    if len(scales) > 1:
        shape[axis] = len(scales)
    zero = np.asarray(zero_points, np.float32).reshape(shape)
    return (q.astype(np.float32) - zero) * np.asarray(scales, np.float32).reshape(shape)


def _constants(model) -> dict[int, np.ndarray]:
    """Every constant tensor of the file (one with data), dequantised to float32."""
    out = {}
    for i, t in enumerate(model.subgraphs[0].tensors):
        data = model.buffers[t.buffer].data
        if data is None or len(data) == 0 or t.type not in _DTYPES:
            continue
        q = np.frombuffer(bytes(data), _DTYPES[t.type]).reshape([int(d) for d in t.shape])
        quant = t.quantization
        if quant is None:
            out[i] = q.astype(np.float32)
        else:
            out[i] = dequantize(q, quant.scale, quant.zeroPoint, quant.quantizedDimension)
    return out


def _activation_ranges(graph, constants: dict[int, np.ndarray]) -> dict[int, tuple[float, float]]:
    """[low, high] in float of each per-tensor quantized uint8 / int8 activation."""
    out = {}
    for i, t in enumerate(graph.tensors):
        q = t.quantization
        if i in constants or t.type not in (3, 9) or q is None or q.scale is None:
            continue
        if len(q.scale) != 1:
            continue
        lo, hi = (0, 255) if t.type == 3 else (-128, 127)
        scale, zero = float(q.scale[0]), float(q.zeroPoint[0])
        out[i] = ((lo - zero) * scale, (hi - zero) * scale)
    return out


def _box_scales(custom_options: bytes) -> tuple[float, float, float, float]:
    """y, x, h, w scales of the postprocess op (its flexbuffer attributes)."""
    from flatbuffers import flexbuffers

    attrs = flexbuffers.Loads(custom_options)
    return tuple(float(attrs[k]) for k in ("y_scale", "x_scale", "h_scale", "w_scale"))  # type: ignore[return-value]


def _class_path(graph: SSDGraph) -> tuple[set[int], set[int]]:
    """The class predictor convolutions and the reshapes after them (logits <- concat <- ...)."""
    producer = graph.producer
    concat = _source(producer, graph.logits_tensor)
    if concat is None or concat.kind != "CONCATENATION":
        raise ModelError(f"{graph.path}: the class logits do not come from a CONCATENATION")
    reshapes = [_source(producer, t) for t in concat.inputs]
    convs = [_source(producer, r.inputs[0]) for r in reshapes if r and r.kind == "RESHAPE"]
    if len(convs) != len(reshapes) or any(c is None or c.kind != "CONV_2D" for c in convs):
        raise ModelError(f"{graph.path}: expected class predictor CONV_2D -> RESHAPE per layer")
    return {c.index for c in convs if c}, {r.index for r in reshapes if r}


class _Bias(keras.layers.Layer):
    """A trainable per-channel bias, apart from its kernel, which the file may share between ops."""

    def __init__(self, values: np.ndarray, **kwargs):
        super().__init__(**kwargs)
        self._values = values

    def build(self, input_shape):
        self.bias = self.add_weight(
            name="bias",
            shape=self._values.shape,
            initializer=keras.initializers.Constant(self._values),
        )
        super().build(input_shape)

    def call(self, x):
        return x + self.bias


class _GraphBuilder:
    """Turns the file's ops into Keras layers, one at a time, in the file's (topological) order."""

    def __init__(self, graph: SSDGraph, columns: tuple[int, ...]):
        self.graph = graph
        self.columns = columns
        self.class_convs, self.class_reshapes = _class_path(graph)
        self.width = graph.shapes[graph.logits_tensor][-1]  # class columns in the file (e.g. 91)
        self.layers: dict[tuple[str, int], keras.layers.Layer] = {}  # shared kernels and biases

    def _shared(self, key: tuple[str, int], make) -> keras.layers.Layer:
        if key not in self.layers:
            self.layers[key] = make()
        return self.layers[key]

    def _keep(self, channels: int) -> list[int]:
        per = channels // self.width
        return [a * self.width + c for a in range(per) for c in self.columns]

    def conv(self, op: GraphOp, x):
        """A convolution: its (maybe shared) kernel, its bias unless all zero, its activation."""
        b = self.graph.constants[op.inputs[2]]
        if op.index in self.class_convs:
            b = b[self._keep(b.shape[0])]
        x = self._shared(("kernel", op.inputs[1]), lambda: self._kernel_layer(op))(x)
        if np.any(b != 0):
            x = self._shared(("bias", op.inputs[2]), lambda: _Bias(b, name=f"b{op.inputs[2]}"))(x)
        return self.activation(op, x)

    def _kernel_layer(self, op: GraphOp) -> keras.layers.Layer:
        w, o = self.graph.constants[op.inputs[1]], op.options
        padding = "same" if o["padding"] == 0 else "valid"
        strides = (o["strideH"], o["strideW"])
        if op.kind == "DEPTHWISE_CONV_2D":  # [1, kh, kw, C*m] -> [kh, kw, C, m]
            kernel = w[0].reshape(w.shape[1], w.shape[2], -1, o["depthMultiplier"])
            return keras.layers.DepthwiseConv2D(
                kernel.shape[:2],
                strides,
                padding,
                depth_multiplier=kernel.shape[3],
                use_bias=False,
                depthwise_initializer=keras.initializers.Constant(kernel),
                name=f"w{op.inputs[1]}_depthwise",
            )
        kernel = np.transpose(w, (1, 2, 3, 0))  # [out, kh, kw, in] -> [kh, kw, in, out]
        if op.index in self.class_convs:
            kernel = kernel[..., self._keep(kernel.shape[-1])]
        return keras.layers.Conv2D(
            kernel.shape[-1],
            kernel.shape[:2],
            strides,
            padding,
            use_bias=False,
            kernel_initializer=keras.initializers.Constant(kernel),
            name=f"w{op.inputs[1]}_conv",
        )

    def activation(self, op: GraphOp, x):
        act = _ACTIVATIONS.get(op.options.get("fusedActivationFunction", 0), "unknown")
        if act == "unknown":
            raise ModelError(f"{self.graph.path}: op {op.index} has an unsupported activation")
        low_high = self.graph.ranges.get(op.outputs[0])
        if act is None and low_high and abs(low_high[0]) < 1e-6:  # a ReLU(6) folded into uint8
            return keras.layers.ReLU(low_high[1], name=f"op{op.index}_range_relu")(x)
        if act is None:
            return x
        return keras.layers.ReLU(6.0 if act == "relu6" else None, name=f"op{op.index}_{act}")(x)

    def apply(self, op: GraphOp, values: dict[int, Any]):
        import tensorflow as tf

        name = f"op{op.index}_{op.kind.lower()}"
        if op.kind in ("CONV_2D", "DEPTHWISE_CONV_2D"):
            return self.conv(op, values[op.inputs[0]])
        if op.kind == "ADD":
            x = keras.layers.Add(name=name)([values[i] for i in op.inputs])
            return self.activation(op, x)
        if op.kind == "PACK":
            axis = op.options["axis"]
            stack = keras.layers.Lambda(lambda xs: tf.stack(xs, axis=axis), name=name)
            return stack([values[i] for i in op.inputs])
        if op.kind == "RESHAPE":
            out = self.graph.shapes[op.outputs[0]]
            target = (-1, len(self.columns)) if op.index in self.class_reshapes else out[1:]
            return keras.layers.Reshape(target, name=name)(values[op.inputs[0]])
        if op.kind == "CONCATENATION":
            x = keras.layers.Concatenate(axis=op.options["axis"], name=name)(
                [values[i] for i in op.inputs]
            )
            return self.activation(op, x)
        raise ModelError(
            f"{self.graph.path}: op {op.index} is {op.kind}, which host_tools cannot rebuild "
            f"(supported: {', '.join(sorted(SUPPORTED))})"
        )


def build_keras(graph: SSDGraph, columns: tuple[int, ...] = (0, 1)) -> keras.Model:
    """The file's graph as a Keras model: [-1, 1] image -> (box encodings, class logits)."""
    builder = _GraphBuilder(graph, columns)
    size = graph.input_size
    inp = keras.Input((size, size, 3), name="normalized_input_image_tensor")
    values: dict[int, Any] = {graph.input_tensor: inp}
    for op in graph.ops:
        if op.kind == "LOGISTIC":
            continue
        if op.kind in PASS_THROUGH:
            if op.inputs[0] in values:  # not the scores after the (skipped) LOGISTIC
                values[op.outputs[0]] = values[op.inputs[0]]
            continue
        values[op.outputs[0]] = builder.apply(op, values)
    box = keras.layers.Activation("linear", name="box_encodings")(values[graph.box_tensor])
    logits = keras.layers.Activation("linear", name="class_logits")(values[graph.logits_tensor])
    return keras.Model(inp, [box, logits], name=graph.path.stem)


def feature_map_sizes(graph: SSDGraph) -> list[tuple[int, int]]:
    """(h, w) of each box predictor layer's map, in anchor order."""
    producer = graph.producer
    concat = _source(producer, graph.box_tensor, PASS_THROUGH | {"RESHAPE"})  # TF1: concat, reshape
    if concat is None:
        raise ModelError(f"{graph.path}: no op computes the box encodings")
    sizes = []
    for t in concat.inputs:
        reshape = _source(producer, t)
        shape = graph.shapes[reshape.inputs[0]] if reshape else ()
        sizes.append((shape[1], shape[2]))
    return sizes
