"""AutoAugment / RandAugment parity with torchvision: each sample of a batched call equals
torchvision's own ``forward`` on that image, given the same random draws."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from unittest import mock

import pytest
import torch
from torchvision.transforms import v2

from clbench.data.augment import build_augment, build_train_augment
from clbench.data.autoaugment import (
    OPS,
    POLICIES,
    RANDAUGMENT_OPS,
    apply_ops,
    autoaugment_params,
    magnitudes,
    randaugment_params,
)

TV_POLICY = {"cifar10": v2.AutoAugmentPolicy.CIFAR10, "imagenet": v2.AutoAugmentPolicy.IMAGENET}


@contextmanager
def scripted_rng(ints: list[int], floats: list[float]) -> Iterator[None]:
    """torch.randint / torch.rand return these values in order (torchvision's draws)."""
    it_i, it_f = iter(ints), iter(floats)
    with (
        mock.patch("torch.randint", lambda *a, **k: torch.tensor(next(it_i))),
        mock.patch("torch.rand", lambda *a, **k: torch.tensor(next(it_f))),
    ):
        yield
    assert next(it_i, None) is None and next(it_f, None) is None, "draws left unconsumed"


def images(n: int, c: int, h: int, w: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, c, h, w), dtype=torch.uint8, generator=g)


def test_tables_match_torchvision():
    for name, policy in TV_POLICY.items():
        assert list(POLICIES[name]) == v2.AutoAugment(policy)._policies
    assert tuple(v2.RandAugment._AUGMENTATION_SPACE) == RANDAUGMENT_OPS
    for space, bins in (
        (v2.AutoAugment._AUGMENTATION_SPACE, 10),
        (v2.RandAugment._AUGMENTATION_SPACE, 31),
    ):
        for op, (fn, _) in space.items():
            ours, theirs = magnitudes(op, bins, 24, 40), fn(bins, 24, 40)
            assert (ours is None) == (theirs is None), op
            if theirs is not None:
                assert torch.equal(ours, theirs), op


@pytest.mark.parametrize("policy", ["cifar10", "imagenet"])
@pytest.mark.parametrize("shape", [(3, 32, 32), (3, 24, 40), (1, 28, 28)])
def test_autoaugment_equals_torchvision_per_sample(policy, shape):
    n = 96
    x = images(n, *shape)
    _, h, w = shape
    ours = apply_ops(x, autoaugment_params(n, h, w, torch.Generator().manual_seed(3), policy))
    # the same raw draws, in the order autoaugment_params makes them
    g = torch.Generator().manual_seed(3)
    choice = torch.randint(25, (n,), generator=g)
    u_fire, u_sign = torch.rand(n, 2, generator=g), torch.rand(n, 2, generator=g)
    tv = v2.AutoAugment(TV_POLICY[policy])
    changed = 0
    for i in range(n):
        draws = []  # torchvision draws a sign only for a firing op with a signed magnitude
        for slot, (name, prob, _) in enumerate(tv._policies[int(choice[i])]):
            draws.append(u_fire[i, slot].item())
            fn, signed = tv._AUGMENTATION_SPACE[name]
            if u_fire[i, slot].item() <= prob and signed and fn(10, h, w) is not None:
                draws.append(u_sign[i, slot].item())
        with scripted_rng([int(choice[i])], draws):
            expected = tv(x[i])
        assert torch.equal(ours[i], expected), (i, tv._policies[int(choice[i])])
        changed += not torch.equal(expected, x[i])
    assert changed > n // 3  # the draws fire ops: the comparison is not between unchanged images


@pytest.mark.parametrize("shape", [(3, 32, 32), (3, 24, 40)])
def test_randaugment_equals_torchvision_per_sample(shape):
    n = 96
    x = images(n, *shape, seed=1)
    _, h, w = shape
    ours = apply_ops(x, randaugment_params(n, h, w, torch.Generator().manual_seed(5)))
    g = torch.Generator().manual_seed(5)
    op, u_sign = torch.randint(14, (n, 2), generator=g), torch.rand(n, 2, generator=g)
    tv = v2.RandAugment()
    for i in range(n):
        draws = []
        for slot in range(2):
            fn, signed = tv._AUGMENTATION_SPACE[RANDAUGMENT_OPS[int(op[i, slot])]]
            if signed and fn(31, h, w) is not None:
                draws.append(u_sign[i, slot].item())
        with scripted_rng(op[i].tolist(), draws):
            expected = tv(x[i])
        assert torch.equal(ours[i], expected), (i, [OPS[j] for j in op[i]])


def test_every_op_is_exercised_by_the_parity_draws():
    """The parity tests above would miss an op no sample draws: check that all are drawn."""
    seen = set()
    for policy in POLICIES:
        p = autoaugment_params(96, 32, 32, torch.Generator().manual_seed(3), policy)
        seen |= {OPS[i] for i in p.op[p.apply].tolist()}
    p = randaugment_params(96, 32, 32, torch.Generator().manual_seed(5))
    seen |= {OPS[i] for i in p.op.flatten().tolist()}
    assert seen == set(OPS)


@pytest.mark.parametrize("name", ["autoaugment", "autoaugment_imagenet", "randaugment"])
def test_train_policies_are_seeded_and_keep_normalised_shape(name):
    mean, std = [0.5, 0.4, 0.3], [0.25, 0.2, 0.2]
    fn = build_train_augment(name, (3, 32, 32), mean, std)
    pixels = images(16, 3, 32, 32).float() / 255
    m, s = torch.tensor(mean).view(1, 3, 1, 1), torch.tensor(std).view(1, 3, 1, 1)
    x = (pixels - m) / s
    a = fn(x, torch.Generator().manual_seed(0))
    b = fn(x, torch.Generator().manual_seed(0))
    assert torch.equal(a, b) and a.shape == x.shape and a.dtype == x.dtype
    assert not torch.allclose(a, x)
    back = a * s + m  # still uint8 pixel values after the round trip
    assert torch.allclose(back * 255, (back * 255).round(), atol=1e-3)


def test_composed_train_augment_applies_each_in_order():
    mean, std = [0.0] * 3, [1.0] * 3
    x = images(8, 3, 32, 32).float() / 255
    both = build_train_augment(["crop_flip", "autoaugment"], (3, 32, 32), mean, std)
    g = torch.Generator().manual_seed(2)
    crop = build_train_augment("crop_flip", (3, 32, 32), mean, std)
    aa = build_train_augment("autoaugment", (3, 32, 32), mean, std)
    expected = aa(crop(x, g), g)
    assert torch.allclose(both(x, torch.Generator().manual_seed(2)), expected)


def test_view_batch_autoaugment_is_torchvisions():
    """View-Batch's strong policy is the same torchvision-parity AutoAugment (CIFAR-10)."""
    mean, std = [0.0] * 3, [1.0] * 3
    x = images(32, 3, 32, 32).float() / 255
    vb = build_augment("autoaugment", (3, 32, 32), mean, std)
    train = build_train_augment("autoaugment", (3, 32, 32), mean, std)
    g1, g2 = torch.Generator().manual_seed(4), torch.Generator().manual_seed(4)
    assert torch.equal(vb(x, g1), train(x, g2))
