"""View-Batch Model (a plugin): sampler schedule, KL term, augmentation, composition with er /
naive."""

from __future__ import annotations

import pytest
import torch

from clbench.config import build_config
from clbench.data.augment import build_augment
from clbench.data.batches import PhaseBatches
from clbench.data.stream import Batch
from clbench.engine.runner import Experiment, prepare
from clbench.errors import ConfigError
from clbench.scenario.plan import PhasePart
from clbench.strategies.view_batch import ViewBatches, view_groups
from tests.helpers import fast_overrides, spy_observed_indices


def parts(n: int) -> list[PhasePart]:
    return [PhasePart(task=0, indices=tuple(range(100, 100 + n)))]


def run(tmp_path, **extra) -> Experiment:
    config = build_config(None, fast_overrides(tmp_path, threads=1, **extra))
    exp = Experiment(prepare(config))
    exp.run()
    return exp


@pytest.mark.parametrize("n", [96, 100, 37])
def test_sampler_views_adjacent_and_one_cycle_covers_each_sample_once(n):
    v, bs = 4, 16
    g = torch.Generator().manual_seed(0)
    vb = ViewBatches(parts(n), bs, g, drop_last=False, views=v)
    base = PhaseBatches(parts(n), bs, torch.Generator().manual_seed(0))
    assert len(vb) == len(base)
    for _cycle in range(2):
        seen = []
        for _epoch in range(v):
            batches = list(vb.epoch())
            assert len(batches) == len(base)  # same number of updates as the base
            epoch_index = torch.cat([i for i, _ in batches])
            for index, task in batches:
                assert len(index) <= bs and len(index) % v == 0 and (task == 0).all()
                groups = index.view(-1, v)  # each unique sample as V adjacent copies
                assert (groups == groups[:, :1]).all()
                assert groups[:, 0].unique().numel() == groups.shape[0]
            counts = torch.bincount(epoch_index)[epoch_index]
            assert (counts == v).all()  # each index exactly V times in its epoch
            if n % v == 0:
                assert len(epoch_index) == n  # same samples per epoch as the base
            seen.append(epoch_index.unique())
        cycle = torch.cat(seen)
        assert cycle.numel() == n and cycle.unique().numel() == n  # once per V epochs
        assert set(cycle.tolist()) == set(range(100, 100 + n))


def test_sampler_drop_last_and_batch_size_check():
    vb = ViewBatches(parts(50), 16, torch.Generator().manual_seed(0), drop_last=True, views=4)
    assert len(vb) == 3
    assert all(len(i) == 16 for i, _ in vb.epoch())
    with pytest.raises(ConfigError, match="batch_size"):
        ViewBatches(parts(50), 10, torch.Generator(), drop_last=False, views=4)


def test_view_groups_by_index_not_label():
    index = torch.tensor([5, 5, 5, 7, 7, 2])
    first, group, level = view_groups(index)
    assert first.tolist() == [True, False, False, True, False, True]
    assert group.tolist() == [0, 0, 0, 1, 1, 2]
    assert level.tolist() == [0, 1, 2, 0, 1, 0]


def _plugin(tmp_path, **extra):
    """The View-Batch plugin of an ER experiment, at the start of phase 0 (its tasks seen)."""
    config = build_config(
        None,
        fast_overrides(tmp_path, **{"strategy.name": "er", "plugins.view_batch": "{}", **extra}),
    )
    exp = Experiment(prepare(config))
    (plugin,) = exp.plugins
    exp.loop.seen_upto = 0  # as the engine sets it when phase 0 starts
    plugin.before_phase(exp.loop)
    return plugin


@pytest.mark.parametrize("norm", ["per_sample", "official_seen_classes"])
def test_kl_is_zero_for_identical_views_and_has_gradient_otherwise(tmp_path, norm):
    s = _plugin(tmp_path, **{"plugins.view_batch.kl_normalisation": norm})
    index = torch.tensor([3, 3, 3, 3, 9, 9, 9, 9])
    batch = Batch(
        x=torch.zeros(8, 16), y=torch.zeros(8, dtype=torch.long), task=index * 0, index=index
    )
    same = torch.randn(2, 1, 8).expand(2, 4, 8).reshape(8, 8).clone().requires_grad_()
    assert s.ssl_loss(same, batch).abs().item() < 1e-6
    differ = torch.randn(8, 8, requires_grad=True)
    loss = s.ssl_loss(differ, batch)
    assert loss.item() > 0
    loss.backward()
    grad = differ.grad.abs().sum(1)
    assert (grad[[1, 2, 3, 5, 6, 7]] > 0).all()
    assert (grad[[0, 4]] == 0).all()  # the first view is a detached target


