"""Power-law rehearsal environments (`scenarios/power_law.py`)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from clbench.cli import main
from clbench.config import build_config
from clbench.data.dataset import InMemoryDataset
from clbench.engine.runner import Experiment, prepare
from clbench.errors import ConfigError
from clbench.metrics import compute_metrics
from clbench.registry import SCENARIOS, validate_params
from clbench.scenario.plan import ScenarioPlan
from clbench.scenarios.power_law import (
    PROTOTYPE_LAG_COUNTS,
    PowerLaw,
    apportion,
    prototype_table,
    rehearsal_counts,
)
from tests.helpers import fast_overrides, make_image_dataset

FULL = 57927  # new-task samples per phase in the prototype (environments.py)
# 57927·(1+Δ/10)^-5.6 rounded, computed by hand for Δ = 0..9 (33968.94, 20867.29, 13329.02,
# 8801.65, 5980.95, 4166.86, 2967.34, 2154.54, 1591.70).
POWER_COLUMN = [57927, 33969, 20867, 13329, 8802, 5981, 4167, 2967, 2155, 1592]
# The prototype's phase sizes, from its hard-coded list (archana53/power-law-for-CI@39ec2f8).
PROTOTYPE_PHASE_SIZES = [
    57927, 91896, 112763, 126092, 134894, 140875, 145042, 148010, 150165, 151757,
]  # fmt: skip


def config(**params: Any) -> PowerLaw.Config:
    return validate_params(PowerLaw.Config, params, "scenario")


def full_size(cfg: PowerLaw.Config, tasks: int = 10, seed: int = 0) -> np.ndarray:
    """N[phase, task] of the prototype's 10 x 57927 environment (60000 samples per task)."""
    return rehearsal_counts(cfg, [FULL] * tasks, [60000] * tasks, seed)


def build(params: dict[str, Any], dataset: InMemoryDataset, seed: int = 0) -> ScenarioPlan:
    return PowerLaw(config(**params)).build(dataset, seed)


@pytest.fixture(scope="module")
def images() -> InMemoryDataset:
    return make_image_dataset(classes=4, train_per_class=30, test_per_class=5)


# ---------------------------------------------------------------------------------------------
# the count matrix


def test_absolute_power_law_column_at_full_size() -> None:
    counts = full_size(config(kernel="power", d=5.6, tau=10))
    lags = np.arange(10)
    np.testing.assert_array_equal(counts[:, 0], POWER_COLUMN)
    np.testing.assert_array_equal(
        counts[:, 0], np.floor(FULL * (1 + lags / 10) ** -5.6 + 0.5).astype(int)
    )
    # Every task gets the same column from its introduction on (N[i, j] = n(i - j)).
    for i in range(10):
        np.testing.assert_array_equal(counts[i, : i + 1], POWER_COLUMN[: i + 1][::-1])
    assert np.all(np.triu(counts, 1) == 0)
    # The prototype's list is within one sample of the closed form (2968 vs 2967 at Δ = 7).
    assert np.abs(counts[:, 0] - np.array(PROTOTYPE_LAG_COUNTS)).max() == 1
    np.testing.assert_array_equal(
        counts.sum(axis=1) - PROTOTYPE_PHASE_SIZES, [0] * 7 + [-1, -1, -1]
    )


def test_table_kernel_reproduces_the_prototype_exactly() -> None:
    counts = full_size(config(kernel="table", table=prototype_table()))
    np.testing.assert_array_equal(
        counts[:, 0], [57927, 33969, 20867, 13329, 8802, 5981, 4167, 2968, 2155, 1592]
    )
    np.testing.assert_array_equal(counts.sum(axis=1), PROTOTYPE_PHASE_SIZES)


@pytest.mark.parametrize(
    "kernel, params, last_column",
    [
        ("uniform", {}, [3218] * 9),
        ("rank_poly", {"alpha": 5}, [694, 1016, 1440, 1983, 2668, 3516, 4551, 5800, 7290]),
        ("exponential", {"beta": 1}, [6, 16, 45, 123, 335, 911, 2478, 6735, 18310]),
    ],
)
def test_budget_with_prototype_rounding_reproduces_the_prototype_columns(
    kernel: str, params: dict[str, Any], last_column: list[int]
) -> None:
    cfg = config(
        kernel=kernel,
        normalisation="budget",
        replay_fraction=0.5,
        budget_rounding="prototype",
        **params,
    )
    counts = full_size(cfg)
    np.testing.assert_array_equal(counts[9], [*last_column, FULL])
    # (budget // w) · w loses less than one sample when one task is rehearsed alone.
    assert counts[1, 0] in (28962, 28963)
    rehearsal = counts.sum(axis=1) - np.diag(counts)
    assert np.all(rehearsal <= math.floor(FULL * 0.5))  # never above the budget


