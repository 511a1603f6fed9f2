"""Batched, on-device, seeded data augmentation of normalised float batches.

Every function takes a batch ``x`` already normalised as `StreamData.make_batch` forms it
(``[B, C, H, W]`` images or ``[B, D]`` vectors), draws all per-sample random parameters as tensors
from a `torch.Generator` (on the CPU, then moved to ``x.device``: the same generator state gives
the same output on any device), and never loops over samples in Python. Image ops de-normalise to
``[0, 1]`` pixels with the dataset's mean/std, apply the op, and normalise back.

Policies (`build_augment`):

- ``autoaugment``: AutoAugment's CIFAR-10 policy with torchvision's maths
  (`clbench.data.autoaugment`), which the View-Batch paper uses for its strong views (Kang et
  al., CVPR 2025, Alg. 1). Each sample draws its own sub-policy, firings and signs.
- ``light``: for small grey images (8x8 digits, 28x28 MNIST-like), where AutoAugment's colour ops
  are meaningless: random translation up to 1/8 of the side, rotation up to ±15°, brightness and
  contrast factors in [0.8, 1.2], and one cutout square of side ¼ (each with probability 1 except
  cutout, 0.5). A documented clbench choice, not from the paper.
- ``vector``: for ``[B, D]`` features: Gaussian noise (σ = 0.1 in normalised units) and feature
  dropout (p = 0.1). A clbench choice.
- ``auto``: ``autoaugment`` for images with 3 channels, ``light`` for other images, ``vector``
  for vectors.

Training augmentations (`build_train_augment`), the standard ones of CL papers:

- ``crop_flip``: the CIFAR standard of Mammoth and DER (Buzzega et al., NeurIPS 2020):
  ``RandomCrop(32, padding=4)`` + ``RandomHorizontalFlip()``: zero-pad (black) by 4 on every
  side, crop the original size at a per-sample offset uniform in ``0..8`` on each axis, flip with
  probability 0.5. One pad of the batch and one gather: no loop over samples.
- ``resized_crop_flip``: ``RandomResizedCrop`` (Szegedy et al., CVPR 2015) + horizontal flip, as
  the pre-trained-model CL papers train their 224-px ViTs (e.g. SLCA, Zhang et al., ICCV 2023):
  boxes drawn by torchvision's ``RandomResizedCrop.get_params`` algorithm (10 tries, then the
  central-crop fallback), vectorised over samples; the resize is torchvision's own
  ``resized_crop(..., antialias=True)``, one call per sample.
- ``autoaugment`` / ``autoaugment_imagenet``: AutoAugment's CIFAR-10 / ImageNet policy,
  ``randaugment``: RandAugment (2 ops at magnitude 9 of 31), all with torchvision's maths on uint8
  pixels (`clbench.data.autoaugment`).
- ``none``: no augmentation.

A list of names applies them in order with one generator, e.g. ``[crop_flip, autoaugment]`` as
in torchvision's CIFAR-10 AutoAugment recipe (crop, flip, then the policy).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Literal, NamedTuple

import torch
import torch.nn.functional as F

from clbench.data.augment_names import TRAIN_AUGMENTS, TrainAugment
from clbench.data.autoaugment import autoaugment, randaugment

AugmentFn = Callable[[torch.Tensor, torch.Generator], torch.Tensor]
Policy = Literal["auto", "autoaugment", "light", "vector"]


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


def _blend(x: torch.Tensor, other: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    f = factor.view(-1, *([1] * (x.dim() - 1))).to(x)
    return (other + f * (x - other)).clamp(0, 1)


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
    return _in_pixel_space(autoaugment if policy == "autoaugment" else light, mean, std)


def _in_pixel_space(op: AugmentFn, mean: Sequence[float], std: Sequence[float]) -> AugmentFn:
    """Wrap a ``[0, 1]``-pixel op to act on batches normalised with ``mean``/``std``."""
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


class CropFlipParams(NamedTuple):
    """Per-sample parameters of `crop_flip` (CPU tensors of length B)."""

    top: torch.Tensor  # long, row offset into the padded image, in 0..2*padding
    left: torch.Tensor  # long, column offset into the padded image, in 0..2*padding
    flip: torch.Tensor  # bool, mirror left-right


def crop_flip_params(n: int, generator: torch.Generator, padding: int = 4) -> CropFlipParams:
    """Draw `crop_flip`'s parameters for ``n`` samples: three draws of ``n`` values each.

    Offsets are uniform in ``0..2*padding`` as torchvision's ``torch.randint(0, h - th + 1)``.
    """
    top = torch.randint(0, 2 * padding + 1, (n,), generator=generator)
    left = torch.randint(0, 2 * padding + 1, (n,), generator=generator)
    flip = torch.rand(n, generator=generator) < 0.5
    return CropFlipParams(top, left, flip)


def apply_crop_flip(x01: torch.Tensor, params: CropFlipParams, padding: int = 4) -> torch.Tensor:
    """Zero-pad ``[B, C, H, W]`` pixels by ``padding``, crop H x W at the offsets, flip."""
    b, c, h, w = x01.shape
    dev = x01.device
    wp = w + 2 * padding
    padded = F.pad(x01, (padding, padding, padding, padding), value=0.0).view(b, c, -1)
    rows = params.top.to(dev).view(-1, 1) + torch.arange(h, device=dev)  # [B, H]
    ar = torch.arange(w, device=dev)
    # The flip is folded into the gather: a flipped sample reads its columns right to left.
    cols = params.left.to(dev).view(-1, 1) + torch.where(
        params.flip.to(dev).view(-1, 1), w - 1 - ar, ar
    )  # [B, W]
    index = (rows.unsqueeze(2) * wp + cols.unsqueeze(1)).view(b, 1, h * w).expand(b, c, h * w)
    return padded.gather(2, index).view(b, c, h, w)


def crop_flip(x01: torch.Tensor, generator: torch.Generator, padding: int = 4) -> torch.Tensor:
    """``RandomCrop(H, padding)`` + ``RandomHorizontalFlip()`` on ``[0, 1]`` pixels, batched."""
    return apply_crop_flip(x01, crop_flip_params(x01.shape[0], generator, padding), padding)


class ResizedCropParams(NamedTuple):
    """Per-sample parameters of `resized_crop_flip` (CPU tensors of length B)."""

    top: torch.Tensor  # long
    left: torch.Tensor  # long
    height: torch.Tensor  # long
    width: torch.Tensor  # long
    flip: torch.Tensor  # bool


def resized_crop_params(
    n: int,
    h: int,
    w: int,
    generator: torch.Generator,
    scale: tuple[float, float] = (0.08, 1.0),
    ratio: tuple[float, float] = (3 / 4, 4 / 3),
) -> ResizedCropParams:
    """Draw `resized_crop_flip`'s boxes and flips for ``n`` images of ``h`` x ``w``.

    torchvision's ``RandomResizedCrop.get_params``, vectorised: all 10 tries are drawn for every
    sample (a ``[n, 10]`` area fraction, then a ``[n, 10]`` log aspect ratio), the first valid try
    wins, samples with none take the central-crop fallback; then ``n`` uniforms place the box
    vertically, ``n`` horizontally, and ``n`` decide the flip: ``23 n`` uniforms per batch,
    whatever the outcome of the tries.
    """
    tries = 10
    area = h * w
    # float64 from here on, as torchvision's maths on Python floats after ``.item()``.
    frac = torch.rand(n, tries, generator=generator).double() * (scale[1] - scale[0]) + scale[0]
    lr = (math.log(ratio[0]), math.log(ratio[1]))
    aspect = torch.exp(torch.rand(n, tries, generator=generator).double() * (lr[1] - lr[0]) + lr[0])
    target = area * frac
    # torch.round rounds half to even, as Python's round() in torchvision.
    cw = torch.round(torch.sqrt(target * aspect)).long()
    ch = torch.round(torch.sqrt(target / aspect)).long()
    ok = (cw > 0) & (cw <= w) & (ch > 0) & (ch <= h)
    first = ok.long().argmax(1, keepdim=True)  # first valid try (0 if none; masked below)
    found = ok.any(1)
    bw = cw.gather(1, first).squeeze(1)
    bh = ch.gather(1, first).squeeze(1)
    # Fallback to the central crop, exactly as torchvision.
    in_ratio = w / h
    if in_ratio < min(ratio):
        fw, fh = w, round(w / min(ratio))
    elif in_ratio > max(ratio):
        fw, fh = round(h * max(ratio)), h
    else:
        fw, fh = w, h
    bw = torch.where(found, bw, fw)
    bh = torch.where(found, bh, fh)
    # Uniform integer offsets in 0..h-bh (torch.randint(0, h - bh + 1) in torchvision); u < 1 so
    # floor(u * k) < k. The fallback box is centred instead.
    u_top = torch.rand(n, generator=generator).double()
    u_left = torch.rand(n, generator=generator).double()
    top = torch.floor(u_top * (h - bh + 1)).long().clamp(max=h - bh)
    left = torch.floor(u_left * (w - bw + 1)).long().clamp(max=w - bw)
    top = torch.where(found, top, (h - fh) // 2)
    left = torch.where(found, left, (w - fw) // 2)
    flip = torch.rand(n, generator=generator) < 0.5
    return ResizedCropParams(top, left, bh, bw, flip)


def apply_resized_crop_flip(
    x01: torch.Tensor, params: ResizedCropParams, size: int | Sequence[int]
) -> torch.Tensor:
    """Crop each box of ``[B, C, H, W]`` pixels, resize it to ``size`` (antialiased), flip."""
    from torchvision.transforms.v2 import functional as TF  # only this op needs torchvision

    out_size = [size, size] if isinstance(size, int) else list(size)
    boxes = zip(
        params.top.tolist(),
        params.left.tolist(),
        params.height.tolist(),
        params.width.tolist(),
        strict=True,
    )
    # One torchvision call per sample so the resize maths is torchvision's own (boxes differ).
    out = torch.stack(
        [
            TF.resized_crop(img, t, lf, bh, bw, out_size, antialias=True)
            for img, (t, lf, bh, bw) in zip(x01, boxes, strict=True)
        ]
    )
    return torch.where(params.flip.to(x01.device).view(-1, 1, 1, 1), out.flip(-1), out)


def resized_crop_flip(
    x01: torch.Tensor,
    generator: torch.Generator,
    size: int | Sequence[int],
    scale: tuple[float, float] = (0.08, 1.0),
    ratio: tuple[float, float] = (3 / 4, 4 / 3),
) -> torch.Tensor:
    """``RandomResizedCrop(size, scale, ratio)`` + ``RandomHorizontalFlip()`` on [0, 1] pixels."""
    n, _, h, w = x01.shape
    params = resized_crop_params(n, h, w, generator, scale, ratio)
    return apply_resized_crop_flip(x01, params, size)


def _train_op(name: str, h: int, w: int, padding: int) -> AugmentFn:
    """The ``[0, 1]``-pixel op of one training augmentation name."""
    if name == "crop_flip":
        return lambda x01, generator: crop_flip(x01, generator, padding)
    if name == "resized_crop_flip":
        return lambda x01, generator: resized_crop_flip(x01, generator, (h, w))
    if name == "autoaugment":
        return autoaugment
    if name == "autoaugment_imagenet":
        return lambda x01, generator: autoaugment(x01, generator, "imagenet")
    return randaugment


def build_train_augment(
    name: TrainAugment | Sequence[TrainAugment],
    input_shape: Sequence[int],
    mean: Sequence[float],
    std: Sequence[float],
    *,
    padding: int = 4,
) -> AugmentFn | None:
    """The training augmentation ``fn(x, generator)`` on normalised batches, or None for "none".

    ``name`` is one augmentation or a list applied in order, sharing the generator.
    ``resized_crop_flip`` resizes back to the input's own ``H x W`` so shapes stay as the model
    expects; ``padding`` is `crop_flip`'s.
    """
    names = [name] if isinstance(name, str) else list(name)
    for each in names:
        if each not in TRAIN_AUGMENTS:
            raise ValueError(
                f"unknown training augmentation {each!r}: expected one of "
                f"{', '.join(TRAIN_AUGMENTS)}"
            )
    names = [each for each in names if each != "none"]
    if not names:
        return None
    if len(input_shape) != 3:
        raise ValueError(
            f"training augmentation {name!r} needs [C, H, W] images, got shape "
            f"{tuple(input_shape)}; use 'none' for vector inputs"
        )
    _, h, w = input_shape
    ops = [_train_op(each, h, w, padding) for each in names]

    def op(x01: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        for each in ops:
            x01 = each(x01, generator)
        return x01

    return _in_pixel_space(op, mean, std)
