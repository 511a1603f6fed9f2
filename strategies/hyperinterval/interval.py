"""Interval arithmetic for HyperInterval (Krukowski et al. 2024): pure tensor code.

File names below are in the official code gmum/HyperInterval@d42305d.

- `hypernet_ibp`: interval bound propagation (centre/radius form) of an embedding box through
  an MLP hypernetwork (ReLU hidden layers, linear output), as in the official `HMLP_IBP`
  (`IntervalNets/hmlp_ibp_wo_nesting.py`). Returns the *middle* (the ReLU midpoint, not
  ``H(e)``) and the radius.
- `interval_linear` / `interval_mlp`: a target MLP whose weights lie in a box, run with exact
  interval propagation of the inputs (`IntervalNets/interval_modules.py`). The official
  `IntervalLinear` asserts non-negative inputs; here a mixed-sign input interval is split into
  its positive and negative parts, which is exact for point inputs (the first layer) and for
  non-negative inputs (after a ReLU), and sound otherwise, so normalised (zero-mean) pixels are
  allowed.
- `interval_conv2d`: the same exact propagation for a convolution (clbench's `cnn_bounds: ibp`
  fix; the official CNNs are never run as interval nets).
- `relaxed_three_pass`: the official CNN "reverse_predictions" ordering of three ordinary forward
  passes (`Utils/handy_functions.py`); NOT a sound bound (see its docstring).
- `worst_case_logits`, `entropy`, `interval_intersection`: the IBP loss input, the class-IL
  task-selection score and the universal embedding (`loss_functions.py::IBP_Loss`, `entropy.py`,
  `Utils/handy_functions.py::intersection_of_embeds`).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F

Interval = tuple[torch.Tensor, torch.Tensor, torch.Tensor]  # (lower, middle, upper)


def hypernet_ibp(
    layers: Sequence[tuple[torch.Tensor, torch.Tensor]], centre: torch.Tensor, radius: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Propagate the box ``centre ± radius`` ([B, M]) through an MLP; return (middle, radius).

    Per layer: ``h = W h + b``, ``s = |W| s``; hidden layers then take ``l = ReLU(h − s)``,
    ``u = ReLU(h + s)`` and continue with ``h = (u + l)/2``, ``s = (u − l)/2``.
    """
    h, s = centre, radius
    last = len(layers) - 1
    for k, (weight, bias) in enumerate(layers):
        h = F.linear(h, weight, bias)
        s = F.linear(s, weight.abs())
        if k < last:
            lo, up = F.relu(h - s), F.relu(h + s)
            h, s = (up + lo) / 2, (up - lo) / 2
    return h, s


Op = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # bilinear x, W -> x·W (no bias)