@pytest.mark.parametrize("kernel", ["uniform", "exponential", "power", "rank_poly", "table"])
@pytest.mark.parametrize("r", [1.0, 0.75, 0.5, 0.25, 0.1])
def test_exact_budgets_are_met_exactly(kernel: str, r: float) -> None:
    cfg = config(kernel=kernel, normalisation="budget", replay_fraction=r, table=[3, 2, 1])
    new = [FULL, 1000, 3000, 57, 12000, 999, 5000, 8000]
    counts = rehearsal_counts(cfg, new, [60000] * len(new))
    rehearsal = counts.sum(axis=1) - np.diag(counts)
    budgets = [math.floor(n * r) for n in new]
    if kernel == "table":  # weights vanish beyond lag 3: the budget goes to lags 1..3
        assert np.all(counts[np.tril_indices(8, -4)] == 0)
    np.testing.assert_array_equal(rehearsal[1:], budgets[1:])
    assert rehearsal[0] == 0


def test_exact_budget_respects_capacities() -> None:
    cfg = config(kernel="uniform", normalisation="budget", replay_fraction=1.0)
    counts = rehearsal_counts(cfg, [100, 100, 100, 90], [10, 100, 100, 100])
    # Phase 3: 90 samples over 3 tasks, task 0 holds 10: the rest goes to tasks 1 and 2.
    np.testing.assert_array_equal(counts[3], [10, 40, 40, 90])
    # Phase 1: task 0 alone can give only 10 of the 100.
    np.testing.assert_array_equal(counts[1], [10, 100, 0, 0])
    np.testing.assert_array_equal(
        apportion(10, np.array([1.0, 1.0, 1.0]), np.array([5, 5, 5])), [4, 3, 3]
    )


def test_absolute_kernels_by_hand() -> None:
    new = [1000, 1000, 1000, 1000]
    caps = [5000] * 4
    exp = rehearsal_counts(config(kernel="exponential", beta=2), new, caps)
    # round(1000·e^(-Δ/2)/2) = 303, 184, 112 for Δ = 1, 2, 3
    np.testing.assert_array_equal(exp[3], [112, 184, 303, 1000])
    uniform = rehearsal_counts(config(kernel="uniform"), new, caps)
    np.testing.assert_array_equal(uniform[3], [1000] * 4)
    none = rehearsal_counts(config(kernel="none"), new, caps)
    np.testing.assert_array_equal(none, np.diag(new))
    full = rehearsal_counts(config(kernel="full"), [100, 50, 80], [5000] * 3)
    np.testing.assert_array_equal(full, [[100, 0, 0], [100, 50, 0], [100, 50, 80]])
    capped = rehearsal_counts(config(kernel="power", tau=1, d=1), [1000] * 3, [400] * 3)
    # 1000·(1+Δ)^-1 = 500, 333 capped at the 400 a task holds
    np.testing.assert_array_equal(capped[2], [333, 400, 1000])


def test_lag_from_last_seen_differs_from_introduction() -> None:
    # Weights only at lag 2: from introduction a task returns once (two phases later); from
    # last seen it returns every other phase (lag resets when it is rehearsed).
    table = [0.0, 1.0]
    intro = rehearsal_counts(config(kernel="table", table=table), [10] * 7, [10] * 7)
    last = rehearsal_counts(
        config(kernel="table", table=table, lag_from="last_seen"), [10] * 7, [10] * 7
    )
    assert np.flatnonzero(intro[:, 0]).tolist() == [0, 2]
    assert np.flatnonzero(last[:, 0]).tolist() == [0, 2, 4, 6]


def test_stochastic_resets_lag_on_re_encounter() -> None:
    # a = 1, d = 60: p(Δ=1) = 1, p(Δ>=2) ≈ 1e-18. If Δ did not reset on every re-encounter
    # (time since introduction), every task would vanish after its first rehearsal.
    cfg = config(kernel="full", stochastic=True, a=1.0, d=60)
    counts = rehearsal_counts(cfg, [10] * 12, [10] * 12)
    np.testing.assert_array_equal(counts, np.tril(np.full((12, 12), 10)))


def test_stochastic_encounter_frequencies_follow_time_since_last_seen() -> None:
    a, d, k = 0.5, 1.0, 120
    counts = rehearsal_counts(config(kernel="full", stochastic=True, a=a, d=d), [5] * k, [5] * k)
    hits: dict[int, list[bool]] = {}
    last_seen = np.arange(k)
    for i in range(1, k):
        for j in range(i):
            since = i - last_seen[j]
            hits.setdefault(int(since), []).append(bool(counts[i, j] > 0))
            if counts[i, j] > 0:
                last_seen[j] = i
                assert counts[i, j] == 5  # kernel full: a whole re-encounter
    for since in (1, 2, 3):
        p = min(1.0, a * since**-d)
        trials = hits[since]
        tolerance = 4 * math.sqrt(p * (1 - p) / len(trials))
        assert abs(np.mean(trials) - p) < tolerance, (since, np.mean(trials), p, len(trials))


