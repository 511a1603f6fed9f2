"""The training loop: evaluation schedule, determinism, behaviour of naive vs ER, compatibility."""

from __future__ import annotations

import time

import pandas as pd
import pytest
import torch

from clbench.config import build_config
from clbench.engine.job import run_job
from clbench.engine.runner import Experiment, prepare
from clbench.errors import IncompatibleError
from clbench.metrics import compute_metrics
from clbench.metrics.records import REQUIRED_COLUMNS
from clbench.plotting.curves import plot_task_curves
from clbench.registry import STRATEGIES
from clbench.strategies.naive import Naive
from clbench.strategy import Capabilities
from tests.helpers import fast_overrides, registered


def run_records(tmp_path, **extra) -> tuple[Experiment, pd.DataFrame]:
    exp = Experiment(prepare(build_config(None, fast_overrides(tmp_path, **extra))))
    exp.run()
    return exp, exp.log.frame()


def test_every_update_evaluates_seen_tasks_only(tmp_path):
    exp, rec = run_records(tmp_path)
    subset = rec[rec.kind == "subset"]
    updates = exp.timing.updates
    assert sorted(subset.step.unique()) == list(range(updates + 1))  # step 0 = pre-update point
    assert subset[subset.step == 0].task.tolist() == [0]
    # tasks evaluated at a step are exactly 0..current task (never an unseen task)
    per_step = subset.groupby("step").agg(
        max_task=("task", "max"), n_tasks=("task", "size"), cur=("current_task", "max")
    )
    assert (per_step.max_task == per_step.cur).all() and (
        per_step.n_tasks == per_step.cur + 1
    ).all()
    # 4 tasks x 120 samples / 16 per batch = 8 batches x 2 epochs per phase
    assert exp.timing.phase_end_steps == [16, 32, 48, 64]


def test_step0_evaluation_covers_every_task_of_a_joint_phase(tmp_path):
    overrides = [o for o in fast_overrides(tmp_path) if not o.startswith("scenario.")]
    overrides.append("scenario={name: joint, of: {name: class_incremental, n_experiences: 4}}")
    exp = Experiment(prepare(build_config(None, overrides)))
    exp.run()
    rec = exp.log.frame()
    subset = rec[rec.kind == "subset"]
    assert subset.phase.unique().tolist() == [0]
    # every step, step 0 included, evaluates all four tasks the one phase trains
    assert (subset.groupby("step").task.apply(sorted).map(tuple) == (0, 1, 2, 3)).all()
    assert subset.step.min() == 0


def test_boundary_full_evaluations_and_forward_tracking(tmp_path):
    _, rec = run_records(tmp_path)
    full = rec[rec.kind == "full"]
    assert full.groupby("phase").task.apply(list).tolist() == [
        [0, 1],
        [0, 1, 2],
        [0, 1, 2, 3],
        [0, 1, 2, 3],
    ]
    assert (full.n == 60).all()  # whole test sets (2 classes x 30)
    init = rec[rec.kind == "init"]
    assert init.task.tolist() == [0, 1, 2, 3] and (init.step == 0).all()


def test_eval_every_keeps_last_update_of_each_phase(tmp_path):
    _, rec = run_records(tmp_path, **{"eval.every": 5})
    steps = sorted(rec[rec.kind == "subset"].step.unique())
    assert steps == sorted({0, *range(5, 65, 5), 16, 32, 48, 64})


def test_same_config_and_seed_give_identical_records(tmp_path):
    _, a = run_records(tmp_path, **{"strategy.name": "er", "strategy.buffer_size": 20})
    _, b = run_records(tmp_path, **{"strategy.name": "er", "strategy.buffer_size": 20})
    pd.testing.assert_frame_equal(a, b)
    _, c = run_records(tmp_path, **{"strategy.name": "er", "strategy.buffer_size": 20, "seed": 1})
    assert not a[["correct"]].equals(c[["correct"]])


def _metrics(tmp_path, strategy: str, **extra):
    overrides = {"strategy.name": strategy, "train.epochs": 3, "train.lr": 0.05, **extra}
    _, rec = run_records(tmp_path, **overrides)
    return compute_metrics(rec, build_config(None, fast_overrides(tmp_path)).metrics), rec


def test_er_forgets_less_than_naive_and_shows_a_stability_gap(tmp_path):
    naive, _ = _metrics(tmp_path, "naive")
    er, _ = _metrics(tmp_path, "er", **{"strategy.buffer_size": 100})
    assert er["forgetting"] < naive["forgetting"] - 0.1
    assert er["final_acc"] > naive["final_acc"] + 0.1
    # the gap: task 0 right after the first boundary dips below its accuracy at that boundary
    gaps = [g for g in er["gaps"] if g["task"] == 0 and g["phase"] == 1]
    assert gaps and gaps[0]["depth"] > 0.05
    assert er["min_acc"] < er["per_task_final_acc"][0]


