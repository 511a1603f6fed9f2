"""LwF, EWC / online EWC and SI (strategies/lwf.py, ewc.py, si.py): each penalty by hand on planted
state, the phase-end bookkeeping (teacher and old outputs, Fisher and anchors, path integral and
importance), the exact reduction to naive at weight 0, LwF against Avalanche's, and bit-identical
resumes inside a phase with BatchNorm and augmentation."""

from __future__ import annotations

import copy
from typing import Any

import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from clbench.data.stream import Batch
from clbench.engine.runner import Experiment
from clbench.strategies import ewc as ewc_module
from clbench.strategies.ewc import empirical_fisher
from tests.engine.helpers import run_with_stops
from tests.helpers import experiment
from tests.strategies.test_der import assert_same_run, fingerprint, image_experiment

# each method and the setting that weighs its regularisation
WEIGHTS = {"lwf": "alpha", "ewc": "ewc_lambda", "online_ewc": "ewc_lambda", "si": "c"}
# the image run's BatchNorm net has a Fisher up to ~57 (a BatchNorm weight): at its lr 0.05 and
# momentum 0.9 the default λ = 10 diverges (docs/methods/ewc.md), λ = 0.1 does not
RESUME_SETTINGS = {name: {"strategy.ewc_lambda": 0.1} for name in ("ewc", "online_ewc")}


def finish_phases(exp: Experiment, phases: int) -> None:
    """Move ``exp`` (built, not run; one task per phase) to the start of phase ``phases`` as the
    engine would, without training: the phase-end hooks of the phases before, then its start."""
    loop, strategy = exp.loop, exp.strategy
    for k in range(phases):
        loop.phase = loop.seen_upto = k
        strategy.after_phase(k)
    loop.phase = loop.seen_upto = phases
    strategy.before_phase(phases)


def task_batch(exp: Experiment, task: int, n: int = 16) -> Batch:
    index = exp.data.task_indices(task, "train")[:n]
    return exp.data.make_batch(index, torch.full((len(index),), task))


def kl(target: torch.Tensor, logits: torch.Tensor, t: float) -> torch.Tensor:
    """KL(softmax(target/t) ‖ softmax(logits/t)), mean over rows, written out."""
    p = torch.softmax(target / t, dim=1)
    return (p * (p.log() - torch.log_softmax(logits / t, dim=1))).sum(1).mean()


def params(model: nn.Module) -> torch.Tensor:
    return torch.nn.utils.parameters_to_vector(model.parameters()).detach().clone()


# --------------------------------------------------------------------------------------- LwF


def test_lwf_loss_is_ce_plus_alpha_kl_of_the_old_outputs_to_the_phase_start_model(tmp_path):
    alpha, t = 0.7, 3.0
    settings = {"strategy.name": "lwf", "strategy.alpha": alpha, "strategy.temperature": t}
    exp = experiment(tmp_path, run=False, **settings)
    model = exp.model
    finish_phases(exp, 2)  # tasks 0 and 1 learned: their 4 outputs are the old ones
    teacher = exp.strategy.teacher
    assert teacher is not None and not teacher.training
    assert torch.equal(params(teacher), params(model)), "the model as the phase begins"
    with torch.no_grad():  # a teacher that disagrees with the student
        teacher.head.weight.normal_(0, 3, generator=torch.Generator().manual_seed(0))
    at_start = params(teacher)
    old = exp.loop.output_mask[:2].any(0)
    assert int(old.sum()) == 4
    batch = task_batch(exp, 2)

    with torch.no_grad():
        out, target = model(batch.x), teacher(batch.x)
        ce = F.cross_entropy(out, batch.y)
        distill = kl(target[:, old], out[:, old], t)
        over_all_outputs = kl(target, out, t)
    loss = exp.strategy.observe(batch)

    assert distill > 0.05
    assert torch.allclose(loss, ce + alpha * distill, atol=1e-5)
    assert not torch.allclose(loss, ce + alpha * over_all_outputs, atol=1e-3)
    assert torch.equal(params(teacher), at_start), "the teacher does not train"
    assert not torch.equal(params(model), at_start)