def test_kl_handles_task_il_masks(tmp_path):
    s = _plugin(tmp_path, **{"scenario.name": "task_incremental"})
    index = torch.tensor([1, 1, 2, 2])
    batch = Batch(torch.zeros(4, 16), torch.zeros(4, dtype=torch.long), index * 0, index)
    loss = s.ssl_loss(torch.randn(4, 8, requires_grad=True), batch)
    assert torch.isfinite(loss) and loss.item() > 0


@pytest.mark.parametrize(
    ("policy", "shape"),
    [("autoaugment", (3, 32, 32)), ("light", (1, 28, 28)), ("light", (1, 8, 8)), ("vector", (16,))],
)
def test_augment_is_seeded_batched_and_changes_inputs(policy, shape):
    aug = build_augment(policy, shape, mean=[0.5] * shape[0], std=[0.25] * shape[0])
    x = torch.randn(64, *shape)
    a = aug(x, torch.Generator().manual_seed(1))
    b = aug(x, torch.Generator().manual_seed(1))
    c = aug(x, torch.Generator().manual_seed(2))
    assert a.shape == x.shape and torch.isfinite(a).all()
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    changed = (a - x).flatten(1).abs().amax(1) > 1e-4
    assert changed.float().mean() > 0.5


def test_auto_policy_picks_by_shape():
    x = torch.randn(4, 16)
    assert build_augment("auto", (16,), [0.0], [1.0])(x, torch.Generator()).shape == x.shape


def test_plugin_params_validated_under_plugins(tmp_path):
    with pytest.raises(ConfigError, match=r"plugins\.view_batch\.bogus"):
        build_config(
            None,
            fast_overrides(tmp_path, **{"strategy.name": "er", "plugins.view_batch.bogus": 1}),
        )
    config = build_config(
        None, fast_overrides(tmp_path, **{"strategy.name": "er", "plugins.view_batch": "{}"})
    )
    assert config.strategy["name"] == "er" and config.strategy["buffer_size"] == 200
    assert config.plugins["view_batch"]["views"] == 4  # the plugin's defaults, resolved
    assert list(config.plugins) == ["view_batch"]


@pytest.mark.parametrize("base", ["er", "naive"])
def test_composes_end_to_end_with_equal_compute(tmp_path, base):
    common = {"train.epochs": 4, "plugins.view_batch.ssl_start_epoch": 0}
    plain = run(tmp_path / "p", **{"strategy.name": base, "train.epochs": 4})
    config = build_config(
        None,
        fast_overrides(tmp_path / "v", threads=1, **{"strategy.name": base, **common}),
    )
    exp = Experiment(prepare(config))
    seen = spy_observed_indices(exp)
    exp.run()
    assert exp.timing.updates == plain.timing.updates
    assert exp.timing.samples_seen == plain.timing.samples_seen
    # the strategy really gets view-batches: B/V unique indices, each V times
    assert seen and all(i.view(-1, 4).unique(dim=0).shape[0] == len(i) // 4 for i in seen)
    report = exp.report()["view_batch"]
    assert report["ssl_terms"] > 0 and report["ssl_mean"] > 0
    acc = exp.log.frame()
    assert len(acc) > 0


def test_er_buffer_draws_are_view_batched(tmp_path):
    exp = run(tmp_path, **{"strategy.name": "er", "plugins.view_batch": "{}", "train.epochs": 1})
    s = exp.strategy
    memory = s.memory()
    assert memory is s.buffer and len(memory) > 0
    pos = s.sample_memory(memory, 16)  # the draw ER makes for replay, through the plugin
    assert pos.numel() == 16 and (pos.view(4, 4) == pos.view(4, 4)[:, :1]).all()
    assert pos.view(4, 4)[:, 0].unique().numel() == 4  # 4 distinct slots, 4 views each


def test_ablation_switches(tmp_path):
    """replay_interval=false keeps the strategy's batches; ssl=false adds no KL term."""
    exp = run(
        tmp_path,
        **{
            "strategy.name": "er",
            "plugins.view_batch.replay_interval": "false",
            "plugins.view_batch.ssl": "false",
            "train.epochs": 1,
        },
    )
    assert exp.report()["view_batch"]["ssl_terms"] == 0


@pytest.mark.parametrize("policy", ["light", "autoaugment"])
def test_an_image_policy_on_vector_data_is_refused_before_the_run(tmp_path, capsys, policy):
    from clbench.cli import main

    root = tmp_path / "results"
    overrides = fast_overrides(root, **{"plugins.view_batch.augment_policy": policy})
    assert main(["run", *overrides]) == 2
    err = capsys.readouterr().err
    assert "plugins.view_batch.augment_policy" in err and "auto or vector" in err
    assert not root.exists() or not any(root.iterdir())  # no run folder left behind
