"""Every registered strategy runs in every setting it declares; task-IL masking behaves."""

from __future__ import annotations

import math

import pytest

from clbench.config import build_config
from clbench.engine.runner import Experiment, prepare
from clbench.metrics import compute_metrics
from clbench.registry import STRATEGIES
from tests.helpers import fast_overrides

SCENARIOS = {
    "class": {"scenario.name": "class_incremental"},
    "task": {"scenario.name": "task_incremental"},
    "domain": {"scenario.name": "domain_incremental", "scenario.n_experiences": 3},
}


def run_metrics(tmp_path, **extra):
    config = build_config(None, fast_overrides(tmp_path, **{"train.epochs": 1, **extra}))
    exp = Experiment(prepare(config))
    exp.run()
    return compute_metrics(exp.log.frame(), config.metrics)


@pytest.mark.parametrize("strategy", [n for n in STRATEGIES.names() if not n.startswith("_")])
@pytest.mark.parametrize("setting", list(SCENARIOS))
def test_strategy_smoke(tmp_path, strategy, setting):
    cls = STRATEGIES.get(strategy)
    if setting not in cls.capabilities.settings or cls.capabilities.needs_pretrained:
        pytest.skip(f"{strategy} does not declare {setting}-incremental support")
    m = run_metrics(tmp_path, **{"strategy.name": strategy, **SCENARIOS[setting]})
    assert m["final_acc"] is not None and 0 <= m["final_acc"] <= 1
    assert m["min_acc"] is not None and math.isfinite(m["wc_acc"])


def test_task_incremental_masking_removes_cross_task_confusion(tmp_path):
    """Same data and split: with task ids at test time naive fine-tuning forgets far less."""
    class_il = run_metrics(tmp_path, **{"strategy.name": "naive", "train.epochs": 3})
    overrides = {"strategy.name": "naive", "train.epochs": 3, "scenario.name": "task_incremental"}
    task_il = run_metrics(tmp_path, **overrides)
    assert task_il["final_acc"] > class_il["final_acc"] + 0.2


def test_bf16_mixed_precision_runs(tmp_path):
    m = run_metrics(tmp_path, **{"precision": "bf16", "strategy.name": "er"})
    assert m["final_acc"] is not None and m["final_acc"] > 0.3
