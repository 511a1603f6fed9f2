"""Batched, on-device, seeded data augmentation of normalised float batches.

Every function takes a batch ``x`` already normalised as `StreamData.make_batch` forms it
(``[B, C, H, W]`` images or ``[B, D]`` vectors), draws all per-sample random parameters as tensors
from a `torch.Generator` (on the CPU, then moved to ``x.device``: the same generator state gives
the same output on any device), and never loops over samples in Python. Image ops de-normalise to
``[0, 1]`` pixels with the dataset's mean/std, apply the op, and normalise back.

Policies (`build_augment`):

- ``autoaugment``: the AutoAugment CIFAR-10 policy (Cubuk et al., CVPR 2019; the 25 sub-policies
  and magnitude bins of ``torchvision.transforms.AutoAugment(AutoAugmentPolicy.CIFAR10)``), which
  the View-Batch paper uses for its strong views (Kang et al., CVPR 2025, Alg. 1). Each sample
  draws one sub-policy; each of its two ops fires with its own probability; signed magnitudes get
  a random sign. Equalize is histogram equalisation per channel over 256 levels; geometric ops
  fill with black, as PIL does.
- ``light``: for small grey images (8x8 digits, 28x28 MNIST-like), where AutoAugment's colour ops
  are meaningless: random translation up to 1/8 of the side, rotation up to ±15°, brightness and
  contrast factors in [0.8, 1.2], and one cutout square of side ¼ (each with probability 1 except
  cutout, 0.5). A documented clbench choice, not from the paper.
- ``vector``: for ``[B, D]`` features: Gaussian noise (σ = 0.1 in normalised units) and feature
  dropout (p = 0.1). A clbench choice.
- ``auto``: ``autoaugment`` for images with 3 channels, ``light`` for other images, ``vector``
  for vectors.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Literal

import torch
import torch.nn.functional as F

AugmentFn = Callable[[torch.Tensor, torch.Generator], torch.Tensor]
Policy = Literal["auto", "autoaugment", "light", "vector"]

# AutoAugment CIFAR-10 policy: ((op, probability, magnitude bin), (op, probability, magnitude bin))
CIFAR10_POLICY: tuple[tuple[tuple[str, float, int | None], ...], ...] = (
    (("Invert", 0.1, None), ("Contrast", 0.2, 6)),
    (("Rotate", 0.7, 2), ("TranslateX", 0.3, 9)),
    (("Sharpness", 0.8, 1), ("Sharpness", 0.9, 3)),
    (("ShearY", 0.5, 8), ("TranslateY", 0.7, 9)),
    (("AutoContrast", 0.5, None), ("Equalize", 0.9, None)),
    (("ShearY", 0.2, 7), ("Posterize", 0.3, 7)),
    (("Color", 0.4, 3), ("Brightness", 0.6, 7)),
    (("Sharpness", 0.3, 9), ("Brightness", 0.7, 9)),
    (("Equalize", 0.6, None), ("Equalize", 0.5, None)),
    (("Contrast", 0.6, 7), ("Sharpness", 0.6, 5)),
    (("Color", 0.7, 7), ("TranslateX", 0.5, 8)),
    (("Equalize", 0.3, None), ("AutoContrast", 0.4, None)),
    (("TranslateY", 0.4, 3), ("Sharpness", 0.2, 6)),
    (("Brightness", 0.9, 6), ("Color", 0.2, 8)),
    (("Solarize", 0.5, 2), ("Invert", 0.0, None)),
    (("Equalize", 0.2, None), ("AutoContrast", 0.6, None)),
    (("Equalize", 0.2, None), ("Equalize", 0.6, None)),
    (("Color", 0.9, 9), ("Equalize", 0.6, None)),
    (("AutoContrast", 0.8, None), ("Solarize", 0.2, 8)),
    (("Brightness", 0.1, 3), ("Color", 0.7, 0)),
    (("Solarize", 0.4, 5), ("AutoContrast", 0.9, None)),
    (("TranslateY", 0.9, 9), ("TranslateY", 0.7, 9)),
    (("AutoContrast", 0.9, None), ("Solarize", 0.8, 3)),
    (("Equalize", 0.8, None), ("Invert", 0.1, None)),
    (("TranslateY", 0.7, 9), ("AutoContrast", 0.9, None)),
)
_SIGNED = {"ShearX", "ShearY", "TranslateX", "TranslateY", "Rotate"}
_SIGNED |= {"Brightness", "Color", "Contrast", "Sharpness"}


def _magnitude(op: str, bin_: int | None, size: int) -> float:
    """torchvision's AutoAugment magnitude of ``op`` at bin ``bin_`` (10 bins)."""
    if bin_ is None:
        return 0.0
    frac = bin_ / 9
    if op in ("ShearX", "ShearY"):
        return 0.3 * frac
    if op in ("TranslateX", "TranslateY"):
        return 150.0 / 331.0 * size * frac  # pixels
    if op == "Rotate":
        return 30.0 * frac  # degrees
    if op in ("Brightness", "Color", "Contrast", "Sharpness"):
        return 0.9 * frac
    if op == "Posterize":
        return float(8 - round(bin_ / 2.25))  # bits kept: 8, 8, 7, 7, 6, 6, 5, 5, 4, 4
    if op == "Solarize":
        return 1.0 - frac  # threshold in [0, 1]
    return 0.0


