"""AutoAugment and RandAugment, batched with per-sample parameters, with torchvision's maths.

torchvision's ``AutoAugment`` and ``RandAugment`` (``torchvision.transforms.v2``) draw one
sub-policy (or ``num_ops`` ops) per call from the global RNG, so they augment one image at a
time. Here every sample of a batch draws its own ops from the run's seeded generator
(`autoaugment_params`, `randaugment_params`), and `apply_ops` applies them with the ops of
``torchvision.transforms.v2.functional`` exactly as torchvision's
``_apply_image_or_video_transform`` calls them (same magnitudes, nearest interpolation, black
fill, shear about the top-left corner, truncated integer translations), to uint8 images. Samples
sharing an op and a magnitude go through one batched call, so a batch costs at most a few dozen
calls per op slot, whatever its size.
``tests/data/test_autoaugment.py`` checks every sample against torchvision's own ``forward`` given
the same random draws.

References: AutoAugment, Cubuk et al., CVPR 2019 (the CIFAR-10 and ImageNet policies, Appendix);
RandAugment, Cubuk et al., CVPRW 2020 (``N = 2`` ops at magnitude ``M = 9`` of 31 bins, the
torchvision defaults). The View-Batch paper's strong views are AutoAugment's CIFAR-10 policy
(Kang et al., CVPR 2025, Alg. 1).
"""

from __future__ import annotations

import math
from typing import Literal, NamedTuple

import torch

AutoAugmentPolicy = Literal["cifar10", "imagenet"]
SubPolicy = tuple[tuple[str, float, int | None], tuple[str, float, int | None]]

# AutoAugment paper, Appendix Tables 7 (CIFAR-10) and 9 (ImageNet), as (op, probability, bin).
POLICIES: dict[str, tuple[SubPolicy, ...]] = {
    "cifar10": (
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
    ),
    "imagenet": (
        (("Posterize", 0.4, 8), ("Rotate", 0.6, 9)),
        (("Solarize", 0.6, 5), ("AutoContrast", 0.6, None)),
        (("Equalize", 0.8, None), ("Equalize", 0.6, None)),
        (("Posterize", 0.6, 7), ("Posterize", 0.6, 6)),
        (("Equalize", 0.4, None), ("Solarize", 0.2, 4)),
        (("Equalize", 0.4, None), ("Rotate", 0.8, 8)),
        (("Solarize", 0.6, 3), ("Equalize", 0.6, None)),
        (("Posterize", 0.8, 5), ("Equalize", 1.0, None)),
        (("Rotate", 0.2, 3), ("Solarize", 0.6, 8)),
        (("Equalize", 0.6, None), ("Posterize", 0.4, 6)),
        (("Rotate", 0.8, 8), ("Color", 0.4, 0)),
        (("Rotate", 0.4, 9), ("Equalize", 0.6, None)),
        (("Equalize", 0.0, None), ("Equalize", 0.8, None)),
        (("Invert", 0.6, None), ("Equalize", 1.0, None)),
        (("Color", 0.6, 4), ("Contrast", 1.0, 8)),
        (("Rotate", 0.8, 8), ("Color", 1.0, 2)),
        (("Color", 0.8, 8), ("Solarize", 0.8, 7)),
        (("Sharpness", 0.4, 7), ("Invert", 0.6, None)),
        (("ShearX", 0.6, 5), ("Equalize", 1.0, None)),
        (("Color", 0.4, 0), ("Equalize", 0.6, None)),
        (("Equalize", 0.4, None), ("Solarize", 0.2, 4)),
        (("Solarize", 0.6, 5), ("AutoContrast", 0.6, None)),
        (("Invert", 0.6, None), ("Equalize", 1.0, None)),
        (("Color", 0.6, 4), ("Contrast", 1.0, 8)),
        (("Equalize", 0.8, None), ("Equalize", 0.6, None)),
    ),
}

# Op names in one fixed order: an op is stored as its index here.
OPS = (
    "Identity",
    "ShearX",
    "ShearY",
    "TranslateX",
    "TranslateY",
    "Rotate",
    "Brightness",
    "Color",
    "Contrast",
    "Sharpness",
    "Posterize",
    "Solarize",
    "AutoContrast",
    "Equalize",
    "Invert",
)
# RandAugment's op space, in torchvision's order (its uniform draw indexes this tuple).
RANDAUGMENT_OPS = OPS[:14]
_SIGNED = frozenset(OPS[1:10])  # geometric and enhancement ops get a random sign


