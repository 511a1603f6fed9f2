"""HyperInterval: interval bounds are sound, the regulariser prevents drift, entropy selection."""

from __future__ import annotations

import copy
import itertools

import pytest
import torch
import torch.nn.functional as F

from clbench.config import build_config
from clbench.engine.checkpoint import (
    Checkpointer,
    load_checkpoint,
    save_checkpoint,
)
from clbench.engine.run_dir import CHECKPOINT_FILE
from clbench.engine.runner import Experiment, prepare
from clbench.errors import ConfigError
from clbench.strategies.hyperinterval import eps_at, kappa_at
from clbench.strategies.hyperinterval.interval import (
    entropy,
    hypernet_ibp,
    interval_conv2d,
    interval_intersection,
    interval_linear,
    interval_mlp,
    mlp_shapes,
    plain_mlp,
    relaxed_three_pass,
    split_flat,
    worst_case_logits,
)
from clbench.strategies.hyperinterval.targets import CNNTarget
from tests.helpers import fast_overrides

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
    assert kappa_at(500, 500, "official", 0.5, 5e-5) == 0.5  # the official jump
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


def _with_defaults(extra):
    return {
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


def _experiment(tmp_path, **extra):
    overrides = fast_overrides(tmp_path, **_with_defaults(extra))
    return Experiment(prepare(build_config(None, overrides)))


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


@pytest.mark.parametrize("variant", ["standard", "nested"])
def test_regulariser_prevents_drift(tmp_path, variant):
    drift = {}
    for beta in (0.0, 50.0):
        exp = _experiment(
            tmp_path / str(beta), **{"strategy.beta": beta, "strategy.variant": variant}
        )
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


# ---------------------------------------------------------------------------- CNN target
def _box(params, gen, scale=0.05):
    rad = [torch.rand(p.shape, generator=gen) * scale for p in params]
    return [m - r for m, r in zip(params, rad, strict=True)], [
        m + r for m, r in zip(params, rad, strict=True)
    ]


def _sample(lower, upper, gen):
    return [
        lo + torch.rand(lo.shape, generator=gen) * (up - lo)
        for lo, up in zip(lower, upper, strict=True)
    ]


@pytest.mark.parametrize("nonneg_input", [True, False])
def test_interval_conv2d_bounds_sampled_weights(nonneg_input):
    gen = torch.Generator().manual_seed(3)
    w, b = torch.randn(5, 2, 3, 3, generator=gen) / 3, torch.randn(5, generator=gen) * 0.1
    (wl, bl), (wu, bu) = _box([w, b], gen, 0.1)
    x = torch.rand(4, 2, 6, 6, generator=gen)
    if not nonneg_input:
        x = x - 0.5
    # an input interval too (as after a previous layer): x ± 0.05
    xi = (x - 0.05, x, x + 0.05)
    zl, zm, zu = interval_conv2d(xi, (wl, w, wu), (bl, b, bu), padding=1, relu=True)
    assert torch.allclose(zm, torch.relu(F.conv2d(x, w, b, padding=1)), atol=1e-6)
    assert _within(zm, zl, zu)
    for _ in range(100):
        ws, bs = _sample([wl, bl], [wu, bu], gen)
        xs = x + (2 * torch.rand(x.shape, generator=gen) - 1) * 0.05
        assert _within(torch.relu(F.conv2d(xs, ws, bs, padding=1)), zl, zu)
    # point input, single weight corner: the lower bound is attained (tight)
    pl, _pm, _pu = interval_conv2d((x, x, x), (wl, w, wu), (bl, b, bu), padding=1)
    corner_sum = F.conv2d(x.clamp(min=0), wl, padding=1) + F.conv2d(x.clamp(max=0), wu, padding=1)
    assert torch.allclose(pl, corner_sum + bl.view(1, -1, 1, 1), atol=1e-5)


def _cnn_params(target, gen):
    return [torch.randn(s, generator=gen) * 0.3 for s in target.shapes]


def test_cnn_target_ibp_is_sound_on_sampled_weights():
    gen = torch.Generator().manual_seed(4)
    target = CNNTarget((3, 8, 8), [4, 6], [10], 3, bounds="ibp")
    mid = _cnn_params(target, gen)
    lower, upper = _box(mid, gen, 0.03)
    x = torch.rand(5, 3, 8, 8, generator=gen)
    zl, zm, zu = target.bounds(x, lower, mid, upper)
    assert zm.shape == (5, 3)
    assert torch.allclose(zm, target.forward(x, mid), atol=1e-5)
    assert _within(zm, zl, zu)
    for _ in range(100):
        assert _within(target.forward(x, _sample(lower, upper, gen)), zl, zu)


def test_relaxed_three_pass_is_the_official_partial_ordering_and_not_sound():
    pl = torch.tensor([1.0, 3.0, 2.0, 3.0])
    pm = torch.tensor([2.0, 1.0, 3.0, 2.0])
    pu = torch.tensor([3.0, 2.0, 1.0, 1.0])
    zl, zm, zu = relaxed_three_pass(pl, pm, pu)
    # a = min(pL, pM); b = max(pL, pM); (a, min(b, pU), max(b, pU))  (reverse_predictions)
    assert zl.tolist() == [1.0, 1.0, 2.0, 2.0]
    assert zm.tolist() == [2.0, 2.0, 1.0, 1.0]
    assert zu.tolist() == [3.0, 3.0, 3.0, 3.0]
    assert (zl <= zu).all() and (zm <= zu).all()  # what the ordering guarantees
    # where pU is the smallest pass, lower > middle and pU escapes [lower, upper]: not a sort
    assert zl[2] > zm[2] and pu[3] < zl[3]
    gen = torch.Generator().manual_seed(5)
    passes = torch.randn(3, 1000, generator=gen)
    zl, zm, zu = relaxed_three_pass(*passes)
    smallest_upper = passes[2] < passes[:2].min(0).values
    assert (zl <= zu).all() and (zm <= zu).all()
    assert (zl[~smallest_upper] <= zm[~smallest_upper]).all()
    # CNN path: the relaxed triple is exactly the ordering of three ordinary passes
    target = CNNTarget((1, 8, 8), [4], [8], 2, bounds="relaxed")
    mid = _cnn_params(target, gen)
    lower, upper = _box(mid, gen, 0.05)
    x = torch.rand(6, 1, 8, 8, generator=gen)
    got = target.bounds(x, lower, mid, upper)
    want = relaxed_three_pass(*(target.forward(x, p) for p in (lower, mid, upper)))
    assert all(torch.equal(a, b) for a, b in zip(got, want, strict=True))
    assert (got[0] <= got[2]).all() and (got[1] <= got[2]).all()


def _image_overrides(**extra):
    return {
        "data.image_size": 8,
        "data.dim": 64,
        "strategy.target": "cnn",
        "strategy.cnn_channels": "[4, 8]",
        "strategy.cnn_fc_hidden": "[16]",
        **extra,
    }


# sound IBP through convolutions gives much wider logit intervals than the relaxed ordering, so
# with ~30 updates per task it needs a smaller ε to learn (ε = 1 stays at chance for both here)
@pytest.mark.parametrize(("cnn_bounds", "eps"), [("relaxed", 0.1), ("ibp", 0.02)])
def test_engine_smoke_cnn_target_learns(tmp_path, cnn_bounds, eps):
    overrides = {"strategy.cnn_bounds": cnn_bounds, "strategy.eps": eps, "strategy.lr": 0.005}
    exp = _experiment(tmp_path, **_image_overrides(**overrides))
    exp.run()
    s = exp.strategy
    rep = s.report()
    assert rep["target"] == f"cnn ({cnn_bounds} bounds)"
    # conv 1→4, 4→8 (3×3) + FC 8·2·2→16→2
    assert rep["target_params"] == (4 * 9 + 4) + (8 * 4 * 9 + 8) + (32 * 16 + 16) + (16 * 2 + 2)
    x = s._inputs(s.data.make_batch(torch.arange(8), torch.zeros(8, dtype=torch.long)).x)
    assert x.shape == (8, 1, 8, 8)
    zl, zm, zu = s._task_logits(x, 0, bounds=True)
    assert (zl <= zu).all() and (zm <= zu + TOL).all()
    frame = exp.log.frame()
    final = frame[(frame.kind == "full") & (frame.step == frame.step.max())]
    assert (final.correct / final.n).mean() > 0.9


def test_cnn_target_configuration_errors(tmp_path):
    with pytest.raises(ConfigError, match=r"strategy\.target: got 'cnn'"):
        _experiment(tmp_path / "a", **{"strategy.target": "cnn"})  # vector data
    with pytest.raises(ConfigError, match=r"strategy\.cnn_channels.*at most 3 convolutions"):
        _experiment(tmp_path / "b", **_image_overrides(**{"strategy.cnn_channels": "[2,2,2,2]"}))
    with pytest.raises(ConfigError, match=r"strategy\.cnn_bounds"):
        _experiment(tmp_path / "c", **_image_overrides(**{"strategy.cnn_bounds": "sound"}))


# ---------------------------------------------------------------------------- nested variant
def test_nested_variant_boxes_share_a_core_and_universal_embedding(tmp_path):
    eps, m = 2.0, 8
    exp = _experiment(
        tmp_path, **{"strategy.variant": "nested", "strategy.eps": eps, "train.epochs": 2}
    )
    s = exp.strategy
    assert s.config.custom_init is True  # resolved from the variant (official custom_init)
    seen = {}
    original = s.before_phase

    def before_phase(k):
        original(k)
        seen[k] = s.embeddings[k].detach().clone()
        if k > 0:
            assert torch.equal(seen[k], s.embeddings[k - 1].detach())  # copy of e_{t-1}
            assert next(iter(s.reg_targets.values())).shape[0] == 3  # lower, middle, upper

    s.before_phase = before_phase
    rho0 = [r.detach().clone() for r in s.rhos]
    exp.run()
    assert all(torch.equal(a, b.detach()) for a, b in zip(rho0, s.rhos, strict=True))  # fixed
    assert not torch.equal(seen[0], s.embeddings[0].detach())  # e_t trained
    sigma = eps / (2 * m)
    centres = torch.stack([s._centre(t, eps).detach() for t in range(3)])
    assert torch.allclose(centres, sigma * torch.cos(torch.stack(list(s.embeddings))).detach())
    radius = s._radius(0, eps).detach()
    assert torch.allclose(radius, torch.full((m,), eps / m))
    # every box contains [−σ, σ]^M, so the intersection is never empty
    assert ((centres - radius) <= -sigma + 1e-6).all() and (
        (centres + radius) >= sigma - 1e-6
    ).all()
    centre, half, empty = s.universal_embedding()
    assert not empty.any() and (half >= sigma - 1e-6).all()
    lo, up = (centres - radius).max(0).values, (centres + radius).min(0).values
    assert torch.allclose(centre, (lo + up) / 2)  # the midpoint, fed without the cos map
    uni = s.report()["universal"]
    assert uni["empty_coordinates"] == 0 and len(uni["per_task_acc"]) == 3
    assert uni["mean_acc"] > 0.5
    frame = exp.log.frame()
    final = frame[(frame.kind == "full") & (frame.step == frame.step.max())]
    assert (final.correct / final.n).mean() > 0.6


def test_standard_variant_trains_rho_and_does_not_copy_embeddings(tmp_path):
    exp = _experiment(tmp_path, **{"train.epochs": 1})
    s = exp.strategy
    assert s.config.custom_init is False
    e1 = s.embeddings[1].detach().clone()
    rho0 = s.rhos[0].detach().clone()
    exp.run()
    assert not torch.equal(rho0, s.rhos[0].detach())
    assert not torch.equal(s.embeddings[1].detach(), s.embeddings[0].detach())
    assert not torch.equal(e1, s.embeddings[0].detach())


# ---------------------------------------------------------------------------- model selection
def test_heldout_split_and_val_size_error(tmp_path):
    exp = _experiment(tmp_path / "a", **{"strategy.selection": "official", "strategy.val_size": 7})
    s = exp.strategy
    for k, phase in enumerate(s.ctx.plan.phases):
        (part,) = s.training_parts(k)
        (orig,) = phase.parts
        held = s.heldout[part.task]
        assert len(held) == 7 and len(part.indices) == len(orig.indices) - 7
        assert set(part.indices) | set(held) == set(orig.indices)
        assert not set(part.indices) & set(held)
    too_big = fast_overrides(tmp_path / "b", **_with_defaults({"strategy.selection": "official"}))
    with pytest.raises(ConfigError, match=r"strategy\.val_size: got 500; allowed: fewer than"):
        prepare(build_config(None, too_big))  # refused before any work
    # the nested variant selects on training loss: nothing held out
    nested = _experiment(
        tmp_path / "c", **{"strategy.selection": "official", "strategy.variant": "nested"}
    )
    assert nested.strategy.heldout == {}


def _flat_hnet(s):
    return torch.cat([p.detach().flatten() for p in s.hnet.parameters()])


@pytest.mark.parametrize("selection", ["official", "after_warmup"])
def test_selection_restores_the_best_validation_iterate(tmp_path, selection):
    exp = _experiment(
        tmp_path,
        **{
            "strategy.selection": selection,
            "strategy.val_size": 10,
            "strategy.val_every": 2,
            "train.epochs": 3,
        },
    )
    s = exp.strategy
    peak = {}
    history = {}

    def fake_accuracy(eps):  # peaks at a fixed iteration of each phase (2/3 of it)
        target = 2 * (s.n_updates // 3)
        history[s.it] = (_flat_hnet(s), s.embeddings[s.current[0]].detach().clone(), eps)
        return -abs(s.it - target)

    s.validation_accuracy = fake_accuracy
    original = s.after_phase

    def after_phase(k):
        peak[k] = (dict(history), s.n_updates, _flat_hnet(s))
        history.clear()
        original(k)

    s.after_phase = after_phase
    exp.run()
    for k, (hist, n, last) in peak.items():
        best = 2 * (n // 3)
        kept = s.selected[k]["iteration"]
        if selection == "official" or hist[best][2] >= s.config.eps:
            assert kept == best
        assert all(it % 2 == 0 or it == n for it in hist)
        if selection == "after_warmup":
            assert all(e >= s.config.eps for _, _, e in hist.values())
        # the live networks are the kept iterate's, not the last one
        assert not torch.equal(hist[kept][0], last)
        if k == len(peak) - 1:
            assert torch.equal(_flat_hnet(s), hist[kept][0])
            assert torch.equal(s.embeddings[k].detach(), hist[kept][1])


def test_nested_selection_keeps_lowest_training_loss_after_warmup(tmp_path):
    exp = _experiment(
        tmp_path,
        **{
            "strategy.variant": "nested",
            "strategy.selection": "official",
            "strategy.val_every": 1,
            "train.epochs": 3,
        },
    )
    s = exp.strategy
    losses = {}
    original = s.observe

    def observe(batch):
        loss = original(batch)
        n_half = s.n_updates // 2
        if s.it - 1 >= n_half - 1:  # iterations trained at the full ε
            losses.setdefault(len(s.learned), {})[s.it] = float(loss)
        return loss

    s.observe = observe
    exp.run()
    for k, per_it in losses.items():
        best_it = min(per_it, key=lambda it: (per_it[it], it))
        assert s.selected[k]["iteration"] == best_it
        assert s.selected[k]["score"] == pytest.approx(-per_it[best_it])


# ---------------------------------------------------------------------------- resume contract
def _phase_batch_list(exp, k):
    cfg = exp.prepared.config
    batches = exp.strategy.phase_batches(
        exp.strategy.training_parts(k),
        cfg.train.batch_size,
        exp.data_generator,
        cfg.train.drop_last,
    )
    return [b for _ in range(cfg.train.epochs) for b in batches.epoch()]


def _observe(exp, batches):
    return [exp.strategy.observe(exp.data.make_batch(i, t)) for i, t in batches]


def _snapshot(s):
    return torch.cat(
        [_flat_hnet(s), *[e.detach() for e in s.embeddings], *[r.detach() for r in s.rhos]]
    )


@pytest.mark.parametrize(
    "extra",
    [
        {"strategy.selection": "official", "strategy.val_size": 10, "strategy.val_every": 3},
        {"strategy.variant": "nested", "strategy.selection": "official", "strategy.val_every": 2},
        {**_image_overrides(**{"strategy.cnn_channels": "[4]"}), "strategy.beta": 1.0},
    ],
    ids=["standard-official", "nested", "cnn"],
)
def test_resume_mid_phase_is_bit_identical(tmp_path, extra):
    settings = {"scenario.n_experiences": 2, "data.num_classes": 4, "train.epochs": 3, **extra}
    ref = _experiment(tmp_path / "ref", **settings)
    s = ref.strategy
    s.before_phase(0)
    _observe(ref, _phase_batch_list(ref, 0))
    s.after_phase(0)
    phase_start = copy.deepcopy(s.state_dict())
    s.before_phase(1)
    batches = _phase_batch_list(ref, 1)
    cut = len(batches) // 2 + 1
    _observe(ref, batches[:cut])
    mid_phase = copy.deepcopy(s.state_dict())
    assert mid_phase["it"] == cut and mid_phase["optimizer"]["state"]
    ref_losses = _observe(ref, batches[cut:])
    s.after_phase(1)

    fresh = _experiment(tmp_path / "resumed", **settings)
    r = fresh.strategy
    r.load_state_dict(phase_start)
    r.before_phase(1)
    r.load_state_dict(mid_phase)
    losses = _observe(fresh, batches[cut:])
    r.after_phase(1)
    assert torch.equal(torch.stack(losses), torch.stack(ref_losses))
    assert torch.equal(_snapshot(r), _snapshot(s))
    assert r.report() == s.report()
    x = r._inputs(r.data.make_batch(torch.arange(6), torch.zeros(6, dtype=torch.long)).x)
    x = x * 0 + torch.rand(x.shape, generator=torch.Generator().manual_seed(0))
    task = torch.tensor([0, 1, 0, 1, 0, 1])
    with torch.no_grad():
        assert torch.equal(r.predict(x, task), s.predict(x, task))
    # without the optimizer state the continuation differs (the test can see a lost Adam)
    broken = _experiment(tmp_path / "broken", **settings)
    b = broken.strategy
    b.load_state_dict(phase_start)
    b.before_phase(1)
    state = copy.deepcopy(mid_phase)
    state["optimizer"]["state"] = {}
    b.load_state_dict(state)
    assert not torch.equal(torch.stack(_observe(broken, batches[cut:])), torch.stack(ref_losses))


class _KeepingCheckpointer(Checkpointer):
    """Keeps every checkpoint, round-tripped through the real file format."""

    def __init__(self, tmp_path, every):
        super().__init__(tmp_path / CHECKPOINT_FILE, every, at_phase_end=True)
        self.saved = []

    def save(self, checkpoint):
        save_checkpoint(self.path, checkpoint)
        self.saved.append(load_checkpoint(self.path))


@pytest.mark.parametrize(
    "extra",
    [
        {"strategy.selection": "official", "strategy.val_size": 10, "strategy.val_every": 3},
        {"strategy.variant": "nested", "strategy.selection": "after_warmup"},
        _image_overrides(**{"strategy.cnn_channels": "[4]"}),
    ],
    ids=["standard-official", "nested", "cnn"],
)
def test_engine_checkpoint_mid_phase_resumes_bit_identically(tmp_path, extra):
    """The engine's own resume path (phase-start state, before_phase, current state)."""
    settings = {"scenario.n_experiences": 2, "data.num_classes": 4, "train.epochs": 3, **extra}
    config = build_config(None, fast_overrides(tmp_path, **_with_defaults(settings)))
    ref = Experiment(prepare(config))
    saver = _KeepingCheckpointer(tmp_path, every=5)
    ref.run(checkpointer=saver)
    inside = [c for c in saver.saved if c[0].in_phase and c[0].phase > 0]
    assert inside
    position, checkpoint = inside[len(inside) // 2]
    resumed = Experiment(prepare(config))
    resumed.restore(position, checkpoint)
    resumed.run()
    assert torch.equal(_snapshot(resumed.strategy), _snapshot(ref.strategy))
    assert resumed.strategy.report() == ref.strategy.report()
    assert resumed.log.frame().equals(ref.log.frame())