def test_stochastic_is_deterministic_by_seed() -> None:
    cfg = config(kernel="power", stochastic=True, a=0.6, d=1.0)
    first = rehearsal_counts(cfg, [100] * 20, [100] * 20, seed=1)
    np.testing.assert_array_equal(first, rehearsal_counts(cfg, [100] * 20, [100] * 20, seed=1))
    assert not np.array_equal(first, rehearsal_counts(cfg, [100] * 20, [100] * 20, seed=2))


# ---------------------------------------------------------------------------------------------
# plans


def test_plan_keeps_base_tasks_and_introduces_one_task_per_phase(images: InMemoryDataset) -> None:
    params = {"base": {"name": "class_incremental", "n_experiences": 4}, "kernel": "power"}
    plan = build(params, images)
    base = SCENARIOS.get("class_incremental")
    base_plan = base(validate_params(base.Config, {"n_experiences": 4}, "scenario")).build(
        images, 0
    )
    assert plan.setting == "class" and plan.num_outputs == base_plan.num_outputs
    assert [t.to_dict() for t in plan.tasks] == [t.to_dict() for t in base_plan.tasks]
    assert [p.current_task for p in plan.phases] == [0, 1, 2, 3]
    sizes = [len(t.train_indices) for t in plan.tasks]
    cfg = PowerLaw(config(**params)).config
    np.testing.assert_array_equal(plan.count_matrix(), rehearsal_counts(cfg, sizes, sizes))
    for i, phase in enumerate(plan.phases):
        assert [p.task for p in phase.parts] == sorted(p.task for p in phase.parts)
        np.testing.assert_array_equal(phase.parts[-1].indices, plan.tasks[i].train_indices)
        for part in phase.parts:
            assert len(np.unique(part.indices)) == len(part.indices)  # without replacement
            assert np.isin(part.indices, plan.tasks[part.task].train_indices).all()


def test_fresh_draws_cover_the_task_fixed_memory_stays_in_its_memory(
    images: InMemoryDataset,
) -> None:
    base = {"name": "domain_incremental", "n_experiences": 6}
    common = {"base": base, "kernel": "uniform", "samples_new": 40}
    fresh = build(common, images)
    fixed = build({**common, "resample": "fixed_memory", "memory_per_task": 8}, images)

    def rehearsed(plan: ScenarioPlan, task: int) -> list[np.ndarray]:
        return [p.indices for ph in plan.phases[task + 1 :] for p in ph.parts if p.task == task]

    new0 = fresh.phases[0].parts[-1].indices
    assert len(new0) == 40
    draws = rehearsed(fresh, 0)
    assert [len(x) for x in draws] == [40] * 5  # uniform absolute: n_new per earlier task
    union = np.unique(np.concatenate(draws))
    assert len(union) > 40 and not np.isin(union, new0).all()  # the whole training set
    assert not all(np.array_equal(draws[0], x) for x in draws[1:])  # fresh per phase

    memory_draws = rehearsed(fixed, 0)
    assert [len(x) for x in memory_draws] == [8] * 5  # capped by the memory
    memory = np.unique(np.concatenate(memory_draws))
    assert len(memory) == 8  # one fixed memory ...
    assert np.isin(memory, fixed.phases[0].parts[-1].indices).all()  # ... of introduced samples
    # the new-task samples do not depend on the resampling mode
    np.testing.assert_array_equal(fixed.phases[0].parts[-1].indices, new0)


def test_plans_are_deterministic_by_seed(images: InMemoryDataset) -> None:
    params = {"kernel": "exponential", "normalisation": "budget", "replay_fraction": 0.5}
    a, b = build(params, images, seed=3), build(params, images, seed=3)
    assert a.content_hash == b.content_hash
    assert build(params, images, seed=4).content_hash != a.content_hash


def test_params_are_resolved_and_revalidate(images: InMemoryDataset) -> None:
    plan = build({"base": {"name": "class_incremental", "n_experiences": 2}}, images)
    assert plan.params["base"]["shuffle_classes"] is True  # base defaults resolved
    assert build(plan.params, images).content_hash == plan.content_hash


# ---------------------------------------------------------------------------------------------
# invalid parameters


