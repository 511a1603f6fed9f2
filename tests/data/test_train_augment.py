"""Training augmentations (crop_flip, resized_crop_flip): parity with torchvision's functional
ops on the parameters drawn, seeding, the get_params fallback, and the normalised entry point."""

from __future__ import annotations

import math

import pytest
import torch
import torchvision.transforms as T1
from torchvision.transforms.v2 import functional as TF

from clbench.data.augment import (
    build_train_augment,
    crop_flip,
    crop_flip_params,
    resized_crop_flip,
    resized_crop_params,
)


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _clone(g: torch.Generator) -> torch.Generator:
    c = torch.Generator()
    c.set_state(g.get_state())
    return c


@pytest.mark.parametrize(
    ("shape", "padding"),
    [((8, 3, 32, 32), 4), ((8, 1, 28, 28), 4), ((8, 3, 16, 24), 2), ((6, 1, 8, 8), 0)],
)
def test_crop_flip_equals_torchvision_pad_crop_flip(shape, padding):
    x = torch.rand(shape, generator=_gen(0))
    g = _gen(3)
    params = crop_flip_params(shape[0], _clone(g), padding)
    out = crop_flip(x, g, padding)
    _, _, h, w = shape
    assert out.shape == x.shape
    assert params.flip.any() and not params.flip.all()  # both branches exercised
    assert int(params.top.min()) >= 0 and int(params.top.max()) <= 2 * padding
    for i in range(shape[0]):
        ref = TF.pad(x[i], [padding] * 4, fill=0)
        ref = TF.crop(ref, int(params.top[i]), int(params.left[i]), h, w)
        if params.flip[i]:
            ref = TF.horizontal_flip(ref)
        assert torch.equal(out[i], ref), i


def test_crop_flip_offsets_cover_the_range():
    p = crop_flip_params(4000, _gen(0), padding=4)
    assert set(p.top.tolist()) == set(range(9)) and set(p.left.tolist()) == set(range(9))
    assert abs(p.flip.float().mean().item() - 0.5) < 0.05


@pytest.mark.parametrize(
    ("shape", "size"),
    [((8, 3, 32, 32), 32), ((8, 3, 32, 32), 48), ((8, 1, 28, 28), 20), ((8, 3, 24, 32), (24, 32))],
)
def test_resized_crop_flip_equals_torchvision(shape, size):
    x = torch.rand(shape, generator=_gen(0))
    g = _gen(1)
    _, _, h, w = shape
    params = resized_crop_params(shape[0], h, w, _clone(g))
    out = resized_crop_flip(x, g, size)
    out_hw = [size, size] if isinstance(size, int) else list(size)
    assert out.shape == (shape[0], shape[1], *out_hw)
    assert params.flip.any() and not params.flip.all()
    for i in range(shape[0]):
        t, lf, bh, bw = (int(v[i]) for v in params[:4])
        assert t >= 0 and t + bh <= h and lf >= 0 and lf + bw <= w
        ref = TF.resized_crop(x[i], t, lf, bh, bw, out_hw, antialias=True)
        if params.flip[i]:
            ref = TF.horizontal_flip(ref)
        torch.testing.assert_close(out[i], ref, atol=1e-5, rtol=0)


def _torchvision_get_params_on(
    u_area: list[float],
    u_ratio: list[float],
    u_top: float,
    u_left: float,
    h: int,
    w: int,
    scale,
    ratio,
) -> tuple[int, int, int, int]:
    """torchvision's get_params loop, fed our uniforms instead of the global RNG."""
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    for ua, ur in zip(u_area, u_ratio, strict=True):
        target_area = h * w * (scale[0] + ua * (scale[1] - scale[0]))
        aspect = math.exp(log_ratio[0] + ur * (log_ratio[1] - log_ratio[0]))
        cw = round(math.sqrt(target_area * aspect))
        ch = round(math.sqrt(target_area / aspect))
        if 0 < cw <= w and 0 < ch <= h:
            return int(u_top * (h - ch + 1)), int(u_left * (w - cw + 1)), ch, cw
    # The central-crop fallback (torchvision's get_params would draw again from the global RNG).
    if w / h < min(ratio):
        cw, ch = w, round(w / min(ratio))
    elif w / h > max(ratio):
        cw, ch = round(h * max(ratio)), h
    else:
        cw, ch = w, h
    return (h - ch) // 2, (w - cw) // 2, ch, cw


