"""SSD anchors, identical to the OD API's ``ssd_anchor_generator`` (MultipleGridAnchorGenerator).

Written in numpy because the anchors are constants of the model: they are baked into the exported
TFLite graph and the training targets, and numpy keeps them testable without TensorFlow.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class AnchorConfig:
    """The OD-API ``ssd_anchor_generator`` fields (defaults = the pedestrian SSDLite graph's)."""

    num_layers: int = 6
    min_scale: float = 0.2
    max_scale: float = 0.95
    aspect_ratios: tuple[float, ...] = (1.0, 2.0, 0.5, 3.0, 0.3333)
    interpolated_scale_aspect_ratio: float = 1.0
    reduce_boxes_in_lowest_layer: bool = True
    base_anchor_size: tuple[float, float] = (1.0, 1.0)
    scales: tuple[float, ...] = field(default_factory=tuple)  # explicit scales override min/max
    # (scale, aspect_ratio) of each anchor of an extra lowest layer on the backbone's stride-8 map
    # (not in the OD API): people 12-40 px tall at a 300 input, under the stride-16 layer's 0.1.
    stride8_anchors: tuple[tuple[float, float], ...] = field(default_factory=tuple)

    def layer_specs(self) -> list[list[tuple[float, float]]]:
        """Per layer, (scale, aspect_ratio) of each anchor at one grid location, in OD-API order.

        With ``stride8_anchors`` their layer comes first and the ``num_layers`` generated ones
        follow unchanged, so a model with the extra layer keeps every anchor of one without it.
        """
        return ([list(self.stride8_anchors)] if self.stride8_anchors else []) + self._grid_specs()

    def _grid_specs(self) -> list[list[tuple[float, float]]]:
        """The OD-API ``ssd_anchor_generator`` layers (``num_layers`` of them)."""
        if self.scales:
            scales = list(self.scales)
            if len(scales) != self.num_layers:
                raise ValueError(
                    f"anchor scales has {len(scales)} entries for {self.num_layers} layers"
                )
        elif self.num_layers == 1:
            scales = [self.min_scale]
        else:
            step = (self.max_scale - self.min_scale) / (self.num_layers - 1)
            scales = [self.min_scale + step * i for i in range(self.num_layers)]
        scales = scales + [1.0]
        specs: list[list[tuple[float, float]]] = []
        for layer in range(self.num_layers):
            scale, scale_next = scales[layer], scales[layer + 1]
            if layer == 0 and self.reduce_boxes_in_lowest_layer:
                specs.append([(0.1, 1.0), (scale, 2.0), (scale, 0.5)])
                continue
            layer_specs = [(scale, float(ar)) for ar in self.aspect_ratios]
            if self.interpolated_scale_aspect_ratio > 0.0:
                layer_specs.append(
                    (math.sqrt(scale * scale_next), self.interpolated_scale_aspect_ratio)
                )
            specs.append(layer_specs)
        return specs

    def anchors_per_location(self) -> list[int]:
        return [len(s) for s in self.layer_specs()]

    @classmethod
    def from_dict(cls, d: dict) -> AnchorConfig:
        d = dict(d)
        for key in ("aspect_ratios", "base_anchor_size", "scales"):
            if key in d:
                d[key] = tuple(float(v) for v in d[key])
        if "stride8_anchors" in d:
            pairs = d["stride8_anchors"]
            if not all(isinstance(a, (list, tuple)) and len(a) == 2 for a in pairs):
                raise ValueError("anchors.stride8_anchors: a list of [scale, aspect_ratio] pairs")
            d["stride8_anchors"] = tuple((float(a), float(b)) for a, b in pairs)
        return cls(**d)


def generate_anchors(
    config: AnchorConfig,
    feature_map_sizes: list[tuple[int, int]],
    image_size: tuple[int, int] = (300, 300),
) -> np.ndarray:
    """All anchors as (N, 4) float32 ``ymin, xmin, ymax, xmax``, normalised.

    Ordered by layer, then y, x and anchor. ``image_size`` is (height, width); a non-square image
    shrinks the base anchor on its long side, as the OD API does, so anchors stay square in pixels.
    """
    specs = config.layer_specs()
    if len(feature_map_sizes) != len(specs):
        raise ValueError(f"{len(feature_map_sizes)} feature maps for {len(specs)} anchor layers")
    im_h, im_w = image_size
    min_side = min(im_h, im_w)
    base_h = config.base_anchor_size[0] * min_side / im_h
    base_w = config.base_anchor_size[1] * min_side / im_w
    out = []
    for (fh, fw), layer in zip(feature_map_sizes, specs, strict=True):
        scales = np.array([s for s, _ in layer], np.float64)
        ratios = np.sqrt(np.array([a for _, a in layer], np.float64))
        heights = scales / ratios * base_h
        widths = scales * ratios * base_w
        stride_y, stride_x = 1.0 / fh, 1.0 / fw
        yc = (np.arange(fh) * stride_y + 0.5 * stride_y)[:, None, None]
        xc = (np.arange(fw) * stride_x + 0.5 * stride_x)[None, :, None]
        yc, xc = (
            np.broadcast_to(yc, (fh, fw, len(layer))),
            np.broadcast_to(xc, (fh, fw, len(layer))),
        )
        h = np.broadcast_to(heights, (fh, fw, len(layer)))
        w = np.broadcast_to(widths, (fh, fw, len(layer)))
        boxes = np.stack([yc - 0.5 * h, xc - 0.5 * w, yc + 0.5 * h, xc + 0.5 * w], axis=-1)
        out.append(boxes.reshape(-1, 4))
    return np.concatenate(out, axis=0).astype(np.float32)


def corners_to_center_size(boxes: np.ndarray) -> np.ndarray:
    """(N, 4) ``ymin, xmin, ymax, xmax`` -> (N, 4) ``ycenter, xcenter, height, width``."""
    boxes = np.asarray(boxes, np.float32)
    h = boxes[:, 2] - boxes[:, 0]
    w = boxes[:, 3] - boxes[:, 1]
    return np.stack([boxes[:, 0] + h / 2, boxes[:, 1] + w / 2, h, w], axis=1).astype(np.float32)


def center_size_to_corners(boxes: np.ndarray) -> np.ndarray:
    """The inverse: (N, 4) ``ycenter, xcenter, height, width`` -> ``ymin, xmin, ymax, xmax``."""
    cs = np.asarray(boxes, np.float32)
    half = cs[:, 2:] / 2
    return np.concatenate([cs[:, :2] - half, cs[:, :2] + half], axis=1)


def feature_map_sizes_for(input_size: int, num_layers: int = 6) -> list[tuple[int, int]]:
    """Feature-map sizes of an SSD: stride-16 and -32 base maps then stride-2 extras (TF SAME)."""
    sizes = []
    s = math.ceil(input_size / 16)
    for _ in range(num_layers):
        sizes.append((s, s))
        s = math.ceil(s / 2)
    return sizes