def magnitudes(op: str, num_bins: int, height: int, width: int) -> torch.Tensor | None:
    """The ``num_bins`` magnitudes of ``op`` (None for ops without one), as torchvision's
    AutoAugment/RandAugment augmentation space computes them (float32 ``linspace``)."""
    if op in ("ShearX", "ShearY"):
        return torch.linspace(0.0, 0.3, num_bins)
    if op == "TranslateX":
        return torch.linspace(0.0, 150.0 / 331.0 * width, num_bins)
    if op == "TranslateY":
        return torch.linspace(0.0, 150.0 / 331.0 * height, num_bins)
    if op == "Rotate":
        return torch.linspace(0.0, 30.0, num_bins)
    if op in ("Brightness", "Color", "Contrast", "Sharpness"):
        return torch.linspace(0.0, 0.9, num_bins)
    if op == "Posterize":
        return (8 - (torch.arange(num_bins) / ((num_bins - 1) / 4))).round().int()
    if op == "Solarize":
        return torch.linspace(1.0, 0.0, num_bins)
    return None


class OpsParams(NamedTuple):
    """Per-sample ops of a batch: ``K`` op slots applied in order (CPU tensors ``[B, K]``)."""

    op: torch.Tensor  # long, index into OPS
    magnitude: torch.Tensor  # float32, signed; 0 for ops without a magnitude
    apply: torch.Tensor  # bool, whether the slot's op fires for the sample


def _signed_magnitude(op: torch.Tensor, value: torch.Tensor, u_sign: torch.Tensor) -> torch.Tensor:
    """Negate signed ops' magnitudes where the uniform ``u_sign <= 0.5`` (torchvision's rule)."""
    signed = torch.tensor([name in _SIGNED for name in OPS])[op]
    return torch.where(signed & (u_sign <= 0.5), -value, value)


def autoaugment_params(
    n: int,
    height: int,
    width: int,
    generator: torch.Generator,
    policy: AutoAugmentPolicy = "cifar10",
) -> OpsParams:
    """Draw AutoAugment's sub-policy, firing and signs for ``n`` images of ``height x width``.

    Per sample, as torchvision: one sub-policy uniformly; each of its two ops fires where a
    uniform ``u <= p``; a signed op is negated where another uniform ``<= 0.5``. Drawn as ``n``
    integers then ``[n, 2]`` firing and ``[n, 2]`` sign uniforms, whatever fires.
    """
    table = POLICIES[policy]
    op = torch.tensor([[OPS.index(name) for name, _, _ in sub] for sub in table])
    prob = torch.tensor([[p for _, p, _ in sub] for sub in table])
    value = torch.zeros(len(table), 2)
    for i, sub in enumerate(table):
        for slot, (name, _, bin_) in enumerate(sub):
            space = magnitudes(name, 10, height, width)
            if space is not None and bin_ is not None:
                value[i, slot] = float(space[bin_])
    choice = torch.randint(len(table), (n,), generator=generator)
    u_fire = torch.rand(n, 2, generator=generator)
    u_sign = torch.rand(n, 2, generator=generator)
    ops = op[choice]
    return OpsParams(
        op=ops,
        magnitude=_signed_magnitude(ops, value[choice], u_sign),
        apply=u_fire <= prob[choice],
    )


def randaugment_params(
    n: int,
    height: int,
    width: int,
    generator: torch.Generator,
    num_ops: int = 2,
    magnitude: int = 9,
    num_bins: int = 31,
) -> OpsParams:
    """Draw RandAugment's ops and signs: ``num_ops`` ops uniformly from its 14 (Identity
    included) at bin ``magnitude`` of ``num_bins``, as ``[n, num_ops]`` integers then
    ``[n, num_ops]`` sign uniforms."""
    value = torch.zeros(len(RANDAUGMENT_OPS))
    for i, name in enumerate(RANDAUGMENT_OPS):
        space = magnitudes(name, num_bins, height, width)
        if space is not None:
            value[i] = float(space[magnitude])
    op = torch.randint(len(RANDAUGMENT_OPS), (n, num_ops), generator=generator)
    u_sign = torch.rand(n, num_ops, generator=generator)
    return OpsParams(
        op=op,
        magnitude=_signed_magnitude(op, value[op], u_sign),
        apply=torch.ones(n, num_ops, dtype=torch.bool),
    )