@pytest.mark.parametrize(
    ("h", "w", "scale", "ratio"),
    [(32, 32, (0.08, 1.0), (3 / 4, 4 / 3)), (16, 24, (0.5, 1.6), (1 / 3, 3.0))],
)
def test_resized_crop_params_take_the_first_valid_try(h, w, scale, ratio):
    # (0.5, 1.6) x (1/3, 3) makes many tries fail, so later tries and the fallback both occur.
    n = 300
    g = _gen(5)
    params = resized_crop_params(n, h, w, _clone(g), scale, ratio)
    u_area = torch.rand(n, 10, generator=g).double()
    u_ratio = torch.rand(n, 10, generator=g).double()
    u_top = torch.rand(n, generator=g).double()
    u_left = torch.rand(n, generator=g).double()
    for i in range(n):
        ref = _torchvision_get_params_on(
            u_area[i].tolist(), u_ratio[i].tolist(), u_top[i].item(), u_left[i].item(), h, w,
            scale, ratio,
        )  # fmt: skip
        got = tuple(int(v[i]) for v in params[:4])
        assert got == ref, (i, got, ref)


def test_resized_crop_params_match_torchvision_distribution():
    # Our generator cannot drive torchvision's global RNG; compare the area and aspect laws.
    n, h, w = 3000, 32, 32
    ours = resized_crop_params(n, h, w, _gen(0))
    with torch.random.fork_rng():
        torch.manual_seed(0)
        img = torch.zeros(1, h, w)
        ref = [T1.RandomResizedCrop.get_params(img, [0.08, 1.0], [3 / 4, 4 / 3]) for _ in range(n)]
    ref_t = torch.tensor(ref, dtype=torch.float64)
    ours_area = (ours.height * ours.width).double() / (h * w)
    ref_area = ref_t[:, 2] * ref_t[:, 3] / (h * w)
    assert abs(ours_area.mean() - ref_area.mean()) < 0.03
    ours_ar = (ours.width.double() / ours.height).log()
    ref_ar = (ref_t[:, 3] / ref_t[:, 2]).log()
    assert abs(ours_ar.mean() - ref_ar.mean()) < 0.03


@pytest.mark.parametrize(
    ("h", "w", "scale", "ratio"),
    [
        (32, 32, (0.5, 1.0), (10.0, 20.0)),  # too wide: h = round(w / 10)
        (32, 32, (2.0, 3.0), (3 / 4, 4 / 3)),  # too large: the whole image
        (32, 8, (2.0, 3.0), (3 / 4, 4 / 3)),  # tall input: w = width
        (8, 32, (2.0, 3.0), (3 / 4, 4 / 3)),  # wide input: h = height
    ],
)
def test_resized_crop_fallback_is_torchvision_central_crop(h, w, scale, ratio):
    params = resized_crop_params(5, h, w, _gen(0), scale, ratio)
    ref = T1.RandomResizedCrop.get_params(torch.zeros(1, h, w), list(scale), list(ratio))
    for i in range(5):
        assert tuple(int(v[i]) for v in params[:4]) == ref