def test_lwf_task_incremental_distils_each_old_task_in_its_own_softmax(tmp_path):
    """As Avalanche's multi-head branch (and the paper's one L_old per old task): a softmax over
    each old task's outputs, the terms summed; not one softmax over all old outputs."""
    t = 2.0
    settings = {"strategy.name": "lwf", "scenario.name": "task_incremental"}
    exp = experiment(tmp_path, run=False, **settings)
    finish_phases(exp, 2)
    masks = exp.loop.output_mask
    groups = [g.tolist() for g in exp.strategy.old_groups]
    assert groups == [masks[0].nonzero().flatten().tolist(), masks[1].nonzero().flatten().tolist()]
    teacher = exp.strategy.teacher
    with torch.no_grad():  # a teacher that disagrees with the student
        teacher.head.weight.normal_(0, 3, generator=torch.Generator().manual_seed(0))
    batch = task_batch(exp, 2)

    with torch.no_grad():
        out, target = exp.model(batch.x), teacher(batch.x)
        ce = F.cross_entropy(exp.data.mask_logits(out, batch.task), batch.y)
        per_task = sum(kl(target[:, masks[k]], out[:, masks[k]], t) for k in range(2))
        joint = kl(target[:, masks[:2].any(0)], out[:, masks[:2].any(0)], t)
    loss = exp.strategy.observe(batch)

    assert torch.allclose(loss, ce + per_task, atol=1e-5)
    assert not torch.allclose(loss, ce + joint, atol=1e-3)


def test_lwf_matches_avalanches_lwf_on_an_mlp(tmp_path):
    """Without BatchNorm or dropout Avalanche's train-mode teacher is this eval-mode one: the same
    distillation on the same batches gives the same records."""
    ours = experiment(tmp_path / "lwf", **{"strategy.name": "lwf"})
    avalanche = experiment(tmp_path / "avl", **{"strategy.name": "avl_lwf"})
    pd.testing.assert_frame_equal(ours.log.frame(), avalanche.log.frame(), atol=1e-5)


# --------------------------------------------------------------------------------------- EWC


