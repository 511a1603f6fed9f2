"""HyperInterval: interval bounds are sound, the regulariser prevents drift, entropy selection."""

from __future__ import annotations

import itertools

import pytest
import torch

from clbench.config import build_config
from clbench.engine.runner import Experiment, prepare
from clbench.interval import (
    entropy,
    hypernet_ibp,
    interval_intersection,
    interval_linear,
    interval_mlp,
    mlp_shapes,
    plain_mlp,
    split_flat,
    worst_case_logits,
)
from strategies.hyperinterval import eps_at, kappa_at
from tests.conftest import fast_overrides

TOL = 1e-4


def _random_layers(sizes, gen):
    return [
        (torch.randn(b, a, generator=gen) / a**0.5, torch.randn(b, generator=gen) * 0.1)
        for a, b in itertools.pairwise(sizes)
    ]


def _within(x, lo, up):
    return bool((x >= lo - TOL).all() and (x <= up + TOL).all())


def test_hypernet_ibp_bounds_every_layer_and_sampled_embeddings():
    gen = torch.Generator().manual_seed(0)
    layers = _random_layers([6, 20, 20, 30], gen)
    centre = torch.randn(4, 6, generator=gen)
    radius = torch.rand(4, 6, generator=gen) * 0.3
    for depth in range(1, len(layers) + 1):  # every prefix: bounds of that layer's output
        mid, rad = hypernet_ibp(layers[:depth], centre, radius)
        assert (rad >= 0).all()
        lo, up = mid - rad, mid + rad
        assert _within(mid, lo, up)
        for _ in range(200):
            e = centre + (2 * torch.rand(centre.shape, generator=gen) - 1) * radius
            out = hypernet_ibp(layers[:depth], e, torch.zeros_like(e))[0]  # plain forward
            assert _within(out, lo, up)


@pytest.mark.parametrize("nonneg_input", [True, False])
def test_interval_mlp_bounds_every_layer_and_sampled_weights(nonneg_input):
    gen = torch.Generator().manual_seed(1)
    sizes = [12, 16, 16, 3]
    mid = [p for w, b in _random_layers(sizes, gen) for p in (w, b)]
    rad = [torch.rand(p.shape, generator=gen) * 0.05 for p in mid]
    lower = [m - r for m, r in zip(mid, rad, strict=True)]
    upper = [m + r for m, r in zip(mid, rad, strict=True)]
    x = torch.rand(32, 12, generator=gen) if nonneg_input else torch.randn(32, 12, generator=gen)
    # layer by layer: lower <= centre <= upper
    z = (x, x, x)
    n_layers = len(mid) // 2
    for k in range(n_layers):
        z = interval_linear(
            z,
            (lower[2 * k], mid[2 * k], upper[2 * k]),
            (lower[2 * k + 1], mid[2 * k + 1], upper[2 * k + 1]),
            relu=k < n_layers - 1,
        )
        assert _within(z[1], z[0], z[2])
    zl, zm, zu = interval_mlp(x, lower, mid, upper)
    assert torch.allclose(zm, plain_mlp(x, mid), atol=1e-5)
    for _ in range(200):
        sample = [
            lo + torch.rand(lo.shape, generator=gen) * (up - lo)
            for lo, up in zip(lower, upper, strict=True)
        ]
        assert _within(plain_mlp(x, sample), zl, zu)
    # corner weights are attained: the bounds are tight on point inputs for a single layer
    z1 = interval_linear((x, x, x), (lower[0], mid[0], upper[0]), (lower[1], mid[1], upper[1]))
    corner = torch.where(x[0] >= 0, lower[0], upper[0])
    assert torch.allclose(z1[0][0], corner @ x[0] + lower[1], atol=1e-5)


def test_hypernet_to_target_chain_is_sound():
    """Embeddings in the box -> weights in [θL, θU] -> logits in [zL, zU]."""
    gen = torch.Generator().manual_seed(2)
    shapes = mlp_shapes([10, 8, 2])
    n = sum(int(s.numel()) for s in shapes)
    layers = _random_layers([5, 16, n], gen)
    e, r = torch.randn(1, 5, generator=gen), torch.full((1, 5), 0.05)
    mid, rad = hypernet_ibp(layers, e, r)
    bounds = [split_flat(t[0], shapes) for t in (mid - rad, mid, mid + rad)]
    x = torch.rand(16, 10, generator=gen)
    zl, _zm, zu = interval_mlp(x, *bounds)
    for _ in range(100):
        sample = e + (2 * torch.rand(e.shape, generator=gen) - 1) * r
        w = hypernet_ibp(layers, sample, torch.zeros_like(sample))[0][0]
        assert _within(w, (mid - rad)[0], (mid + rad)[0])
        assert _within(plain_mlp(x, split_flat(w, shapes)), zl, zu)