@pytest.mark.parametrize("name", ["crop_flip", "resized_crop_flip"])
@pytest.mark.parametrize("shape", [(3, 32, 32), (1, 28, 28), (3, 24, 32)])
def test_entry_point_is_seeded_shape_preserving_and_changes_inputs(name, shape):
    mean, std = [0.5] * shape[0], [0.25] * shape[0]
    aug = build_train_augment(name, shape, mean, std)
    assert aug is not None
    x = (torch.rand(16, *shape, generator=_gen(0)) - 0.5) / 0.25
    a = aug(x, _gen(1))
    b = aug(x, _gen(1))
    c = aug(x, _gen(2))
    assert a.shape == x.shape and torch.isfinite(a).all()
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    changed = (a - x).flatten(1).abs().amax(1) > 1e-4
    assert changed.float().mean() > 0.5


@pytest.mark.parametrize("name", ["crop_flip", "resized_crop_flip"])
def test_entry_point_denormalises_applies_and_renormalises(name):
    shape = (3, 32, 32)
    mean = torch.tensor([0.4, 0.5, 0.6]).view(1, 3, 1, 1)
    std = torch.tensor([0.2, 0.25, 0.3]).view(1, 3, 1, 1)
    aug = build_train_augment(name, shape, mean.flatten().tolist(), std.flatten().tolist())
    x01 = torch.rand(6, *shape, generator=_gen(0))
    x = (x01 - mean) / std
    g = _gen(4)
    ref01 = (
        crop_flip(x01, _clone(g)) if name == "crop_flip" else resized_crop_flip(x01, _clone(g), 32)
    )
    torch.testing.assert_close(aug(x, g), (ref01 - mean) / std, atol=1e-5, rtol=1e-5)


def test_entry_point_identity_round_trips_mean_std():
    # padding 0 leaves only the flip, and these images are left-right symmetric.
    mean, std = [0.4, 0.5, 0.6], [0.2, 0.25, 0.3]
    m, s = torch.tensor(mean).view(1, 3, 1, 1), torch.tensor(std).view(1, 3, 1, 1)
    half = torch.rand(6, 3, 8, 4, generator=_gen(0))
    x01 = torch.cat([half, half.flip(-1)], dim=-1)
    x = (x01 - m) / s
    aug = build_train_augment("crop_flip", (3, 8, 8), mean, std, padding=0)
    assert aug is not None
    torch.testing.assert_close(aug(x, _gen(1)), x, atol=1e-5, rtol=1e-5)


def test_crop_flip_pads_with_black_pixels():
    # A white image: every pixel the crop takes from the padding is 0 in pixel space.
    x01 = torch.ones(200, 1, 8, 8)
    g = _gen(0)
    p = crop_flip_params(200, _clone(g))
    out = crop_flip(x01, g)
    expected_white = ((8 - (p.top - 4).abs()) * (8 - (p.left - 4).abs())).sum()
    assert int(out.sum()) == int(expected_white)
    assert set(out.unique().tolist()) == {0.0, 1.0}


def test_build_train_augment_none_and_errors():
    assert build_train_augment("none", (3, 32, 32), [0.5] * 3, [0.25] * 3) is None
    assert build_train_augment("none", (16,), [0.0], [1.0]) is None
    for name in ("crop_flip", "resized_crop_flip"):
        with pytest.raises(ValueError, match=r"needs \[C, H, W\] images"):
            build_train_augment(name, (16,), [0.0], [1.0])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown training augmentation"):
        build_train_augment("bogus", (3, 32, 32), [0.5] * 3, [0.25] * 3)  # type: ignore[arg-type]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("name", ["crop_flip", "resized_crop_flip"])
def test_same_output_on_cuda_as_on_cpu(name):
    aug = build_train_augment(name, (3, 32, 32), [0.5] * 3, [0.25] * 3)
    assert aug is not None
    x = torch.randn(16, 3, 32, 32, generator=_gen(0))
    cpu = aug(x, _gen(1))
    cuda = aug(x.cuda(), _gen(1))
    assert cuda.device.type == "cuda"
    torch.testing.assert_close(cuda.cpu(), cpu, atol=1e-5, rtol=1e-5)