def test_empirical_fisher_is_the_mean_over_samples_of_squared_per_sample_gradients():
    """By hand for BatchNorm (eval statistics) then a linear softmax layer: per-sample gradients
    of CE are (softmax − onehot) ⊗ x̂ for W, (softmax − onehot) for b, Wᵀ(softmax − onehot) for
    β, and that times (x − μ)/σ for γ. The model's mode, statistics and .grad are left alone."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.BatchNorm1d(3), nn.Linear(3, 4))
    with torch.no_grad():
        model[0].running_mean.copy_(torch.tensor([0.5, -1.0, 2.0]))
        model[0].running_var.copy_(torch.tensor([4.0, 0.25, 1.0]))
        model[0].weight.copy_(torch.tensor([1.5, -0.5, 2.0]))
        model[0].bias.copy_(torch.tensor([0.1, 0.2, -0.3]))
    x, y = torch.randn(5, 3) * 2, torch.tensor([0, 3, 1, 1, 2])
    batches = [Batch(x[:3], y[:3], y[:3] * 0, y[:3]), Batch(x[3:], y[3:], y[3:] * 0, y[3:])]
    stats = model[0].running_mean.clone()

    fisher = empirical_fisher(model, lambda logits, b: F.cross_entropy(logits, b.y), batches)

    bn, linear = model[0], model[1]
    with torch.no_grad():
        standard = (x - bn.running_mean) / torch.sqrt(bn.running_var + bn.eps)
        features = standard * bn.weight + bn.bias
        error = torch.softmax(linear(features), 1) - F.one_hot(y, 4)
        grads = {
            "1.weight": error[:, :, None] * features[:, None, :],
            "1.bias": error,
            "0.bias": error @ linear.weight,
            "0.weight": (error @ linear.weight) * standard,
        }
    for name, g in grads.items():
        assert torch.allclose(fisher[name], g.pow(2).mean(0), atol=1e-6), name
    # Avalanche's square of each batch's mean gradient is another, smaller quantity
    batch_mean = (grads["1.bias"][:3].mean(0) ** 2 + grads["1.bias"][3:].mean(0) ** 2) / 2
    assert (fisher["1.bias"] - batch_mean).min() > 1e-3
    assert model.training and torch.equal(bn.running_mean, stats)
    assert all(p.grad is None for p in model.parameters())


class _Tokens(nn.Module):
    """A Linear applied per token (3-D input): the closed form does not apply."""

    def __init__(self) -> None:
        super().__init__()
        self.embed, self.head = nn.Linear(2, 4), nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.embed(x.view(len(x), 3, 2)).mean(1))


@pytest.mark.parametrize(
    ("build", "closed_form"),
    [
        (lambda: nn.Sequential(nn.Linear(6, 5), nn.ReLU(inplace=True), nn.Linear(5, 3)), True),
        (
            lambda: nn.Sequential(
                nn.Linear(6, 5).requires_grad_(False), nn.Tanh(), nn.Linear(5, 3)
            ),
            True,
        ),
        (lambda: nn.Sequential(nn.Linear(6, 5, bias=False), nn.ReLU(), nn.Linear(5, 3)), True),
        (_Tokens, False),
    ],
    ids=["mlp_inplace_relu", "frozen_first_layer", "no_bias", "linear_on_tokens"],
)
def test_empirical_fisher_paths_equal_one_backward_per_sample(build, closed_form, monkeypatch):
    """The closed form for Linear layers (and the per-sample fallback where it does not apply)
    equals the mean of squared gradients from one backward pass per sample."""
    torch.manual_seed(0)
    model = build()
    x, y = torch.randn(7, 6), torch.tensor([0, 2, 1, 1, 2, 0, 1])
    zero = y * 0
    batches = [Batch(x[:4], y[:4], zero[:4], y[:4]), Batch(x[4:], y[4:], zero[4:], y[4:])]
    criterion = lambda logits, b: F.cross_entropy(logits, b.y)  # noqa: E731
    per_sample = []
    fallback = ewc_module._add_per_sample_squares
    monkeypatch.setattr(
        ewc_module, "_add_per_sample_squares", lambda *a: per_sample.append(fallback(*a))
    )

    fisher = empirical_fisher(model, criterion, batches)

    assert (not per_sample) == closed_form

    trainable = {n: p for n, p in model.named_parameters() if p.requires_grad}
    assert set(fisher) == set(trainable)
    expected = {n: torch.zeros_like(p) for n, p in trainable.items()}
    for i in range(len(x)):
        one = Batch(x[i : i + 1], y[i : i + 1], zero[i : i + 1], y[i : i + 1])
        grads = torch.autograd.grad(criterion(model(one.x), one), list(trainable.values()))
        for name, g in zip(trainable, grads, strict=True):
            expected[name] += g.pow(2) / len(x)
    for name in trainable:
        assert torch.allclose(fisher[name], expected[name], atol=1e-6), name
    assert all(p.grad is None for p in model.parameters())


def loop_fisher(exp: Experiment, phase: int) -> dict[str, torch.Tensor]:
    """The empirical Fisher of phase ``phase``'s samples, one backward per sample (an independent
    computation of what `empirical_fisher` does with vmap)."""
    model, strategy = exp.model, exp.strategy
    parts = exp.loop.plan.parts[phase]
    fisher = {n: torch.zeros_like(p) for n, p in model.named_parameters()}
    model.eval()
    samples = [(int(i), part.task) for part in parts for i in part.indices]
    for i, task in samples:
        one = exp.data.make_batch(torch.tensor([i]), torch.tensor([task]))
        model.zero_grad()
        strategy.criterion(model(one.x), one).backward()
        for n, p in model.named_parameters():
            fisher[n] += p.grad**2
    model.zero_grad(set_to_none=True)
    model.train()
    return {n: f / len(samples) for n, f in fisher.items()}


@pytest.mark.parametrize("name", ["ewc", "online_ewc"])
def test_phase_end_adds_a_penalty_or_folds_it_into_the_online_one(tmp_path, name):
    """At each phase end: the anchor is θ then, the Fisher that of the phase's samples; `ewc`
    keeps one pair per phase, `online_ewc` one pair with F = γ·F_before + F_new."""
    gamma = 0.5
    extra = {"strategy.decay_factor": gamma} if name == "online_ewc" else {}
    exp = experiment(tmp_path, run=False, **{"strategy.name": name} | extra)
    strategy, model = exp.strategy, exp.model
    fisher_0 = loop_fisher(exp, 0)
    exp.loop.seen_upto = 0
    strategy.after_phase(0)
    theta_0 = dict(model.named_parameters())
    theta_0 = {n: p.detach().clone() for n, p in theta_0.items()}
    with torch.no_grad():  # the weights move, as the next phase's training would move them
        for p in model.parameters():
            p.add_(0.1 * torch.randn_like(p))
    fisher_1 = loop_fisher(exp, 1)
    exp.loop.phase = exp.loop.seen_upto = 1
    strategy.after_phase(1)
    theta_1 = {n: p.detach() for n, p in model.named_parameters()}

    def same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
        return a.keys() == b.keys() and all(torch.allclose(a[n], b[n], atol=1e-7) for n in a)

    if name == "ewc":
        expected = [(theta_0, fisher_0), (theta_1, fisher_1)]
    else:
        expected = [(theta_1, {n: gamma * fisher_0[n] + fisher_1[n] for n in fisher_1})]
    assert len(strategy.anchors) == len(strategy.fishers) == len(expected)
    for anchor, fisher, (want_anchor, want_fisher) in zip(
        strategy.anchors, strategy.fishers, expected, strict=True
    ):
        assert same(anchor, want_anchor) and same(fisher, want_fisher)
    assert max(f.max() for f in fisher_1.values()) > 1e-4  # not a trivially zero Fisher


def test_ewc_loss_is_ce_plus_lambda_sum_of_fisher_weighted_squared_distances(tmp_path):
    lam = 0.5
    exp = experiment(tmp_path, run=False, **{"strategy.name": "ewc", "strategy.ewc_lambda": lam})
    strategy, model = exp.strategy, exp.model
    generator = torch.Generator().manual_seed(1)
    for _ in range(2):  # two earlier phases, planted
        strategy.consolidate(
            {
                n: p.detach() + torch.randn(p.shape, generator=generator)
                for n, p in strategy.trainable.items()
            },
            {n: torch.rand(p.shape, generator=generator) for n, p in strategy.trainable.items()},
        )
    batch = task_batch(exp, 2)

    with torch.no_grad():
        ce = F.cross_entropy(model(batch.x), batch.y)
        penalty = sum(
            (f[n] * (p - a[n]) ** 2).sum()
            for a, f in zip(strategy.anchors, strategy.fishers, strict=True)
            for n, p in model.named_parameters()
        )
    loss = strategy.observe(batch)

    assert penalty > 10 * ce
    assert torch.allclose(loss, ce + lam * penalty, rtol=1e-5)


# ---------------------------------------------------------------------------------------- SI


def test_si_path_integral_uses_the_unregularised_gradient_and_the_actual_step(tmp_path):
    """ω -= g·Δθ with g the gradient of the loss without the penalty, taken before gradient
    clipping, and Δθ what the (momentum) step did; the loss is CE + c·Σ Ω(θ − θ*)²."""
    c = 2.0
    settings = {"strategy.name": "si", "strategy.c": c, "train.momentum": 0.9}
    exp = experiment(tmp_path, run=False, **settings | {"train.grad_clip": 0.5})
    strategy, model = exp.strategy, exp.model
    generator = torch.Generator().manual_seed(2)
    for n, p in strategy.trainable.items():  # an earlier phase, planted
        strategy.importance[n] = 5 * torch.rand(p.shape, generator=generator)
        strategy.anchor[n] = p.detach() + 0.3 * torch.randn(p.shape, generator=generator)
    strategy.consolidated = True
    expected = {n: torch.zeros_like(p) for n, p in strategy.trainable.items()}
    with_penalty_gradient = {n: torch.zeros_like(p) for n, p in strategy.trainable.items()}

    for task in (2, 3):
        batch = task_batch(exp, task)
        copied = copy.deepcopy(model)
        ce = F.cross_entropy(copied(batch.x), batch.y)
        grads = torch.autograd.grad(ce, copied.parameters())
        gradient = dict(zip(strategy.trainable, grads, strict=True))
        before = {n: p.detach().clone() for n, p in strategy.trainable.items()}
        with torch.no_grad():
            pull = {n: strategy.importance[n] * (before[n] - strategy.anchor[n]) for n in before}
            penalty = sum((pull[n] * (before[n] - strategy.anchor[n])).sum() for n in before)
        total_norm = torch.cat([(gradient[n] + 2 * c * pull[n]).flatten() for n in before]).norm()
        assert total_norm > 1, "the step is clipped (train.grad_clip=0.5)"
        loss = strategy.observe(batch)
        assert torch.allclose(loss, ce.detach() + c * penalty, rtol=1e-5)
        for n, p in strategy.trainable.items():
            step = p.detach() - before[n]
            expected[n] -= gradient[n] * step
            with_penalty_gradient[n] -= (gradient[n] + 2 * c * pull[n]) * step

    for n in expected:
        assert torch.allclose(strategy.path[n], expected[n], atol=1e-7), n
    difference = [(strategy.path[n] - with_penalty_gradient[n]).abs().max() for n in expected]
    assert max(difference) > 1e-4, "the penalty's gradient is left out of ω"


def test_si_phase_end_importance_is_the_clipped_sum_of_damped_path_integrals(tmp_path):
    xi = 0.3
    exp = experiment(tmp_path, run=False, **{"strategy.name": "si", "strategy.xi": xi})
    strategy = exp.strategy
    generator = torch.Generator().manual_seed(3)
    before = {}
    for n, p in strategy.trainable.items():
        strategy.path[n] = torch.randn(p.shape, generator=generator)
        strategy.importance[n] = torch.rand(p.shape, generator=generator)
        strategy.anchor[n] = p.detach() + 0.5 * torch.randn(p.shape, generator=generator)
        before[n] = (strategy.path[n].clone(), strategy.importance[n].clone(), strategy.anchor[n])
    exp.loop.seen_upto = 0
    strategy.after_phase(0)

    negative = 0
    for n, p in strategy.trainable.items():
        path, importance, anchor = before[n]
        unclipped = importance + path / ((p.detach() - anchor) ** 2 + xi)
        negative += int((unclipped < 0).sum())
        assert torch.allclose(strategy.importance[n], unclipped.clamp(min=0), atol=1e-6), n
        assert torch.equal(strategy.anchor[n], p.detach()), "θ* moves to the phase-end θ"
        assert not strategy.path[n].any(), "ω restarts"
    assert negative > 0, "some importances were clipped at 0"
    assert strategy.consolidated


# ---------------------------------------------------------------------------------- all four


@pytest.fixture(scope="module")
def naive_run(tmp_path_factory: pytest.TempPathFactory) -> Experiment:
    return experiment(tmp_path_factory.mktemp("naive"), **{"strategy.name": "naive"})


@pytest.mark.parametrize("name", list(WEIGHTS))
def test_weight_0_is_naive_and_the_default_weight_changes_the_run(tmp_path, name, naive_run):
    off = experiment(tmp_path / "off", **{"strategy.name": name, f"strategy.{WEIGHTS[name]}": 0})
    assert_same_run(off, naive_run)
    _, default = fingerprint(experiment(tmp_path / "on", **{"strategy.name": name}))
    _, naive = fingerprint(naive_run)
    assert not all(torch.equal(a, b) for a, b in zip(default, naive, strict=True))


@pytest.mark.parametrize("name", list(WEIGHTS))
def test_stopped_and_resumed_inside_a_phase_is_bit_identical(tmp_path, name):
    """BatchNorm and crop/flip: the teacher rebuilt at the phase start, the Fisher and anchors,
    the path integral and importance in the checkpoint give the uninterrupted run's updates."""
    settings = {"strategy.name": name} | RESUME_SETTINGS.get(name, {})
    reference = image_experiment(tmp_path / "reference", **settings)
    reference.run()
    ends = reference.timing.phase_end_steps
    folder = tmp_path / "stops"
    folder.mkdir()
    exp = run_with_stops(reference.prepared.config, {ends[0] + 2, ends[1] - 3}, folder)
    assert torch.equal(torch.stack(exp.train_losses), torch.stack(reference.train_losses))
    assert_same_run(exp, reference)
    # and the state the last phase leaves (its Fisher, path integral, ...) is the same too
    assert_same_state(exp.strategy.state_dict(), reference.strategy.state_dict())


def assert_same_state(a: Any, b: Any) -> None:
    if torch.is_tensor(a):
        assert torch.equal(a, b)
    elif isinstance(a, dict):
        assert a.keys() == b.keys()
        for key in a:
            assert_same_state(a[key], b[key])
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            assert_same_state(x, y)
    else:
        assert a == b