def test_schedules_and_helpers():
    assert kappa_at(0, 500, "official", 0.5, 5e-5) == 1.0
    assert kappa_at(499, 500, "official", 0.5, 5e-5) == pytest.approx(1 - 5e-5 * 499)
    assert kappa_at(500, 500, "official", 0.5, 5e-5) == 0.5  # the jump (D.3.b)
    assert kappa_at(250, 500, "linear_to_final", 0.5, 5e-5) == pytest.approx(0.75)
    assert eps_at(0, 500, 1.0) == 0.0 and eps_at(499, 500, 1.0) == pytest.approx(1.0)
    assert eps_at(900, 500, 2.0) == 2.0
    zl, zu = torch.tensor([[0.0, 1.0]]), torch.tensor([[2.0, 3.0]])
    assert worst_case_logits(zl, zu, torch.tensor([1])).tolist() == [[2.0, 1.0]]
    centre, radius, empty = interval_intersection(
        torch.tensor([[0.0, 0.0], [1.0, 5.0]]), torch.tensor([[1.0, 1.0], [0.5, 1.0]])
    )
    assert centre.tolist() == [0.75, 2.5] and radius.tolist() == [0.25, 0.0]
    assert empty.tolist() == [False, True]


def _experiment(tmp_path, **extra):
    overrides = {
        "strategy.name": "hyperinterval",
        "scenario.name": "task_incremental",
        "scenario.n_experiences": 3,
        "data.num_classes": 6,
        "train.epochs": 4,
        "threads": 1,
        "strategy.hnet_hidden": "[16]",
        "strategy.target_hidden": "[16]",
        "strategy.embedding_dim": 8,
        **extra,
    }
    return Experiment(prepare(build_config(None, fast_overrides(tmp_path, **overrides))))


def _run_tracking_task0(exp):
    """Run; return task 0's middle weights after its own phase and at the end."""
    strategy = exp.strategy
    snapshots = {}
    original = strategy.after_phase

    def after_phase(k):
        original(k)
        if k == 0:
            with torch.no_grad():
                snapshots["after"] = torch.cat([p.flatten() for p in strategy._middle_params(0)])

    strategy.after_phase = after_phase
    exp.run()
    with torch.no_grad():
        end = torch.cat([p.flatten() for p in strategy._middle_params(0)])
    return snapshots["after"], end


def test_regulariser_prevents_drift(tmp_path):
    drift = {}
    for beta in (0.0, 50.0):
        exp = _experiment(tmp_path / str(beta), **{"strategy.beta": beta})
        after, end = _run_tracking_task0(exp)
        drift[beta] = float((end - after).norm() / after.norm())
    assert drift[0.0] > 0.05, drift
    assert drift[50.0] < 0.1 * drift[0.0], drift


def test_entropy_selection_picks_the_confident_task(tmp_path):
    exp = _experiment(tmp_path, **{"scenario.name": "class_incremental", "train.epochs": 1})
    exp.run()
    s = exp.strategy
    assert s._use_entropy() and s.learned == [0, 1, 2]
    x = torch.zeros(3, 16)
    x[:, 0] = torch.tensor([0.0, 1.0, 2.0])  # row i "belongs" to task i
    confident = torch.tensor([[6.0, -6.0]])

    def fake_logits(inp, task, bounds=False):
        out = torch.zeros(inp.shape[0], 2)
        out[inp[:, 0] == task] = confident
        return out

    s._task_logits = fake_logits
    ids, _local = s.select_tasks(x)
    assert ids.tolist() == [0, 1, 2]
    logits = s.predict(x, torch.zeros(3, dtype=torch.long))
    expected = [s.ctx.plan.tasks[t].output_ids[0] for t in range(3)]
    assert logits.argmax(1).tolist() == expected
    assert entropy(torch.tensor([[6.0, -6.0]])) < entropy(torch.tensor([[0.0, 0.0]]))


def test_engine_smoke_task_incremental_with_universal_report(tmp_path):
    exp = _experiment(tmp_path, **{"train.epochs": 2})
    exp.run()
    rep = exp.strategy.report()
    assert rep["inference"] == "task"
    uni = rep["universal"]
    assert len(uni["per_task_acc"]) == 3 and 0 <= uni["mean_acc"] <= 1
    frame = exp.log.frame()
    final = frame[(frame.kind == "full") & (frame.step == frame.step.max())]
    assert (final.correct / final.n).mean() > 0.6


def test_state_dict_round_trip(tmp_path):
    exp = _experiment(tmp_path / "a", **{"train.epochs": 1})
    exp.run()
    fresh = _experiment(tmp_path / "b", **{"train.epochs": 1, "seed": 1})
    fresh.strategy.load_state_dict(exp.strategy.state_dict())
    x = torch.randn(5, 16)
    task = torch.tensor([0, 1, 2, 0, 1])
    with torch.inference_mode():
        assert torch.equal(exp.strategy.predict(x, task), fresh.strategy.predict(x, task))
    assert fresh.strategy.report()["universal"] == exp.strategy.report()["universal"]
