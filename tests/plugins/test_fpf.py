"""FPF (a plugin; Zhao et al. ICML 2023): module selection, isolation, buffers, errors. k-FPF,
the strategy, is tested in tests/strategies/test_k_fpf.py."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from clbench.errors import ConfigError
from clbench.metrics import compute_metrics
from clbench.models.base import ContinualModel
from clbench.strategies.fpf.finetune import (
    FinetuneSettings,
    SensitivityTracker,
    finetune,
    resolve_patterns,
)
from clbench.strategy.buffers import ReservoirBuffer
from tests.helpers import experiment

BN = {"model.batch_norm": "true"}


def full_state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_only_selected_parameters_and_bn_stats_change(tmp_path):
    exp = experiment(tmp_path, **{"strategy.name": "er", **BN, "model.hidden_sizes": "[32,32]"})
    model, buffer = exp.model, exp.strategy.memory()
    selected = ["backbone.2", "head"]  # the first BatchNorm and the classifier
    assert resolve_patterns(model, ["bn", "fc"], "f") == ["backbone.2", "backbone.5", "head"]
    before = full_state(model)
    flags = [p.requires_grad for p in model.parameters()]
    settings = FinetuneSettings(iterations=5, lr=0.1, batch_size=16)
    finetune(model, selected, buffer, exp.data, settings, torch.Generator().manual_seed(0))
    after = full_state(model)
    for name, value in before.items():
        if name.startswith(("backbone.2.", "head.")) and "num_batches" not in name:
            assert not torch.equal(value, after[name]), f"{name} did not change"
        elif not name.startswith("backbone.2."):
            assert torch.equal(value, after[name]), f"{name} changed"  # incl. backbone.5 stats
    assert [p.requires_grad for p in model.parameters()] == flags
    assert model.training is True
    assert all(p.grad is None for n in selected for p in model.get_submodule(n).parameters())


def test_bn_running_stats_freeze_keeps_selected_stats(tmp_path):
    exp = experiment(tmp_path, **{"strategy.name": "er", **BN})
    before = full_state(exp.model)
    settings = FinetuneSettings(iterations=3, lr=0.1, batch_size=16, bn_running_stats="freeze")
    buffer = exp.strategy.memory()
    finetune(exp.model, ["backbone.2"], buffer, exp.data, settings, torch.Generator())
    after = full_state(exp.model)
    assert torch.equal(before["backbone.2.running_mean"], after["backbone.2.running_mean"])
    assert not torch.equal(before["backbone.2.weight"], after["backbone.2.weight"])


def test_er_plus_fpf_differs_from_er_only_in_selected_modules(tmp_path):
    er = experiment(tmp_path / "er", **{"strategy.name": "er", "seed": 3})
    fpf = experiment(
        tmp_path / "fpf",
        **{
            "strategy.name": "er",
            "plugins.fpf.modules": "[fc]",
            "plugins.fpf.iterations": 40,
            "plugins.fpf.fpf_lr": 0.5,
            "seed": 3,
        },
    )
    a, b = full_state(er.model), full_state(fpf.model)
    assert all(torch.equal(a[k], b[k]) for k in a if not k.startswith("head."))
    assert not torch.equal(a["head.weight"], b["head.weight"])
    rows_er, rows_fpf = er.log.frame(), fpf.log.frame()
    last = rows_er.step.max()
    acc = [
        (r[r.step == last].correct.sum() / r[r.step == last].n.sum()) for r in (rows_er, rows_fpf)
    ]
    assert acc[0] != acc[1]
    report = fpf.report()["fpf"]
    assert report["fpf_modules"] == ["head"] and report["fpf_buffer"] == "strategy"
    (plugin,) = fpf.plugins
    assert plugin.buffer is fpf.strategy.memory()  # ER's memory, shared
    assert plugin.memory() is None  # not its own: the budget counts ER's memory once
    assert [r["step"] for r in report["fpf_runs"]] == [fpf.timing.updates]


def test_auto_selection_ranks_the_most_perturbed_modules():
    torch.manual_seed(0)
    backbone = nn.Sequential(nn.Linear(6, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 8))
    model = ContinualModel(backbone, 8, 4)
    tracker = SensitivityTracker(model)  # θ(0)
    with torch.no_grad():  # task 1: everything moves a lot (learning; skipped by default)
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 5)
    tracker.snapshot()
    for _ in range(2):  # tasks 2, 3: BatchNorm and the head drift most, per parameter
        with torch.no_grad():
            for name, p in model.named_parameters():
                scale = 1.0 if name.startswith(("backbone.1.", "head.")) else 0.01
                p.add_(torch.randn_like(p) * scale)
        tracker.snapshot()
    assert tracker.top(2) == ["backbone.1", "head"]
    scores = tracker.scores()
    assert scores["backbone.1"] > 10 * scores["backbone.0"]


def test_auto_mode_reports_chosen_modules_and_sensitivity(tmp_path):
    exp = experiment(
        tmp_path,
        **{
            "strategy.name": "er",
            "plugins.fpf.modules": "auto",
            "plugins.fpf.top_k": 2,
            "plugins.fpf.iterations": 3,
            **BN,
        },
    )
    report = exp.report()["fpf"]
    assert len(report["fpf_modules"]) == 2
    ranked = sorted(report["sensitivity"], key=report["sensitivity"].get, reverse=True)
    assert set(report["fpf_modules"]) == set(ranked[:2])


def test_fpf_over_naive_keeps_its_own_buffer_and_validates_its_params(tmp_path):
    exp = experiment(
        tmp_path,
        **{
            "strategy.name": "naive",
            "plugins.fpf.loss": "kd",
            "plugins.fpf.iterations": 2,
        },
    )
    assert exp.report()["fpf"]["fpf_buffer"] == "own"
    (plugin,) = exp.plugins
    assert exp.strategy.memory() is None and plugin.memory() is plugin.buffer
    assert plugin.buffer.extra is not None and len(plugin.buffer) == 200
    m = compute_metrics(exp.log.frame(), exp.prepared.config.metrics)
    assert 0 <= m["final_acc"] <= 1
    with pytest.raises(ConfigError, match=r"plugins\.fpf\.buffer_size"):
        experiment(
            tmp_path,
            run=False,
            **{"strategy.name": "naive", "plugins.fpf.buffer_size": -1},
        )
    with pytest.raises(ConfigError, match=r"strategy\.buffer_size"):
        experiment(
            tmp_path,
            run=False,
            **{"strategy.name": "er", "strategy.buffer_size": -1, "plugins.fpf": "{}"},
        )
    with pytest.raises(ConfigError, match=r"modules"):
        experiment(
            tmp_path,
            run=False,
            **{"strategy.name": "er", "plugins.fpf.modules": "[backbone.nothing*]"},
        )


def test_bad_module_pattern_names_the_plugin_field(tmp_path):
    with pytest.raises(ConfigError, match=r"plugins\.fpf\.modules"):
        experiment(
            tmp_path,
            run=False,
            **{"strategy.name": "er", "plugins.fpf.modules": "[backbone.nothing*]"},
        )


def test_own_buffer_is_reservoir(tmp_path):
    exp = experiment(
        tmp_path,
        **{"strategy.name": "naive", "plugins.fpf.iterations": 1},
    )
    (plugin,) = exp.plugins
    assert isinstance(plugin.buffer, ReservoirBuffer) and plugin.own_buffer