def _uniform(n: int, generator: torch.Generator, low: float, high: float) -> torch.Tensor:
    return torch.rand(n, generator=generator) * (high - low) + low


def _affine(x: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    """Per-sample affine warp (``theta``: [B, 2, 3] in normalised coordinates), black fill."""
    grid = F.affine_grid(theta.to(x.dtype), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def _rotation_translation(
    angle_deg: torch.Tensor, tx_px: torch.Tensor, ty_px: torch.Tensor, h: int, w: int
) -> torch.Tensor:
    a = angle_deg * math.pi / 180
    cos, sin = torch.cos(a), torch.sin(a)
    theta = torch.zeros(angle_deg.shape[0], 2, 3)
    theta[:, 0, 0], theta[:, 0, 1], theta[:, 1, 0], theta[:, 1, 1] = cos, -sin, sin, cos
    theta[:, 0, 2] = -2 * tx_px / w  # output(p) = input(p - t): shift content by +t pixels
    theta[:, 1, 2] = -2 * ty_px / h
    return theta


def _grey(x: torch.Tensor) -> torch.Tensor:
    if x.shape[1] != 3:
        return x.mean(1, keepdim=True).expand_as(x)
    w = torch.tensor([0.299, 0.587, 0.114], device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    return (x * w).sum(1, keepdim=True).expand_as(x)


def _blend(x: torch.Tensor, other: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    f = factor.view(-1, *([1] * (x.dim() - 1))).to(x)
    return (other + f * (x - other)).clamp(0, 1)


def _equalize(x: torch.Tensor) -> torch.Tensor:
    """Histogram equalisation per sample and channel over 256 levels (as PIL's ImageOps)."""
    b, c, h, w = x.shape
    q = (x * 255).round().clamp(0, 255).long().view(b * c, h * w)
    hist = torch.zeros(b * c, 256, device=x.device).scatter_add_(
        1, q, torch.ones_like(q, dtype=torch.float32)
    )
    cdf = hist.cumsum(1)
    first = cdf.gather(1, (hist > 0).float().argmax(1, keepdim=True))  # count at lowest level
    denom = (h * w - first).clamp_min(1)
    lut = ((cdf - first) / denom).clamp(0, 1)
    flat = (hist > 0).sum(1, keepdim=True) <= 1  # constant channel: unchanged
    out = torch.where(flat, q.float() / 255, lut.gather(1, q))
    return out.view(b, c, h, w).to(x.dtype)


def _sharpness(x: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    k = torch.tensor([[1.0, 1.0, 1.0], [1.0, 5.0, 1.0], [1.0, 1.0, 1.0]], device=x.device) / 13
    c = x.shape[1]
    smooth = F.conv2d(
        F.pad(x, (1, 1, 1, 1), mode="replicate"), k.to(x).expand(c, 1, 3, 3), groups=c
    )
    return _blend(x, smooth, factor)


def _apply_op(
    op: str, x: torch.Tensor, mag: torch.Tensor, generator: torch.Generator
) -> torch.Tensor:
    """Apply AutoAugment op ``op`` with per-sample magnitudes ``mag`` (signed) to pixels x."""
    n, _, h, w = x.shape
    dev = x.device
    if op in ("ShearX", "ShearY", "TranslateX", "TranslateY", "Rotate"):
        if op == "Rotate":
            theta = _rotation_translation(mag, torch.zeros(n), torch.zeros(n), h, w)
        else:
            theta = torch.eye(2, 3).repeat(n, 1, 1)
            if op == "ShearX":
                theta[:, 0, 1] = mag
            elif op == "ShearY":
                theta[:, 1, 0] = mag
            elif op == "TranslateX":
                theta[:, 0, 2] = -2 * mag / w
            else:
                theta[:, 1, 2] = -2 * mag / h
        return _affine(x, theta.to(dev))
    m = mag.to(dev)
    if op == "Brightness":
        return _blend(x, torch.zeros_like(x), 1 + m)
    if op == "Color":
        return _blend(x, _grey(x), 1 + m)
    if op == "Contrast":
        mean = _grey(x).mean(dim=(1, 2, 3), keepdim=True).expand_as(x)
        return _blend(x, mean, 1 + m)
    if op == "Sharpness":
        return _sharpness(x, 1 + m)
    if op == "Posterize":
        step = (2.0 ** (8 - m)).view(-1, 1, 1, 1)
        return torch.floor(x * 255 / step) * step / 255
    if op == "Solarize":
        return torch.where(x >= m.view(-1, 1, 1, 1), 1 - x, x)
    if op == "AutoContrast":
        lo = x.amin(dim=(2, 3), keepdim=True)
        hi = x.amax(dim=(2, 3), keepdim=True)
        scale = torch.where(hi > lo, 1 / (hi - lo).clamp_min(1e-6), torch.ones_like(hi))
        return torch.where(hi > lo, (x - lo) * scale, x).clamp(0, 1)
    if op == "Equalize":
        return _equalize(x)
    if op == "Invert":
        return 1 - x
    raise ValueError(f"unknown op {op}")


def autoaugment(x01: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """AutoAugment (CIFAR-10 policy) on ``[0, 1]`` pixels ``[B, C, H, W]``."""
    n = x01.shape[0]
    size = x01.shape[-1]
    choice = torch.randint(len(CIFAR10_POLICY), (n,), generator=generator)
    for slot in range(2):
        fire = torch.rand(n, generator=generator)
        sign = torch.where(torch.rand(n, generator=generator) < 0.5, -1.0, 1.0)
        ops = {sub[slot][0] for sub in CIFAR10_POLICY}
        for op in sorted(ops):
            prob = torch.zeros(len(CIFAR10_POLICY))
            mag = torch.zeros(len(CIFAR10_POLICY))
            for i, sub in enumerate(CIFAR10_POLICY):
                name, p, bin_ = sub[slot]
                if name == op:
                    prob[i], mag[i] = p, _magnitude(name, bin_, size)
            rows = (fire < prob[choice]).nonzero().flatten()
            if rows.numel() == 0:
                continue
            m = mag[choice[rows]] * (sign[rows] if op in _SIGNED else 1.0)
            rows_d = rows.to(x01.device)
            x01 = x01.index_copy(0, rows_d, _apply_op(op, x01[rows_d], m, generator))
    return x01


def light(x01: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """The light policy for small grey images, on ``[0, 1]`` pixels ``[B, C, H, W]``."""
    n, _, h, w = x01.shape
    dev = x01.device
    shift = max(1, h // 8)
    tx = torch.randint(-shift, shift + 1, (n,), generator=generator).float()
    ty = torch.randint(-shift, shift + 1, (n,), generator=generator).float()
    angle = _uniform(n, generator, -15.0, 15.0)
    x01 = _affine(x01, _rotation_translation(angle, tx, ty, h, w).to(dev))
    bright = _uniform(n, generator, 0.8, 1.2).to(dev)
    contrast = _uniform(n, generator, 0.8, 1.2).to(dev)
    x01 = _blend(x01, torch.zeros_like(x01), bright)
    mean = x01.mean(dim=(1, 2, 3), keepdim=True).expand_as(x01)
    x01 = _blend(x01, mean, contrast)
    side = max(1, h // 4)
    cy = torch.randint(0, h, (n,), generator=generator).to(dev).view(-1, 1, 1)
    cx = torch.randint(0, w, (n,), generator=generator).to(dev).view(-1, 1, 1)
    on = (torch.rand(n, generator=generator) < 0.5).to(dev).view(-1, 1, 1)
    yy = torch.arange(h, device=dev).view(1, -1, 1)
    xx = torch.arange(w, device=dev).view(1, 1, -1)
    hole = on & ((yy - cy).abs() <= side // 2) & ((xx - cx).abs() <= side // 2)
    return x01.masked_fill(hole.unsqueeze(1), 0.0)


def vector(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Gaussian noise (σ 0.1) and feature dropout (p 0.1) on normalised ``[B, D]`` features."""
    noise = torch.randn(x.shape, generator=generator).to(x)
    keep = (torch.rand(x.shape, generator=generator) >= 0.1).to(x)
    return (x + 0.1 * noise) * keep


def build_augment(
    policy: Policy, input_shape: Sequence[int], mean: Sequence[float], std: Sequence[float]
) -> AugmentFn:
    """An augmentation ``fn(x, generator)`` for normalised batches of ``input_shape`` samples."""
    if policy == "auto":
        if len(input_shape) != 3:
            policy = "vector"
        else:
            policy = "autoaugment" if input_shape[0] == 3 else "light"
    if policy == "vector":
        return vector
    if len(input_shape) != 3:
        raise ValueError(f"policy {policy!r} needs [C, H, W] images, got shape {input_shape}")
    op = autoaugment if policy == "autoaugment" else light
    m = torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1)
    s = torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1)

    def fn(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        mm, ss = m.to(x.device, x.dtype), s.to(x.device, x.dtype)
        return (op((x * ss + mm).clamp(0, 1), generator) - mm) / ss

    return fn


def noise_views(x: torch.Tensor, level: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """The official code's ``--prog-aug 1`` views: ``x + U[0,1)·0.2·level`` per sample."""
    u = torch.rand(x.shape, generator=generator).to(x)
    return x + u * 0.2 * level.view(-1, *([1] * (x.dim() - 1))).to(x)
