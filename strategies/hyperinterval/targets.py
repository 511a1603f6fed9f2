"""Target networks of HyperInterval: functional nets whose weights come from the hypernetwork.

Official code: gmum/HyperInterval@d42305d. Both take their parameters as a flat list (hypnettorch
order: weight, bias per layer) cut from the hypernet output by `split_flat`, and offer an ordinary
forward (one weight set) and a bounded forward over a weight box ``[lower, upper]`` returning logits
``(zL, zM, zU)``:

- `MLPTarget`: exact interval propagation (the official ``full_interval=True``).
- `CNNTarget`: 3×3 convolutions (padding 1) with ReLU and 2×2 max-pooling after each, then an MLP
  head. Bounds either by the official relaxed three-pass ordering (``reverse_predictions``, NOT a
  sound bound; `relaxed_three_pass`: in training the CE "middle" is the ordered middle, not the pass
  with the middle weights) or by exact interval propagation (`interval_conv2d`; clbench's
  ``cnn_bounds: ibp`` fix; max-pooling and ReLU are monotone, so bounds pass through them).
  Prediction always uses the ordinary pass with the middle weights, as the official
  ``calculate_accuracy`` (the same weights as lower, middle and upper).
  It is a small AlexNet-like net (official `VanillaNets/AlexNet.py`: 3×3 convolutions
  64-192-384-256-256, FC 4096-4096); batch-norm (the official ResNet-18 / optional AlexNet BN with
  batch statistics at test, ``bn_track_stats=False``) is not implemented.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, Protocol

import torch
import torch.nn.functional as F

from clbench.strategies.hyperinterval.interval import (
    Interval,
    interval_conv2d,
    interval_mlp,
    mlp_shapes,
    plain_mlp,
    relaxed_three_pass,
)

Params = Sequence[torch.Tensor]


class TargetNet(Protocol):
    """What the strategy needs from a target network."""

    shapes: list[torch.Size]

    def forward(self, x: torch.Tensor, params: Params) -> torch.Tensor: ...

    def bounds(self, x: torch.Tensor, lower: Params, middle: Params, upper: Params) -> Interval: ...


class MLPTarget:
    """Target MLP on flattened inputs, exact interval propagation."""

    def __init__(self, input_shape: Sequence[int], hidden: Sequence[int], n_out: int) -> None:
        n_in = 1
        for d in input_shape:
            n_in *= d
        self.shapes = mlp_shapes([n_in, *hidden, n_out])

    def forward(self, x: torch.Tensor, params: Params) -> torch.Tensor:
        return plain_mlp(x.flatten(1), params)

    def bounds(self, x: torch.Tensor, lower: Params, middle: Params, upper: Params) -> Interval:
        return interval_mlp(x.flatten(1), lower, middle, upper)


def cnn_feature_size(input_shape: Sequence[int], channels: Sequence[int]) -> int:
    """Flattened size after the conv blocks (each halves H and W, floor); 0 if it vanishes."""
    _c, h, w = input_shape
    for _ in channels:
        h, w = h // 2, w // 2
    return channels[-1] * h * w if channels else _c * h * w


class CNNTarget:
    """conv3×3 → ReLU → maxpool2 per entry of ``channels``, then an MLP head ``fc_hidden``."""

    def __init__(
        self,
        input_shape: Sequence[int],
        channels: Sequence[int],
        fc_hidden: Sequence[int],
        n_out: int,
        bounds: Literal["relaxed", "ibp"],
    ) -> None:
        if len(input_shape) != 3:
            raise ValueError(f"CNNTarget needs [C, H, W] inputs, got {tuple(input_shape)}")
        self.n_conv = len(channels)
        self.mode = bounds
        shapes: list[torch.Size] = []
        c_in = input_shape[0]
        for c_out in channels:
            shapes += [torch.Size((c_out, c_in, 3, 3)), torch.Size((c_out,))]
            c_in = c_out
        features = cnn_feature_size(input_shape, channels)
        self.shapes = shapes + mlp_shapes([features, *fc_hidden, n_out])

    def forward(self, x: torch.Tensor, params: Params) -> torch.Tensor:
        for k in range(self.n_conv):
            x = F.max_pool2d(F.relu(F.conv2d(x, params[2 * k], params[2 * k + 1], padding=1)), 2)
        return plain_mlp(x.flatten(1), params[2 * self.n_conv :])

    def bounds(self, x: torch.Tensor, lower: Params, middle: Params, upper: Params) -> Interval:
        if self.mode == "relaxed":  # official: three ordinary passes, partially sorted
            return relaxed_three_pass(
                self.forward(x, lower), self.forward(x, middle), self.forward(x, upper)
            )
        z: Interval = (x, x, x)
        for k in range(self.n_conv):
            w = (lower[2 * k], middle[2 * k], upper[2 * k])
            b = (lower[2 * k + 1], middle[2 * k + 1], upper[2 * k + 1])
            z = interval_conv2d(z, w, b, padding=1, relu=True)
            z = (F.max_pool2d(z[0], 2), F.max_pool2d(z[1], 2), F.max_pool2d(z[2], 2))
        head = slice(2 * self.n_conv, None)
        flat = (z[0].flatten(1), z[1].flatten(1), z[2].flatten(1))
        return interval_mlp(flat, lower[head], middle[head], upper[head])
