"""Plugins (View-Batch, FPF) over strategies: config errors, refused combinations, the loss-term
route, the loop state strategies and plugins read, torch's process-wide settings and the budget."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from clbench.cli import main
from clbench.config import build_config
from clbench.engine.job import run_job
from clbench.engine.runner import Experiment, prepare
from clbench.errors import ConfigError, IncompatibleError
from clbench.registry import STRATEGIES
from clbench.strategies.naive import Naive
from tests.helpers import fast_overrides, registered, spy_observed_indices


def config_of(tmp_path, **extra):
    return build_config(None, fast_overrides(tmp_path, threads=1, **extra))


def experiment(tmp_path, **extra) -> Experiment:
    return Experiment(prepare(config_of(tmp_path, **extra)))


# --- config ------------------------------------------------------------------------------------


def test_a_plugin_named_as_the_strategy_is_refused_saying_it_is_a_plugin(tmp_path):
    with pytest.raises(ConfigError) as refused:
        config_of(tmp_path, **{"strategy.name": "view_batch"})
    assert refused.value.field == "strategy.name"
    assert "view_batch is a plugin" in str(refused.value)
    assert "plugins" in refused.value.allowed  # says where it goes instead


def test_an_unknown_plugin_is_refused_naming_plugins(tmp_path):
    with pytest.raises(ConfigError) as refused:
        config_of(tmp_path, **{"plugins.nope": "{}"})
    assert refused.value.field == "plugins" and refused.value.value == "nope"
    assert "view_batch" in refused.value.allowed and "fpf" in refused.value.allowed


def test_an_unknown_plugin_parameter_names_the_plugin_field(tmp_path):
    with pytest.raises(ConfigError) as refused:
        config_of(tmp_path, **{"strategy.name": "er", "plugins.view_batch.bogus": 1})
    assert refused.value.field == "plugins.view_batch.bogus"
    assert "views" in refused.value.allowed  # the known parameters are listed


def test_plugins_name_the_run_folder_and_runs_without_keep_their_name(tmp_path):
    plain = prepare(config_of(tmp_path, **{"strategy.name": "er"}))
    with_plugin = prepare(
        config_of(tmp_path, **{"strategy.name": "er", "plugins.view_batch": "{}"})
    )
    assert plain.run_id.startswith("er-class_incremental-synthetic-s0-")
    assert with_plugin.run_id.startswith("er+view_batch-class_incremental-synthetic-s0-")
    assert plain.run_id.rsplit("-", 1)[1] != with_plugin.run_id.rsplit("-", 1)[1]  # hashes


# --- combinations refused before a run starts ----------------------------------------------------

HYPERINTERVAL = {
    "strategy.name": "hyperinterval",
    "scenario.name": "task_incremental",
    "strategy.hnet_hidden": "[16]",
    "strategy.target_hidden": "[16]",
    "strategy.embedding_dim": 8,
}
REFUSED = {
    "avl_lwf": {"strategy.name": "avl_lwf"},
    # the KL term is what Avalanche's own loss would drop, even for naive
    "avl_naive": {"strategy.name": "avl_naive"},
    "hyperinterval": HYPERINTERVAL,
}


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_view_batch_kl_over_a_strategy_without_loss_terms_is_refused(tmp_path, capsys, name):
    if name.startswith("avl_"):
        pytest.importorskip("avalanche")
    extra = {**REFUSED[name], "plugins.view_batch": "{}"}  # ssl: true by default
    with pytest.raises(IncompatibleError) as refused:
        prepare(config_of(tmp_path / "prepare", **extra))
    message = str(refused.value)
    assert f"plugin 'view_batch' cannot modify strategy '{name}'" in message
    assert "loss_terms" in message
    root = tmp_path / "cli"
    assert main(["run", "--quiet", *fast_overrides(root, threads=1, **extra)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("clbench: error:") and "loss_terms" in err
    assert not root.exists()  # no run folder, not even the output root


def test_view_batch_without_kl_over_avalanche_composes_its_batches(tmp_path):
    pytest.importorskip("avalanche")
    exp = experiment(
        tmp_path,
        **{
            "strategy.name": "avl_naive",
            "plugins.view_batch.ssl": "false",
            "plugins.view_batch.apply_to": "current",
            "train.epochs": 1,
        },
    )
    seen = spy_observed_indices(exp)
    exp.run()
    assert seen and exp.timing.updates == len(seen)
    # Avalanche's batch is the view-batch: B/V unique samples, each as V adjacent views
    assert all(i.view(-1, 4).unique(dim=0).shape[0] == len(i) // 4 for i in seen)
    assert all((i.view(-1, 4) == i.view(-1, 4)[:, :1]).all() for i in seen)
    assert exp.report()["view_batch"]["ssl_terms"] == 0


# --- the loss-term route -------------------------------------------------------------------------


def test_view_batch_kl_is_added_once_per_er_update_with_new_weight(tmp_path):
    """ER's weighted loss computes CE of the new and replayed halves separately: the plugin's
    term must still be added exactly once per update, on the whole forward."""
    exp = experiment(
        tmp_path,
        **{
            "strategy.name": "er",
            "strategy.new_weight": 0.3,
            "plugins.view_batch.ssl_start_epoch": 0,
        },
    )
    (plugin,) = exp.plugins
    calls: dict[str, list[Any]] = {"observe": [], "loss_term": [], "ssl_loss": []}
    spied = {"observe": exp.strategy, "loss_term": plugin, "ssl_loss": plugin}
    for name, owner in spied.items():
        original = getattr(owner, name)

        def spy(batch_or_logits, *rest, _original=original, _name=name):
            calls[_name].append((exp.loop.step, len(batch_or_logits)))
            return _original(batch_or_logits, *rest)

        setattr(owner, name, spy)
    exp.run()
    updates = exp.timing.updates
    assert updates > 0
    assert len(calls["observe"]) == updates
    assert [s for s, _ in calls["loss_term"]] == list(range(1, updates + 1))  # once each
    assert [s for s, _ in calls["ssl_loss"]] == list(range(1, updates + 1))
    assert exp.report()["view_batch"]["ssl_terms"] == updates
    # on the logits of everything the update trains on: new + replayed after the first update
    new = [n for _, n in calls["observe"]]
    rows = [n for _, n in calls["loss_term"]]
    assert rows[0] == new[0]  # empty memory: the new batch alone
    assert all(r > n for r, n in zip(rows[1:], new[1:], strict=True))


# --- torch's process-wide settings ---------------------------------------------------------------


def test_run_restores_torch_threads_and_deterministic_mode(tmp_path):
    saved = (
        torch.get_num_threads(),
        torch.are_deterministic_algorithms_enabled(),
        torch.is_deterministic_algorithms_warn_only_enabled(),
    )
    try:
        torch.set_num_threads(3)
        torch.use_deterministic_algorithms(False)
        config = build_config(
            None,
            fast_overrides(tmp_path, **{"threads": 1, "deterministic": "true", "train.epochs": 1}),
        )
        exp = Experiment(prepare(config))
        assert (torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()) == (3, False)
        during: list[tuple[int, bool]] = []
        observe = exp.strategy.observe

        def spy(batch):
            during.append((torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()))
            return observe(batch)

        exp.strategy.observe = spy
        exp.run()
        assert during and set(during) == {(1, True)}  # the run's settings while it trains
        assert torch.get_num_threads() == 3
        assert torch.are_deterministic_algorithms_enabled() is False
        assert torch.is_deterministic_algorithms_warn_only_enabled() is False
    finally:
        torch.set_num_threads(saved[0])
        torch.use_deterministic_algorithms(saved[1], warn_only=saved[2])


# --- the loop state ------------------------------------------------------------------------------


class LoopProbe(Naive):
    """Naive, recording what the loop state says at setup and in every observe."""

    def setup(self, ctx):
        super().setup(ctx)
        self.at_setup = (
            ctx.loop.plan.total_updates,
            ctx.loop.plan.updates_per_phase,
            ctx.loop.step,
        )
        self.seen: list[tuple[int, int, int, int, int]] = []

    def observe(self, batch):
        loop = self.ctx.loop
        self.seen.append((loop.step, loop.phase, loop.epoch, loop.batch, loop.phase_step))
        return super().observe(batch)


def test_strategies_see_the_update_number_and_epoch_in_the_loop_state(tmp_path):
    with registered(STRATEGIES, "_loop_probe_for_test", LoopProbe):
        exp = experiment(tmp_path, **{"strategy.name": "_loop_probe_for_test", "train.epochs": 3})
        exp.run()
    assert "_loop_probe_for_test" not in STRATEGIES
    probe = exp.strategy
    assert exp.ctx.loop is exp.loop
    total = exp.timing.updates
    # 4 tasks x 120 samples in batches of 16 (8 batches, the last partial), 3 epochs
    assert total == 4 * 8 * 3
    assert probe.at_setup == (total, (24, 24, 24, 24), 0)  # the plan is known at setup
    assert [s[0] for s in probe.seen] == list(range(1, total + 1))  # 1-based update number
    for step, phase, epoch, batch, phase_step in probe.seen:
        assert phase == (step - 1) // 24
        assert phase_step == step - 24 * phase
        assert epoch == (phase_step - 1) // 8  # 0-based, within the phase
        assert batch == (phase_step - 1) % 8 + 1
    assert {s[2] for s in probe.seen} == {0, 1, 2}


def test_er_observe_sees_the_loop_state(tmp_path):
    exp = experiment(tmp_path, **{"strategy.name": "er"})
    assert exp.strategy.ctx.loop is exp.loop
    assert exp.loop.plan.total_updates == 64 and exp.loop.step == 0
    seen: list[tuple[int, int]] = []
    observe = exp.strategy.observe

    def spy(batch):
        seen.append((exp.strategy.ctx.loop.step, exp.strategy.ctx.loop.epoch))
        return observe(batch)

    exp.strategy.observe = spy
    exp.run()
    assert [s for s, _ in seen] == list(range(1, 65))
    assert [e for _, e in seen] == [e for _ in range(4) for e in (0, 1) for _ in range(8)]


# --- the budget ----------------------------------------------------------------------------------


def test_hyperinterval_budget_counts_its_own_networks_not_the_unused_model(tmp_path):
    extra = {**HYPERINTERVAL, "train.epochs": 1}
    exp = experiment(tmp_path / "exp", **extra)
    s = exp.strategy
    own = sum(p.numel() for net in (s.hnet, s.embeddings, s.rhos) for p in net.parameters())
    unused = sum(p.numel() for p in exp.model.parameters())
    assert own > 0 and unused > 0
    summary = run_job(config_of(tmp_path / "run", **extra), progress=False).summary
    assert summary["budget"]["params_total"] == own
    # frozen embeddings of finished tasks are not trainable at the end; never the unused model
    assert summary["budget"]["params_trainable"] <= own
    assert summary["budget"]["buffer_size"] == 0


@pytest.mark.parametrize(
    ("strategy", "memory"),
    [("naive", 200), ("er", 200)],  # FPF's own reservoir; ER's memory, shared (counted once)
)
def test_budget_counts_the_memory_fpf_uses_once(tmp_path, strategy, memory):
    extra = {"strategy.name": strategy, "plugins.fpf.iterations": 1, "train.epochs": 1}
    summary = run_job(config_of(tmp_path, **extra), progress=False).summary
    assert summary["plugins"] == ["fpf"]
    assert summary["budget"]["buffer_size"] == memory  # 480 samples seen: both memories full
    assert summary["budget"]["buffer_bytes"] > 0
    assert summary["strategy_report"]["fpf"]["fpf_buffer"] == (
        "own" if strategy == "naive" else "strategy"
    )


def test_a_bad_fpf_module_pattern_exits_2_before_a_run_folder_exists(tmp_path, capsys):
    root = tmp_path / "r"
    extra = {"strategy.name": "er", "plugins.fpf.modules": "[backbone.nothing*]"}
    assert main(["run", "--quiet", *fast_overrides(root, **extra)]) == 2
    assert "modules" in capsys.readouterr().err
    assert not root.exists()
