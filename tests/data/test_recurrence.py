"""Recurrence streams: SCoLe and CIR (`scenarios/recurrence.py`)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from clbench.config import build_config
from clbench.data.dataset import InMemoryDataset
from clbench.engine.runner import Experiment, prepare
from clbench.errors import ConfigError
from clbench.metrics import compute_metrics
from clbench.registry import SCENARIOS, validate_params
from clbench.scenario.plan import ScenarioPlan
from clbench.scenarios._common import seeded_rng
from clbench.scenarios.recurrence import (
    cir_first_occurrence_pmf,
    cir_schedule,
    scole_class_probs,
    scole_schedule,
)
from tests.helpers import fast_overrides, make_image_dataset


def build(
    name: str, params: dict[str, Any], dataset: InMemoryDataset, seed: int = 0
) -> ScenarioPlan:
    cls = SCENARIOS.get(name)
    return cls(validate_params(cls.Config, params, "scenario")).build(dataset, seed)


def config_error(name: str, params: dict[str, Any], dataset: InMemoryDataset) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        build(name, params, dataset)
    return info.value


@pytest.fixture(scope="module")
def ten() -> InMemoryDataset:
    return make_image_dataset(classes=10, train_per_class=12, test_per_class=3)


def entropy(p: np.ndarray) -> float:
    return float(-(p * np.log(p)).sum())


def first_phase_of_tasks(plan: ScenarioPlan) -> list[int]:
    counts = plan.count_matrix()
    return [int(np.flatnonzero(counts[:, t])[0]) for t in range(plan.num_tasks)]


def check_class_stream(plan: ScenarioPlan, dataset: InMemoryDataset) -> None:
    """One task per class, ids by first appearance, current task = newest task in the phase."""
    counts = plan.count_matrix()
    first = first_phase_of_tasks(plan)
    assert first == sorted(first) and first[0] == 0
    seen = -1
    for k, phase in enumerate(plan.phases):
        present = np.flatnonzero(counts[k])
        assert phase.current_task == present.max()
        # the seen tasks stay a prefix 0..seen (what the evaluator evaluates)
        seen = max(seen, int(present.max()))
        assert set(np.flatnonzero(counts[: k + 1].sum(axis=0))) == set(range(seen + 1))
    y_train = dataset.train.y.numpy()
    for task in plan.tasks:
        assert len(task.classes) == 1 and task.output_ids == (task.label_map[task.classes[0]],)
        np.testing.assert_array_equal(y_train[task.train_indices], task.classes[0])
    for phase in plan.phases:
        for part in phase.parts:
            assert np.isin(part.indices, plan.tasks[part.task].train_indices).all()
            assert len(np.unique(part.indices)) == len(part.indices)


# ---------------------------------------------------------------------------------------------
# SCoLe


@pytest.mark.parametrize("c", [1, 2, 5])
def test_scole_phases_have_exactly_c_classes(c: int, ten: InMemoryDataset) -> None:
    plan = build("recurrence", {"n_phases": 200, "classes_per_phase": c}, ten)
    counts = plan.count_matrix()
    assert counts.shape == (200, 10)
    assert np.all((counts > 0).sum(axis=1) == c)
    assert np.all(counts[counts > 0] == 12)  # all samples of each drawn class
    assert plan.setting == "class" and plan.num_outputs == 10
    check_class_stream(plan, ten)


def test_scole_targets_are_class_positions(ten: InMemoryDataset) -> None:
    plan = build("recurrence", {"n_phases": 50, "num_classes": 4}, ten)
    used = sorted(c for t in plan.tasks for c in t.classes)
    assert plan.num_outputs == 4 and len(used) == 4
    for task in plan.tasks:
        (cls,) = task.classes
        assert task.label_map == {cls: used.index(cls)}


def test_entropy_decrease_matches_the_official_table() -> None:
    rng = np.random.default_rng(0)
    for n, k, ratio, h in [
        (10, 1, 1.8, 2.285),
        (10, 2, 3.3, 2.237),
        (10, 4, 10.9, 2.079),
        (100, 1, 100, 4.417),
    ]:
        p = scole_class_probs(n, {"entropy_decrease": k}, rng)
        assert p.sum() == pytest.approx(1.0)
        assert p.max() / p.min() == pytest.approx(ratio, rel=0.02)
        assert entropy(p) == pytest.approx(h, abs=0.001)
    assert entropy(scole_class_probs(10, "uniform", rng)) == pytest.approx(math.log(10))


def test_skewed_class_frequencies_approach_p() -> None:
    rng = seeded_rng(0, 0)
    p = scole_class_probs(10, {"entropy_decrease": 4}, rng)
    phases = 20000
    drawn = np.concatenate(scole_schedule(p, phases, 1, 0.0, rng))
    freq = np.bincount(drawn, minlength=10) / phases
    tolerance = 4 * np.sqrt(p * (1 - p) / phases)
    assert np.all(np.abs(freq - p) < tolerance), (freq, p)


def test_uniform_class_frequencies_approach_c_over_n(ten: InMemoryDataset) -> None:
    plan = build("recurrence", {"n_phases": 3000, "classes_per_phase": 2}, ten)
    freq = (plan.count_matrix() > 0).mean(axis=0)
    p = 2 / 10
    assert np.all(np.abs(freq - p) < 4 * math.sqrt(p * (1 - p) / 3000)), freq


def test_prob_reduction_favours_classes_not_drawn_recently() -> None:
    def repeat_rate(reduction: float) -> float:
        drawn = np.concatenate(
            scole_schedule(np.full(3, 1 / 3), 3000, 1, reduction, seeded_rng(0, 0))
        )
        return float((drawn[1:] == drawn[:-1]).mean())

    assert abs(repeat_rate(0) - 1 / 3) < 0.04  # i.i.d. draws: 1/N
    assert repeat_rate(10) < 0.2  # novelty bias


def test_samples_per_class_caps_with_fresh_subsets(ten: InMemoryDataset) -> None:
    plan = build("recurrence", {"n_phases": 60, "samples_per_class": 5}, ten)
    counts = plan.count_matrix()
    assert set(counts[counts > 0].tolist()) == {5}
    by_task: dict[int, list[tuple[int, ...]]] = {}
    for phase in plan.phases:
        for part in phase.parts:
            by_task.setdefault(part.task, []).append(tuple(part.indices))
    assert any(len(set(draws)) > 1 for draws in by_task.values())


def test_recurrence_is_deterministic_by_seed(ten: InMemoryDataset) -> None:
    params = {"n_phases": 40, "class_probs": {"entropy_decrease": 2}}
    a, b = build("recurrence", params, ten, seed=5), build("recurrence", params, ten, seed=5)
    assert a.content_hash == b.content_hash
    assert build("recurrence", params, ten, seed=6).content_hash != a.content_hash
    assert build("recurrence", a.params, ten, seed=5).content_hash == a.content_hash


def test_scole_invalid_parameters_are_rejected(ten: InMemoryDataset) -> None:
    err = config_error("recurrence", {"classes_per_phase": 11}, ten)
    assert err.field == "scenario.classes_per_phase" and "1..10" in str(err)
    err = config_error("recurrence", {"classes_per_phase": 4, "num_classes": 3}, ten)
    assert err.field == "scenario.classes_per_phase"
    err = config_error("recurrence", {"num_classes": 11}, ten)
    assert err.field == "scenario.num_classes"
    err = config_error("recurrence", {"class_probs": {"entropy": 2}}, ten)
    assert err.field == "scenario.class_probs"
    err = config_error("recurrence", {"class_probs": [0.5, 0.5]}, ten)
    assert err.field == "scenario.class_probs" and "10" in str(err)
    err = config_error(
        "recurrence", {"class_probs": [1.0] + [0.0] * 9, "classes_per_phase": 2}, ten
    )
    assert err.field == "scenario.classes_per_phase" and "positive probability" in str(err)


def test_entropy_decrease_rejects_class_counts_with_negative_probabilities() -> None:
    thirty = make_image_dataset(classes=30, train_per_class=2, test_per_class=1)
    err = config_error("recurrence", {"class_probs": {"entropy_decrease": 2}}, thirty)
    assert err.field == "scenario.class_probs" and "negative" in str(err)
    # valid: 20 classes used (SCoLe's f = 0.05 stays positive), or k = 0 (uniform)
    build("recurrence", {"class_probs": {"entropy_decrease": 2}, "num_classes": 20}, thirty)
    build("recurrence", {"class_probs": {"entropy_decrease": 0}}, thirty)
    hundred = make_image_dataset(classes=100, train_per_class=1, test_per_class=1)
    build("recurrence", {"class_probs": {"entropy_decrease": 1}, "n_phases": 5}, hundred)


# ---------------------------------------------------------------------------------------------
# CIR


def test_geometric_first_occurrence_pmf() -> None:
    pmf = cir_first_occurrence_pmf(50, {"dist_type": "geometric", "p": 0.1})
    expected = 0.9 ** np.arange(50) * 0.1
    np.testing.assert_allclose(pmf, expected / expected.sum())
    np.testing.assert_allclose(cir_first_occurrence_pmf(4, {"dist_type": "uniform"}), [0.25] * 4)


@pytest.mark.parametrize("recurrence", [{"dist_type": "fixed", "p": 0.3}, {"dist_type": "random"}])
def test_cir_stream_structure(recurrence: dict[str, Any], ten: InMemoryDataset) -> None:
    params = {
        "n_phases": 80,
        "samples_per_phase": 12,
        "first_occurrence": {"dist_type": "uniform"},
        "recurrence": recurrence,
    }
    plan = build("cir", params, ten)
    counts = plan.count_matrix()
    assert len(plan.phases) <= 80 and np.all(counts.sum(axis=1) > 0)  # empty phases dropped
    check_class_stream(plan, ten)
    for row in counts:
        present = row[row > 0]
        assert present.max() - present.min() <= 1  # equal split
        assert present.sum() == min(12, 12 * len(present))


def test_cir_repetition_probabilities() -> None:
    rng = seeded_rng(0, 0)
    fixed = {"dist_type": "fixed", "p": 0.3}
    present = cir_schedule(20, 3000, {"dist_type": "uniform_alpha", "alpha": 0.01}, fixed, rng)
    first = present.argmax(axis=0)
    after = np.concatenate([present[f + 1 :, c] for c, f in enumerate(first)])
    assert abs(after.mean() - 0.3) < 0.01
    once = cir_schedule(10, 50, {"dist_type": "uniform"}, {"dist_type": "fixed", "p": 0}, rng)
    np.testing.assert_array_equal(once.sum(axis=0), np.ones(10))  # class-incremental


@pytest.mark.parametrize(
    "params, hint",
    [
        ({"first_occurrence": {"dist_type": "bogus"}}, "dist_type must be one of"),
        ({"first_occurrence": {"dist_type": "geometric"}}, "takes p"),
        ({"first_occurrence": {"dist_type": "geometric", "p": 0}}, "(0, 1]"),
        ({"recurrence": {"dist_type": "fixed", "p": 1.5}}, "[0, 1]"),
        ({"recurrence": {"dist_type": "random", "p": 0.1}}, "no parameters"),
    ],
)
def test_cir_invalid_distributions_are_rejected(
    params: dict[str, Any], hint: str, ten: InMemoryDataset
) -> None:
    err = config_error("cir", params, ten)
    field = "scenario." + next(iter(params))
    assert err.field == field and hint in str(err), str(err)


def test_cir_is_deterministic_by_seed(ten: InMemoryDataset) -> None:
    params = {"n_phases": 30, "first_occurrence": {"dist_type": "geometric", "p": 0.2}}
    a = build("cir", params, ten, seed=1)
    assert build("cir", params, ten, seed=1).content_hash == a.content_hash
    assert build("cir", params, ten, seed=2).content_hash != a.content_hash
    assert build("cir", a.params, ten, seed=1).content_hash == a.content_hash


# ---------------------------------------------------------------------------------------------
# end to end


@pytest.mark.parametrize(
    "scenario",
    [
        {"name": "recurrence", "n_phases": 25, "classes_per_phase": 2},
        {"name": "cir", "n_phases": 25, "samples_per_phase": 60},
    ],
)
def test_runs_end_to_end_with_per_update_evaluation(
    tmp_path: Any, scenario: dict[str, Any]
) -> None:
    overrides = [o for o in fast_overrides(tmp_path) if not o.startswith("scenario.")]
    overrides += [f"scenario.{k}={v}" for k, v in scenario.items()]
    if scenario["name"] == "cir":
        overrides.append("scenario.first_occurrence={dist_type: geometric, p: 0.3}")
    experiment = Experiment(prepare(build_config(None, overrides)))
    experiment.run()
    records = experiment.log.frame()
    metrics = compute_metrics(records)
    assert metrics["final_acc"] is not None and metrics["aia"] is not None
    plan = experiment.prepared.plan
    # every evaluation covers exactly the classes seen so far
    subset = records[records.kind == "subset"]
    seen = np.maximum.accumulate([max(p.task for p in phase.parts) for phase in plan.phases])
    # ... the step-0 point included: it covers every task phase 0 trains
    if scenario["name"] == "recurrence":  # SCoLe's phase 0 holds two classes, two tasks
        assert seen[0] == 1
    for (phase, _step), rows in subset.groupby(["phase", "step"]):
        assert sorted(rows.task) == list(range(seen[phase] + 1))
