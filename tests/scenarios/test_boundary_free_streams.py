"""Boundary-free streams: `online` (scenarios/online.py), `blurry` (scenarios/blurry.py) and
`gaussian_schedule` (scenarios/gaussian_schedule.py). Each plan is reproducible from its hash and
its class mix per phase is what the generator's formula says."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

from clbench.data.dataset import InMemoryDataset
from clbench.errors import ConfigError
from clbench.registry import SCENARIOS, validate_params
from clbench.scenario.plan import ScenarioPlan
from tests.helpers import make_image_dataset


def build(name: str, params: dict[str, Any], dataset: InMemoryDataset, seed: int = 0):
    cls = SCENARIOS.get(name)
    return cls(validate_params(cls.Config, params, "scenario")).build(dataset, seed)


@pytest.fixture(scope="module")
def ten() -> InMemoryDataset:
    return make_image_dataset(classes=10, train_per_class=20, test_per_class=3)


def class_of_task(plan: ScenarioPlan) -> list[int]:
    return [t.classes[0] for t in plan.tasks]


def samples_per_phase(plan: ScenarioPlan) -> list[np.ndarray]:
    return [np.concatenate([p.indices for p in phase.parts]) for phase in plan.phases]


def assert_seen_tasks_are_a_prefix(plan: ScenarioPlan) -> None:
    """What the continual evaluator relies on: the tasks seen up to any phase are 0..k."""
    counts = plan.count_matrix()
    for k, phase in enumerate(plan.phases):
        seen = np.flatnonzero(counts[: k + 1].sum(axis=0))
        assert seen.tolist() == list(range(seen.max() + 1))
        assert phase.current_task <= seen.max()


# ---------------------------------------------------------------------------------------------
# online


def test_online_cuts_each_inner_phase_into_incoming_batches(ten):
    inner = build("class_incremental", {"n_experiences": 5}, ten)
    plan = build("online", {"phase_size": 15, "of": {"name": "class_incremental"}}, ten)
    # 40 samples per inner phase: batches of 15, 15 and the 10 left, none dropped
    assert [p.size for p in plan.phases] == [15, 15, 10] * 5
    for k, inner_phase in enumerate(inner.phases):
        cut = samples_per_phase(plan)[3 * k : 3 * k + 3]
        assert sorted(np.concatenate(cut).tolist()) == sorted(inner_phase.parts[0].indices.tolist())
        for phase in plan.phases[3 * k : 3 * k + 3]:
            assert phase.current_task == k
            assert phase.mix == tuple(float(t == k) for t in range(5))
    assert [t.classes for t in plan.tasks] == [t.classes for t in inner.tasks]
    assert plan.params["of"]["n_experiences"] == 5  # stored resolved


def test_online_without_shuffle_cuts_the_plan_order(ten):
    inner = build("class_incremental", {"n_experiences": 5}, ten)
    plan = build("online", {"phase_size": 8, "shuffle": False}, ten)
    order = inner.phases[0].parts[0].indices
    for j in range(5):
        assert plan.phases[j].parts[0].indices.tolist() == order[8 * j : 8 * j + 8].tolist()


def test_online_renumbers_tasks_by_first_appearance_and_keeps_the_inner_mix(ten):
    params = {"n_tasks": 5, "disjoint_percent": 50, "blurry_percent": 20}
    inner = build("blurry", params, ten)
    plan = build("online", {"phase_size": 6, "of": {"name": "blurry", **params}}, ten)
    assert_seen_tasks_are_a_prefix(plan)
    assert sorted(class_of_task(plan)) == sorted(class_of_task(inner))
    for task in plan.tasks:  # a class keeps its data and its output under its new id
        (old,) = [t for t in inner.tasks if t.classes == task.classes]
        assert task.label_map == old.label_map
        assert task.train_indices.tolist() == old.train_indices.tolist()
    # every cut phase carries the class shares of the blurry phase it was cut from
    first = plan.phases[0]
    inner_share = {
        inner.tasks[t].classes[0]: n / inner.phases[0].size
        for t, n in inner.phases[0].task_counts().items()
    }
    assert {c: first.mix[t] for t, c in enumerate(class_of_task(plan)) if first.mix[t]} == (
        pytest.approx(inner_share)
    )


# ---------------------------------------------------------------------------------------------
# blurry


def test_blurry_keeps_disjoint_classes_home_and_deals_m_percent_of_the_others(ten):
    # 10 classes, 5 tasks, N = 50: task j is home to disjoint class order[j] and blurry class
    # order[5 + j] (20 samples each); M = 20: 4 samples of each blurry class join a pool of 20,
    # dealt 4 to every task (its home included)
    plan = build("blurry", {"n_tasks": 5, "disjoint_percent": 50, "blurry_percent": 20}, ten)
    order = np.random.default_rng([0, 40]).permutation(10)  # the build's class order
    everything = np.concatenate(samples_per_phase(plan))
    assert sorted(everything.tolist()) == list(range(200))  # every sample once, none dropped
    assert [p.size for p in plan.phases] == [20 + 16 + 4] * 5
    task_of_class = {c: t for t, c in enumerate(class_of_task(plan))}
    counts = plan.count_matrix()
    away = 0
    for j in range(5):
        disjoint, blurry = task_of_class[order[j]], task_of_class[order[5 + j]]
        assert counts[:, disjoint].tolist() == [20 * (k == j) for k in range(5)]
        assert 16 <= counts[j, blurry] <= 20
        away += 20 - counts[j, blurry]
    assert 0 < away <= 20  # the dealt samples that did not land back home
    assert_seen_tasks_are_a_prefix(plan)


def test_blurry_with_m_zero_is_a_disjoint_class_split(ten):
    plan = build("blurry", {"n_tasks": 5, "disjoint_percent": 50, "blurry_percent": 0}, ten)
    counts = plan.count_matrix()
    assert ((counts > 0).sum(axis=0) == 1).all()  # every class in exactly one phase
    assert (counts.sum(axis=1) == 40).all()


def test_blurry_refuses_a_split_that_would_drop_classes(ten):
    with pytest.raises(ConfigError) as info:
        build("blurry", {"n_tasks": 5, "disjoint_percent": 30}, ten)
    assert info.value.field == "scenario.disjoint_percent"
    assert "[0, 50, 100]" in str(info.value)
    with pytest.raises(ConfigError) as info:
        build("blurry", {"n_tasks": 3}, ten)  # 10 classes cannot be dealt to 3 tasks
    assert info.value.field == "scenario.n_tasks"


# ---------------------------------------------------------------------------------------------
# gaussian schedule


def bump_probabilities(n_classes: int, n_phases: int, width: float) -> np.ndarray:
    """The module doc's formula, written out independently: P[k, r] for bump position r."""
    p = np.zeros((n_phases, n_classes))
    for k in range(n_phases):
        t = (k + 0.5) / n_phases
        for r in range(n_classes):
            mu, sigma = (r + 0.5) / n_classes, width / n_classes
            p[k, r] = np.exp(-((t - mu) ** 2) / (2 * sigma**2))
        p[k] /= p[k].sum()
    return p


