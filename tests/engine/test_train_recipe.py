"""The ``train`` recipe: learning-rate schedules equal to their formulas at every update,
augmentation of the training batches only, fp16 loss scaling, gradient clipping, channels_last and
compile, all exact across a mid-phase resume, and the refusals before a run starts."""

from __future__ import annotations

import math

import pandas as pd
import pytest
import torch

from clbench.cli import main
from clbench.config import build_config, config_hash
from clbench.engine.runner import Experiment, prepare
from clbench.errors import ConfigError
from tests.engine.helpers import run_with_stops
from tests.helpers import IMAGE_RUN, experiment, fast_overrides

ER = {"strategy.name": "er", "strategy.buffer_size": 20}
IMAGES = IMAGE_RUN
SYNTHETIC_ONLY = ("data.num_classes", "data.dim", "data.train_per_class", "data.test_per_class")
SYNTHETIC_ONLY += ("data.noise", "model.hidden")


def image_overrides(tmp_path, **extra) -> list[str]:
    overrides = fast_overrides(tmp_path, **ER, **IMAGES, **extra)
    return [o for o in overrides if not o.startswith(SYNTHETIC_ONLY)]


def image_run(tmp_path, **extra) -> Experiment:
    exp = Experiment(prepare(build_config(None, image_overrides(tmp_path, **extra))))
    exp.run()
    return exp


def rates(tmp_path, **extra) -> tuple[Experiment, list[float]]:
    """A run and the learning rate its optimizer had at each update."""
    exp = experiment(tmp_path, run=False, **extra)
    seen: list[float] = []
    exp.run(on_update=lambda step: seen.append(exp.strategy.optimizer.param_groups[0]["lr"]))
    return exp, seen


# --------------------------------------------------------------------------- schedules


def test_cosine_with_warmup_per_phase_is_its_formula(tmp_path):
    exp, seen = rates(
        tmp_path,
        **{
            "train.lr": 0.1,
            "train.scheduler": "cosine",
            "train.warmup_epochs": 0.5,
            "train.min_lr_ratio": 0.1,
        },
    )
    per_phase = exp.loop.plan.updates_per_phase  # 16 each: 8 batches x 2 epochs
    assert per_phase == (16, 16, 16, 16)
    expected = []
    for n in per_phase:
        warm = 4  # half an epoch of 8 batches
        for k in range(1, n + 1):
            if k <= warm:
                expected.append(0.1 * k / warm)
            else:
                p = (k - 1 - warm) / (n - warm)
                expected.append(0.1 * (0.1 + 0.9 * (1 + math.cos(math.pi * p)) / 2))
    assert seen == pytest.approx(expected, rel=1e-12)


def test_multistep_over_the_run_is_its_formula(tmp_path):
    settings = {
        "train.lr": 0.2,
        "train.scheduler": "multistep",
        "train.scheduler_scope": "run",
        "train.milestones": "[2,5]",
        "train.gamma": 0.5,
    }
    _, seen = rates(tmp_path, **settings)
    # run epochs 0..7 (4 phases x 2 epochs, 8 updates each): x1 for epochs 0-1, x0.5 for 2-4,
    # x0.25 from epoch 5
    expected = [0.2 * 0.5 ** sum(m <= e for m in (2, 5)) for e in range(8) for _ in range(8)]
    assert seen == pytest.approx(expected, rel=1e-12)


def test_no_scheduler_leaves_the_rate_alone(tmp_path):
    _, seen = rates(tmp_path, **{"train.lr": 0.05})
    assert set(seen) == {0.05}


# --------------------------------------------------------------------------- augmentation


def test_augment_changes_the_training_batches_only(tmp_path):
    plain = image_run(tmp_path / "plain")
    augmented = image_run(tmp_path / "aug", **{"train.augment": "crop_flip"})
    again = image_run(tmp_path / "again", **{"train.augment": "crop_flip"})
    losses = [torch.stack(e.train_losses) for e in (plain, augmented, again)]
    assert not torch.equal(losses[0], losses[1])  # the updates saw other inputs
    assert torch.equal(losses[1], losses[2])  # ...drawn reproducibly from the seed
    pd.testing.assert_frame_equal(augmented.log.frame(), again.log.frame())
    # evaluation data is never augmented: the untrained model's evaluations are identical
    a, b = plain.log.frame(), augmented.log.frame()
    pd.testing.assert_frame_equal(a[a["step"] == 0], b[b["step"] == 0])
    # a training batch and a replayed one both go through the augmentation
    index, task = torch.arange(8), torch.zeros(8, dtype=torch.long)
    raw = augmented.data.make_batch(index, task)
    assert not torch.equal(augmented.strategy.make_batch(index, task).x, raw.x)
    assert torch.equal(plain.strategy.make_batch(index, task).x, raw.x)


# --------------------------------------------------------------------------- the update


def test_grad_clip_bounds_each_step(tmp_path):
    clip, lr = 1e-3, 0.5
    plain_sgd = {"train.lr": lr, "train.momentum": 0, "train.weight_decay": 0}
    exp = experiment(tmp_path, run=False, **plain_sgd, **{"train.grad_clip": clip})
    before = [p.detach().clone() for p in exp.model.parameters()]
    moves: list[float] = []

    def on_update(step: int) -> None:
        now = [p.detach().clone() for p in exp.model.parameters()]
        moves.append(
            math.sqrt(sum(float((a - b).pow(2).sum()) for a, b in zip(now, before, strict=True)))
        )
        before[:] = now

    exp.run(on_update=on_update)
    # plain SGD: the parameter change is lr x the clipped gradient (norm <= clip)
    assert max(moves) <= lr * clip * (1 + 1e-4)
    unclipped = experiment(tmp_path / "free", **plain_sgd)
    assert not all(
        torch.equal(p, q)
        for p, q in zip(exp.model.parameters(), unclipped.model.parameters(), strict=True)
    )