def test_joint_trains_cumulatively_and_is_the_upper_bound(tmp_path):
    naive, _ = _metrics(tmp_path, "naive")
    joint, rec = _metrics(tmp_path, "joint")
    assert joint["final_acc"] > naive["final_acc"] + 0.3
    # phase k trains on (k+1) x 120 samples in batches of 16, 3 epochs
    assert rec.step.max() == 3 * sum(-(-(k + 1) * 120 // 16) for k in range(4))


class ClassOnly(Naive):
    capabilities = Capabilities(settings=frozenset({"class"}))


def test_incompatible_strategy_is_refused_before_running(tmp_path):
    with registered(STRATEGIES, "_class_only_for_test", ClassOnly):
        config = build_config(
            None,
            fast_overrides(
                tmp_path,
                **{"strategy.name": "_class_only_for_test", "scenario.name": "task_incremental"},
            ),
        )
        with pytest.raises(IncompatibleError, match="class-incremental"):
            run_job(config, progress=False)
    assert not any(tmp_path.iterdir())
    assert "_class_only_for_test" not in STRATEGIES


def test_run_folder_contents_and_skip_when_finished(tmp_path):
    config = build_config(None, fast_overrides(tmp_path, **{"output.plot": "true"}))
    outcome = run_job(config, progress=False, figure=plot_task_curves)
    names = {p.name for p in outcome.path.iterdir()}
    assert {
        "config.yaml",
        "manifest.json",
        "records.parquet",
        "summary.json",
        "status.json",
        "accuracy.png",
        "scenario.txt",
        "train_loss.parquet",
        "eval_subsets.json",
    } <= names
    assert (outcome.path / "accuracy.png").stat().st_size > 5000
    rec = pd.read_parquet(outcome.path / "records.parquet")
    assert set(rec.columns) >= set(REQUIRED_COLUMNS) >= {"step", "task", "kind", "correct"}
    again = run_job(config, progress=False)
    assert again.skipped and again.summary == outcome.summary


def test_run_state_round_trips_through_state_dict(tmp_path):
    exp, rec = run_records(tmp_path, **{"strategy.buffer_size": 30})
    state = exp.state_dict()
    fresh = Experiment(
        prepare(build_config(None, fast_overrides(tmp_path, **{"strategy.buffer_size": 30})))
    )
    fresh.load_state_dict(state)
    for a, b in zip(exp.model.parameters(), fresh.model.parameters(), strict=True):
        assert torch.equal(a, b)
    assert torch.equal(exp.strategy.buffer.index, fresh.strategy.buffer.index)
    assert fresh.strategy.buffer.seen == exp.strategy.buffer.seen
    pd.testing.assert_frame_equal(fresh.log.frame(), rec)
    assert torch.equal(fresh.data_generator.get_state(), exp.data_generator.get_state())
    assert fresh.timing == exp.timing
    opt_a, opt_b = exp.strategy.optimizer.state_dict(), fresh.strategy.optimizer.state_dict()
    assert opt_a["param_groups"] == opt_b["param_groups"]


class NoModelRoute(Naive):
    """Trains something other than ``ctx.model`` (as far as plugins can tell)."""

    capabilities = Capabilities(routes=frozenset())


@pytest.mark.parametrize(
    ("name", "cls", "message"),
    [
        # the strategy under the plugin cannot run the scenario
        ("_class_only_base_for_test", ClassOnly, "class-incremental"),
        # the strategy does not route what the plugin needs (FPF finetunes ctx.model)
        ("_no_model_route_for_test", NoModelRoute, "plugin 'fpf' cannot modify strategy"),
    ],
)
def test_plugin_over_incompatible_strategy_is_refused_before_running(tmp_path, name, cls, message):
    with registered(STRATEGIES, name, cls):
        config = build_config(
            None,
            fast_overrides(
                tmp_path,
                **{
                    "strategy.name": name,
                    "plugins.fpf": "{}",
                    "scenario.name": "task_incremental",
                },
            ),
        )
        with pytest.raises(IncompatibleError, match=message) as refused:
            run_job(config, progress=False)
        assert name in str(refused.value)
    assert not any(tmp_path.iterdir())
    assert name not in STRATEGIES


class SlowPhaseEnds(Naive):
    """Naive, with work between the updates (as a Fisher or a retraining would be)."""

    def after_phase(self, phase_index: int) -> None:
        time.sleep(0.2)


def test_phase_hook_work_counts_as_training_time(tmp_path):
    """A method's budget includes what it computes at phase ends, not only its updates."""
    with registered(STRATEGIES, "_slow_phase_ends_for_test", SlowPhaseEnds):
        overrides = fast_overrides(tmp_path, **{"strategy.name": "_slow_phase_ends_for_test"})
        exp = Experiment(prepare(build_config(None, overrides)))
        exp.run()
    phases = len(exp.prepared.plan.phases)
    assert exp.timing.train_s >= 0.2 * phases