def apply_op(images: torch.Tensor, op: str, magnitude: float) -> torch.Tensor:
    """One op on uint8 ``[B, C, H, W]`` images, called as torchvision's AutoAugment calls it."""
    from torchvision.transforms.v2 import functional as TF  # heavy import, only when used

    nearest = TF.InterpolationMode.NEAREST
    if op == "Identity":
        return images
    if op in ("ShearX", "ShearY"):
        # torchvision shears by atan(magnitude) degrees about the top-left corner
        angle = math.degrees(math.atan(magnitude))
        shear = [angle, 0.0] if op == "ShearX" else [0.0, angle]
        return TF.affine(
            images, angle=0.0, translate=[0, 0], scale=1.0, shear=shear,
            interpolation=nearest, fill=None, center=[0, 0],
        )  # fmt: skip
    if op in ("TranslateX", "TranslateY"):
        shift = [int(magnitude), 0] if op == "TranslateX" else [0, int(magnitude)]
        return TF.affine(
            images, angle=0.0, translate=shift, scale=1.0, shear=[0.0, 0.0],
            interpolation=nearest, fill=None,
        )  # fmt: skip
    if op == "Rotate":
        return TF.rotate(images, angle=magnitude, interpolation=nearest, fill=None)
    if op == "Brightness":
        return TF.adjust_brightness(images, brightness_factor=1.0 + magnitude)
    if op == "Color":
        return TF.adjust_saturation(images, saturation_factor=1.0 + magnitude)
    if op == "Contrast":
        return TF.adjust_contrast(images, contrast_factor=1.0 + magnitude)
    if op == "Sharpness":
        return TF.adjust_sharpness(images, sharpness_factor=1.0 + magnitude)
    if op == "Posterize":
        return TF.posterize(images, bits=int(magnitude))
    if op == "Solarize":
        return TF.solarize(images, threshold=255.0 * magnitude)
    if op == "AutoContrast":
        return TF.autocontrast(images)
    if op == "Equalize":
        return TF.equalize(images)
    if op == "Invert":
        return TF.invert(images)
    raise ValueError(f"unknown op {op!r}: expected one of {', '.join(OPS)}")


def apply_ops(images: torch.Tensor, params: OpsParams) -> torch.Tensor:
    """Apply each sample's op slots in order to uint8 ``[B, C, H, W]`` images.

    Rows with the same op and magnitude in a slot form one batched call; the rest are untouched.
    """
    for slot in range(params.op.shape[1]):
        op, mag, fire = params.op[:, slot], params.magnitude[:, slot], params.apply[:, slot]
        # one group per distinct (op, magnitude) among the firing rows
        keys = torch.stack([op[fire].double(), mag[fire].double()], 1)
        for op_id, value in torch.unique(keys, dim=0).tolist():
            rows = (fire & (op == int(op_id)) & (mag.double() == value)).nonzero().flatten()
            rows = rows.to(images.device)
            # ``value`` is the float32 magnitude widened exactly, as torchvision's float(...)
            out = apply_op(images.index_select(0, rows), OPS[int(op_id)], value)
            images = images.index_copy(0, rows, out)
    return images


def to_uint8(x01: torch.Tensor) -> torch.Tensor:
    """``[0, 1]`` float pixels to uint8 (rounded): torchvision's policies are defined on uint8."""
    return (x01 * 255).round_().clamp_(0, 255).to(torch.uint8)


def autoaugment(
    x01: torch.Tensor, generator: torch.Generator, policy: AutoAugmentPolicy = "cifar10"
) -> torch.Tensor:
    """AutoAugment (``policy``) on ``[0, 1]`` pixels ``[B, C, H, W]``, through uint8."""
    n, _, h, w = x01.shape
    params = autoaugment_params(n, h, w, generator, policy)
    return apply_ops(to_uint8(x01), params).to(x01.dtype) / 255


def randaugment(x01: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """RandAugment (2 ops, magnitude 9 of 31) on ``[0, 1]`` pixels ``[B, C, H, W]``."""
    n, _, h, w = x01.shape
    return apply_ops(to_uint8(x01), randaugment_params(n, h, w, generator)).to(x01.dtype) / 255