def _linear_op(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    return x @ w.T


def _nonneg_bounds(
    xl: torch.Tensor, xu: torch.Tensor, wl: torch.Tensor, wu: torch.Tensor, op: Op = _linear_op
) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact bounds of ``op(x, W)`` over ``x ∈ [xl, xu]`` (xl ≥ 0) and ``W ∈ [wl, wu]``.

    ``op`` is bilinear with non-negative mixing of the products (matmul, convolution), so every
    product ``x_i·W_j`` is extremal at a corner: lower = xl·W⁺_l + xu·W⁻_l, upper likewise.
    """
    if xl is xu:  # point input: two products instead of four
        return op(xl, wl), op(xu, wu)
    lower = op(xl, wl.clamp(min=0)) + op(xu, wl.clamp(max=0))
    upper = op(xu, wu.clamp(min=0)) + op(xl, wu.clamp(max=0))
    return lower, upper


def _interval_affine(
    x: Interval, weight: Interval, bias: Interval, op: Op, bias_view: tuple[int, ...]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Bounds of ``op(x, W) + b``: exact for ``xl ≥ 0`` or ``xl == xu``, sound otherwise."""
    xl, _xm, xu = x
    wl, _wm, wu = weight
    bl, _bm, bu = bias
    if bool((xl >= 0).all()):  # the usual case (pixels in [0, 1], post-ReLU): exact
        zl, zu = _nonneg_bounds(xl, xu, wl, wu, op)
    else:
        pos_l, pos_u = _nonneg_bounds(xl.clamp(min=0), xu.clamp(min=0), wl, wu, op)
        # negative part: x⁻ = max(−x, 0) ∈ [(−xu)₊, (−xl)₊]; contributes −W·x⁻
        neg_l, neg_u = _nonneg_bounds((-xu).clamp(min=0), (-xl).clamp(min=0), wl, wu, op)
        zl, zu = pos_l - neg_u, pos_u - neg_l
    return zl + bl.view(bias_view), zu + bu.view(bias_view)


def _relu3(z: Interval) -> Interval:
    return F.relu(z[0]), F.relu(z[1]), F.relu(z[2])


def interval_linear(x: Interval, weight: Interval, bias: Interval, relu: bool = False) -> Interval:
    """One interval linear layer: ``x`` = (xl, xm, xu) [B, in], weights [out, in], bias [out].

    Middle: ``xm·Wᵀ + b``. Bounds: exact for ``xl ≥ 0`` or ``xl == xu``; sound otherwise.
    """
    zl, zu = _interval_affine(x, weight, bias, _linear_op, (-1,))
    z = (zl, F.linear(x[1], weight[1], bias[1]), zu)
    return _relu3(z) if relu else z


def interval_conv2d(
    x: Interval, weight: Interval, bias: Interval, padding: int, relu: bool = False
) -> Interval:
    """One interval convolution (stride 1): ``x`` [B, C, H, W], weights [O, C, k, k], bias [O].

    The same corner argument as `interval_linear` (a convolution is a linear map with shared
    weights, each output a sum of input·weight products), so the bounds are exact per product
    and sound for the layer.
    """

    def op(inp: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        return F.conv2d(inp, w, padding=padding)

    zl, zu = _interval_affine(x, weight, bias, op, (1, -1, 1, 1))
    z = (zl, F.conv2d(x[1], weight[1], bias[1], padding=padding), zu)
    return _relu3(z) if relu else z


def split_flat(flat: torch.Tensor, shapes: Sequence[torch.Size]) -> list[torch.Tensor]:
    """Cut a flat parameter vector into tensors of ``shapes`` (hypnettorch order)."""
    out, start = [], 0
    for shape in shapes:
        n = int(torch.Size(shape).numel())
        out.append(flat[start : start + n].view(shape))
        start += n
    if start != flat.numel():
        raise ValueError(f"{flat.numel()} parameters for shapes totalling {start}")
    return out


def mlp_shapes(sizes: Sequence[int]) -> list[torch.Size]:
    """Parameter shapes of an MLP with layer widths ``sizes`` (weight, bias per layer)."""
    shapes = []
    for fan_in, fan_out in itertools.pairwise(sizes):
        shapes += [torch.Size((fan_out, fan_in)), torch.Size((fan_out,))]
    return shapes


def interval_mlp(
    x: torch.Tensor | Interval,
    lower: Sequence[torch.Tensor],
    middle: Sequence[torch.Tensor],
    upper: Sequence[torch.Tensor],
) -> Interval:
    """Target MLP (ReLU hidden layers) with weight box ``[lower, upper]``.

    ``x``: point inputs, or an input interval (xl, xm, xu) such as a CNN's flattened features.
    Parameters are lists ``[W1, b1, W2, b2, ...]``. Returns logits (zl, zm, zu).
    """
    z: Interval = x if isinstance(x, tuple) else (x, x, x)
    n_layers = len(middle) // 2
    for k in range(n_layers):
        w = (lower[2 * k], middle[2 * k], upper[2 * k])
        b = (lower[2 * k + 1], middle[2 * k + 1], upper[2 * k + 1])
        z = interval_linear(z, w, b, relu=k < n_layers - 1)
    return z


def plain_mlp(x: torch.Tensor, params: Sequence[torch.Tensor]) -> torch.Tensor:
    """The same MLP with one weight set (``[W1, b1, ...]``)."""
    n_layers = len(params) // 2
    for k in range(n_layers):
        x = F.linear(x, params[2 * k], params[2 * k + 1])
        if k < n_layers - 1:
            x = F.relu(x)
    return x


def relaxed_three_pass(pl: torch.Tensor, pm: torch.Tensor, pu: torch.Tensor) -> Interval:
    """Official CNN bounds from three ordinary passes ``f(x; θ^L), f(x; θ), f(x; θ^U)``.

    Official ``Utils/handy_functions.py::reverse_predictions``: ``a = min(pL, pM)``,
    ``b = max(pL, pM)``, returns ``(a, min(b, pU), max(b, pU))``. This is NOT a sound bound: the
    outputs of weights inside the box are not bounded by the outputs at its two corners. It is not
    even a full sort of the three passes: ``lower ≤ upper`` and ``middle ≤ upper`` always hold, but
    ``lower ≤ middle`` fails where ``pU`` is the smallest of the three (the middle is then ``pU``).
    """
    a = torch.minimum(pl, pm)
    b = torch.maximum(pl, pm)
    return a, torch.minimum(b, pu), torch.maximum(b, pu)


def worst_case_logits(zl: torch.Tensor, zu: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """IBP worst case: the lower bound for the true class, upper bounds for all others."""
    true = F.one_hot(y, zl.shape[1]).bool()
    return torch.where(true, zl, zu)


def entropy(logits: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
    """Per-row ``−Σ_j w_j p_j log p_j`` with ``p = softmax(logits)`` (w = 1: vanilla)."""
    logp = torch.log_softmax(logits, dim=1)
    terms = logp.exp() * logp
    if weight is not None:
        terms = terms * weight
    return -torch.nan_to_num(terms, nan=0.0).sum(1)


def interval_intersection(
    centres: torch.Tensor, radii: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Intersection of boxes ``centres ± radii`` ([T, M]); returns (centre, radius, empty mask).

    Where a coordinate's intersection is empty (u* < l*) both ends are set to the midpoint, as
    in the official ``calculate_interval_intersection`` (radius 0 there).
    """
    lo = (centres - radii).max(0).values
    up = (centres + radii).min(0).values
    empty = up < lo
    mid = (lo + up) / 2
    lo = torch.where(empty, mid, lo)
    up = torch.where(empty, mid, up)
    return (lo + up) / 2, (up - lo) / 2, empty