def mix_by_bump(plan: ScenarioPlan, order: list[int]) -> np.ndarray:
    """``M[k, r]``: the stored mix of phase k for the class at bump position r."""
    task_of_class = {c: t for t, c in enumerate(class_of_task(plan))}
    return np.array([[p.mix[task_of_class[c]] for c in order] for p in plan.phases])


def counts_by_bump(plan: ScenarioPlan, order: list[int]) -> np.ndarray:
    task_of_class = {c: t for t, c in enumerate(class_of_task(plan))}
    return plan.count_matrix()[:, [task_of_class[c] for c in order]]


def test_gaussian_mix_and_rounded_counts_follow_the_formula(ten):
    params = {"phase_size": 10, "n_phases": 30, "width": 0.7, "counts": "rounded"}
    plan = build("gaussian_schedule", {**params, "shuffle_classes": False}, ten)
    expected = bump_probabilities(10, 30, 0.7)
    order = list(range(10))  # shuffle_classes false: bump r is class r
    np.testing.assert_allclose(mix_by_bump(plan, order), expected, atol=5e-7)
    counts = counts_by_bump(plan, order)
    assert (counts.sum(axis=1) == 10).all()
    assert (np.abs(counts - 10 * expected) < 1).all()  # the closest counts
    assert plan.phases[0].current_task == plan.tasks.index(
        next(t for t in plan.tasks if t.classes == (0,))
    )
    assert_seen_tasks_are_a_prefix(plan)


def test_gaussian_sampled_counts_match_the_mix_and_cycle_through_each_class(ten):
    plan = build("gaussian_schedule", {"phase_size": 10, "n_phases": 200, "width": 1.0}, ten)
    order = [int(c) for c in np.random.default_rng([0, 50]).permutation(10)]
    expected = bump_probabilities(10, 200, 1.0)
    np.testing.assert_allclose(mix_by_bump(plan, order), expected, atol=5e-7)
    counts = counts_by_bump(plan, order)
    assert (counts.sum(axis=1) == 10).all()
    mean = 10 * expected.sum(axis=0)  # a class's expected total over the stream
    sd = np.sqrt((10 * expected * (1 - expected)).sum(axis=0))
    assert (np.abs(counts.sum(axis=0) - mean) < 5 * sd).all()
    # a class's samples repeat only once all of them were used: draws per sample differ by <= 1
    drawn = np.bincount(np.concatenate(samples_per_phase(plan)), minlength=200)
    y = ten.train.y.numpy()
    for c in range(10):
        assert drawn[y == c].max() - drawn[y == c].min() <= 1


def test_gaussian_refuses_a_stream_in_which_a_class_is_never_drawn(ten):
    with pytest.raises(ConfigError) as info:
        build("gaussian_schedule", {"phase_size": 2, "n_phases": 3, "width": 0.1}, ten)
    assert info.value.field == "scenario.n_phases"


# ---------------------------------------------------------------------------------------------
# every stream: reproducible from its hash


STREAMS = {
    "online": {"phase_size": 7, "of": {"name": "class_incremental", "n_experiences": 2}},
    "online_blurry": {"phase_size": 9, "of": {"name": "blurry"}},
    "blurry": {"n_tasks": 5, "disjoint_percent": 50, "blurry_percent": 10},
    "gaussian_schedule": {"phase_size": 10, "width": 0.5},
}


@pytest.mark.parametrize("stream", sorted(STREAMS))
def test_each_stream_is_reproducible_from_its_hash(ten, stream):
    name = "online" if stream.startswith("online") else stream
    plan = build(name, STREAMS[stream], ten, seed=3)
    again = build(name, STREAMS[stream], ten, seed=3)
    assert again.content_hash == plan.content_hash
    saved = ScenarioPlan.from_dict(json.loads(json.dumps(plan.to_dict())))
    assert saved.content_hash == plan.content_hash
    assert [p.mix for p in saved.phases] == [p.mix for p in plan.phases]
    assert build(name, STREAMS[stream], ten, seed=4).content_hash != plan.content_hash
    np.testing.assert_allclose(plan.mix_matrix().sum(axis=1), 1.0)


def test_a_plan_without_a_mix_keeps_its_hash(ten):
    plan = build("class_incremental", {"n_experiences": 5}, ten)
    assert all("mix" not in p.to_dict() for p in plan.phases)
    np.testing.assert_array_equal(plan.mix_matrix(), np.eye(5))