@pytest.mark.parametrize(
    "params, field, hint",
    [
        ({"d": 0}, "scenario.d", "greater than 0"),
        ({"d": -1.5}, "scenario.d", "greater than 0"),
        ({"tau": 0}, "scenario.tau", "greater than 0"),
        ({"normalisation": "budget"}, "scenario.replay_fraction", "(0, 1]"),
        ({"normalisation": "budget", "replay_fraction": 0}, "scenario.replay_fraction", "(0, 1]"),
        (
            {"normalisation": "budget", "replay_fraction": 1.5},
            "scenario.replay_fraction",
            "(0, 1]",
        ),
        ({"kernel": "rank_poly", "alpha": 2}, "scenario.alpha", "greater than 2"),
        ({"kernel": "rank_poly"}, "scenario.normalisation", "budget"),
        (
            {"kernel": "full", "normalisation": "budget", "replay_fraction": 0.5},
            "scenario.normalisation",
            "full",
        ),
        ({"kernel": "table"}, "scenario.table", "list of weights"),
        ({"kernel": "table", "table": [1, -1]}, "scenario.table", ">= 0"),
        ({"resample": "fixed_memory"}, "scenario.memory_per_task", "memory_per_task"),
        ({"stochastic": True}, "scenario.a", "a > 0"),
        ({"stochastic": True, "kernel": "none"}, "scenario.stochastic", "none"),
        ({"samples_new": 0}, "scenario.samples_new", ">= 1"),
        ({"base": {"n_experiences": 3}}, "scenario.base", "name"),
        ({"base": {"name": "power_law"}}, "scenario.base", "sequential"),
        ({"kernel": "powerlaw"}, "scenario.kernel", "power"),
    ],
)
def test_invalid_parameters_are_rejected_clearly(
    params: dict[str, Any], field: str, hint: str
) -> None:
    with pytest.raises(ConfigError) as info:
        config(**params)
    assert info.value.field == field and hint in str(info.value), str(info.value)


@pytest.mark.parametrize(
    "params, field",
    [
        ({"base": {"name": "nope"}}, "scenario.base.name"),
        ({"base": {"name": "class_incremental", "bogus": 1}}, "scenario.base.bogus"),
        (
            {"base": {"name": "joint", "of": {"name": "task_incremental", "n_experiences": 2}}},
            "scenario.base.name",
        ),
        (
            {"base": {"name": "class_incremental", "n_experiences": 3}},
            "scenario.base.n_experiences",
        ),
        ({"samples_new": 1000}, "scenario.samples_new"),
    ],
)
def test_base_and_dataset_errors_name_the_parameter(
    params: dict[str, Any], field: str, images: InMemoryDataset
) -> None:
    with pytest.raises(ConfigError) as info:
        build(params, images)
    assert info.value.field == field, str(info.value)


# ---------------------------------------------------------------------------------------------
# end to end


def _power_law_overrides(tmp_path: Any, **scenario: Any) -> list[str]:
    overrides = [o for o in fast_overrides(tmp_path) if not o.startswith("scenario.")]
    params = {"name": "power_law", "base": "{name: class_incremental, n_experiences: 4}"}
    params.update(scenario)
    return overrides + [f"scenario.{k}={v}" for k, v in params.items()]


@pytest.mark.parametrize(
    "scenario",
    [
        {"kernel": "power"},
        {"kernel": "exponential", "normalisation": "budget", "replay_fraction": 0.5},
        {"kernel": "full", "stochastic": "true", "a": 0.7, "d": 1},
    ],
)
def test_runs_end_to_end_with_per_update_evaluation(
    tmp_path: Any, scenario: dict[str, Any]
) -> None:
    prepared = prepare(build_config(None, _power_law_overrides(tmp_path, **scenario)))
    experiment = Experiment(prepared)
    experiment.run()
    records = experiment.log.frame()
    metrics = compute_metrics(records)
    assert metrics["final_acc"] is not None and metrics["min_acc"] is not None
    assert metrics["forgetting"] is not None
    subset = records[records.kind == "subset"]
    assert subset.step.nunique() == experiment.timing.updates + 1  # every update + step 0
    per_phase = subset.groupby("phase").current_task.unique()
    assert [list(v) for v in per_phase] == [[k] for k in range(4)]  # the task introduced


def test_plot_schedule_writes_a_png_and_no_run_folder(tmp_path: Any, capsys: Any) -> None:
    out = tmp_path / "figs" / "schedule.png"
    overrides = _power_law_overrides(tmp_path / "results", kernel="power")
    assert main(["plot", "--schedule", "--log", *overrides, "--out", str(out)]) == 0
    assert out.stat().st_size > 1000 and out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "4 tasks x 4 phases" in capsys.readouterr().out
    assert not (tmp_path / "results").exists()