def test_fp16_trains_with_loss_scaling(tmp_path):
    exp = experiment(tmp_path, **ER, precision="fp16")
    scaler = exp.ctx.stepper.scaler
    assert scaler.is_enabled() and scaler.get_scale() > 0
    assert torch.isfinite(torch.stack(exp.train_losses)).all()
    fp32 = experiment(tmp_path / "fp32", **ER)
    assert not torch.equal(torch.stack(exp.train_losses), torch.stack(fp32.train_losses))
    assert not fp32.ctx.stepper.scaler.is_enabled()


def test_fp16_refused_where_unsupported(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(torch.amp, "is_autocast_available", lambda device_type: False)
    assert main(["run", "--quiet", *fast_overrides(tmp_path), "precision=fp16"]) == 2
    err = capsys.readouterr().err
    assert "precision" in err and "fp16" in err and "no autocast" in err
    assert not any(tmp_path.iterdir())


def test_channels_last_and_compile(tmp_path):
    exp = image_run(tmp_path, **{"train.channels_last": "true"})
    conv = next(p for p in exp.model.parameters() if p.dim() == 4)
    assert conv.is_contiguous(memory_format=torch.channels_last)
    batch = exp.data.make_batch(torch.arange(4), torch.zeros(4, dtype=torch.long))
    assert batch.x.is_contiguous(memory_format=torch.channels_last)  # inputs follow the model
    plain = image_run(tmp_path / "plain")
    # same maths, another memory layout: equal up to rounding where nothing has amplified it yet
    # (the untrained evaluations, the first loss); rounding differences then grow with training
    a, b = exp.log.frame(), plain.log.frame()
    assert (a[a["step"] == 0]["correct"] - b[b["step"] == 0]["correct"]).abs().max() <= 1
    assert float(exp.train_losses[0]) == pytest.approx(float(plain.train_losses[0]), rel=1e-4)
    compiled = experiment(tmp_path / "compiled", run=False, **{"train.compile": "true"})
    assert compiled.model._compiled_call_impl is not None


# --------------------------------------------------------------------------- resume


def test_recipe_resumes_exactly_inside_a_phase(tmp_path):
    settings = {
        "train.augment": "[crop_flip,autoaugment]",  # AutoAugment draws from the same generator
        "train.scheduler": "cosine",
        "train.warmup_epochs": 1,
        "train.grad_clip": 0.5,
        "precision": "fp16",
    }
    config = build_config(None, image_overrides(tmp_path, **settings))
    reference = Experiment(prepare(config))
    reference.run()
    ends = reference.timing.phase_end_steps
    exp = run_with_stops(config, {ends[0] + 3, ends[1] - 2}, tmp_path)  # inside phase 1, twice
    assert torch.equal(torch.stack(exp.train_losses), torch.stack(reference.train_losses))
    pd.testing.assert_frame_equal(exp.log.frame(), reference.log.frame())
    for p, q in zip(exp.model.parameters(), reference.model.parameters(), strict=True):
        assert torch.equal(p, q)


# --------------------------------------------------------------------------- refusals


@pytest.mark.parametrize(
    ("overrides", "field", "says"),
    [
        (["strategy.name=avl_naive", "precision=fp16"], "precision", "own backward"),
        (["strategy.name=avl_naive", "train.grad_clip=1"], "train.grad_clip", "own backward"),
        (["train.augment=crop_flip"], "train.augment", "vectors"),
        (["train.augment=[crop_flip,autoaugmnt]"], "train.augment", "randaugment"),
        (["train.scheduler=multistep"], "train.milestones", "at least one epoch"),
        (["train.channels_last=true"], "train.channels_last", "no convolution"),
        (["train.scheduler=linear"], "train.scheduler", "cosine"),
        (["train.milestones=[0]"], "train.milestones", "greater than or equal to 1"),
        (["train.grad_clip=-1"], "train.grad_clip", "greater than 0"),
    ],
)
def test_refused_before_a_run_starts(tmp_path, capsys, overrides, field, says):
    assert main(["run", "--quiet", *fast_overrides(tmp_path), *overrides]) == 2
    err = capsys.readouterr().err
    assert field in err and says in err, err
    assert not any(tmp_path.iterdir())


def test_recipe_defaults_keep_run_hashes(tmp_path):
    base = fast_overrides(tmp_path)
    default = config_hash(build_config(None, base))
    same = ["train.augment=none", "train.scheduler=none", "train.grad_clip=null"]
    assert config_hash(build_config(None, [*base, *same])) == default
    assert config_hash(build_config(None, [*base, "train.scheduler=cosine"])) != default
    # one spelling per augmentation: a one-name list is that name, 'none' entries drop out
    crop = config_hash(build_config(None, [*base, "train.augment=crop_flip"]))
    assert config_hash(build_config(None, [*base, "train.augment=[none,crop_flip]"])) == crop
    assert config_hash(build_config(None, [*base, "train.augment=[none]"])) == default


def test_recipe_settings_are_validated():
    with pytest.raises(ConfigError, match=r"train\.min_lr_ratio"):
        build_config(None, ["train.min_lr_ratio=1"])


@pytest.mark.slow
def test_compiled_run_trains_like_the_eager_one(tmp_path):
    """torch.compile (inductor on CPU: needs a C compiler) changes kernels, not the maths."""
    compiled = experiment(tmp_path / "compiled", **{"train.compile": "true", "train.epochs": 1})
    eager = experiment(tmp_path / "eager", **{"train.epochs": 1})
    a, b = torch.stack(compiled.train_losses), torch.stack(eager.train_losses)
    assert torch.allclose(a, b, rtol=1e-3, atol=1e-4)
