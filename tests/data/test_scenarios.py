"""Tests of the built-in scenario generators (`scenarios/`) on small in-memory datasets."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from clbench.data.dataset import InMemoryDataset, Split
from clbench.errors import ConfigError
from clbench.later_keys import without_unset_later_keys
from clbench.registry import SCENARIOS, describe_params, validate_params
from clbench.scenario.plan import ScenarioPlan

N_CLASSES, TRAIN_PER_CLASS, TEST_PER_CLASS = 10, 20, 10


def _split(n_per_class: int, make_x: Any, rng: np.random.Generator) -> Split:
    # Shuffled labels, so a class's samples are not one contiguous block of indices.
    y = rng.permutation(np.repeat(np.arange(N_CLASSES), n_per_class))
    return Split(make_x(len(y)), torch.from_numpy(y.astype(np.int64)))


def _dataset(name: str, make_x: Any, seed: int = 0) -> InMemoryDataset:
    rng = np.random.default_rng(seed)
    return InMemoryDataset(
        name=name,
        train=_split(TRAIN_PER_CLASS, make_x, rng),
        test=_split(TEST_PER_CLASS, make_x, rng),
        class_names=tuple(f"c{k}" for k in range(N_CLASSES)),
        mean=(0.5,),
        std=(0.25,),
    )


@pytest.fixture(scope="module")
def images() -> InMemoryDataset:
    gen = torch.Generator().manual_seed(0)
    return _dataset(
        "tiny_images", lambda n: torch.randint(0, 256, (n, 1, 8, 8), generator=gen).to(torch.uint8)
    )


@pytest.fixture(scope="module")
def vectors() -> InMemoryDataset:
    gen = torch.Generator().manual_seed(1)
    return _dataset("tiny_vectors", lambda n: torch.randn(n, 6, generator=gen))


@pytest.fixture(scope="module")
def multi_domain() -> InMemoryDataset:
    """Three source datasets concatenated, with per-sample domain ids (like a concat source)."""
    rng = np.random.default_rng(2)

    def split(n: int) -> Split:
        y = torch.from_numpy(rng.integers(0, N_CLASSES, n).astype(np.int64))
        domain = torch.from_numpy(rng.integers(0, 3, n).astype(np.int64))
        x = torch.from_numpy(rng.integers(0, 256, (n, 1, 8, 8)).astype(np.uint8))
        return Split(x, y, domain)

    return InMemoryDataset(
        name="tiny_concat",
        train=split(150),
        test=split(60),
        class_names=tuple(f"c{k}" for k in range(N_CLASSES)),
        mean=(0.5,),
        std=(0.25,),
        domain_names=("a", "b", "c"),
    )


def build(
    name: str, params: dict[str, Any], dataset: InMemoryDataset, seed: int = 0
) -> ScenarioPlan:
    """Build a plan the way a run config arrives: a name and a dict of parameters."""
    cls = SCENARIOS.get(name)
    return cls(validate_params(cls.Config, params, "scenario")).build(dataset, seed)


def raises_config_error(
    name: str, params: dict[str, Any], dataset: InMemoryDataset, field: str
) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        build(name, params, dataset)
    assert info.value.field == field, str(info.value)
    assert field in str(info.value)
    return info.value


def class_targets(plan: ScenarioPlan) -> dict[int, int]:
    merged: dict[int, int] = {}
    for task in plan.tasks:
        merged.update(task.label_map)
    return merged


def check_class_split(plan: ScenarioPlan, dataset: InMemoryDataset, used: list[int]) -> None:
    """Disjoint tasks covering exactly `used`, all samples of their classes, ranks as targets."""
    y_train, y_test = dataset.train.y.numpy(), dataset.test.y.numpy()
    all_classes = [c for t in plan.tasks for c in t.classes]
    assert sorted(all_classes) == sorted(used)  # no class dropped, none repeated
    assert plan.num_outputs == len(used)
    rank = 0
    for task in plan.tasks:
        assert task.label_map == {c: rank + i for i, c in enumerate(task.classes)}
        assert task.output_ids == tuple(range(rank, rank + len(task.classes)))
        rank += len(task.classes)
        for idx, y in ((task.train_indices, y_train), (task.test_indices, y_test)):
            assert np.all(np.diff(idx) > 0)  # sorted, unique
            np.testing.assert_array_equal(idx, np.flatnonzero(np.isin(y, task.classes)))
    train_all = np.concatenate([t.train_indices for t in plan.tasks])
    assert len(np.unique(train_all)) == len(train_all)
    # Sequential phases: phase k = all training samples of task k.
    assert [p.current_task for p in plan.phases] == list(range(plan.num_tasks))
    np.testing.assert_array_equal(
        plan.count_matrix(), np.diag([len(t.train_indices) for t in plan.tasks])
    )


# ---------------------------------------------------------------------------------------------
# registry and configs


def test_all_families_registered_with_documented_parameters() -> None:
    for name in ("class_incremental", "task_incremental", "domain_incremental", "joint"):
        cls = SCENARIOS.get(name)
        assert cls.summary
        rows = describe_params(cls.Config)
        assert rows
        assert all(description for _, _, _, description in rows), name


@pytest.mark.parametrize(
    "name, params",
    [
        ("class_incremental", {"classes_per_experience": [4, 3, 3]}),
        ("task_incremental", {"class_order": [3, 1, 4, 0], "n_experiences": 2}),
        ("domain_incremental", {"domain": "rotation", "first_task_identity": True}),
        ("domain_incremental", {"domain": "noise", "n_experiences": 3}),
        ("joint", {"of": {"name": "domain_incremental", "n_experiences": 3}}),
    ],
)
def test_params_are_the_resolved_config_and_revalidate(
    name: str, params: dict[str, Any], images: InMemoryDataset
) -> None:
    plan = build(name, params, images)
    cls = SCENARIOS.get(name)
    resolved = cls(validate_params(cls.Config, params, "scenario")).config.model_dump()
    assert plan.params == without_unset_later_keys(resolved)  # later keys stored once set
    # The stored params are a complete config: building from them gives the same plan.
    assert build(name, plan.params, images).content_hash == plan.content_hash


# ---------------------------------------------------------------------------------------------
# class- and task-incremental


def test_class_incremental_default_split(images: InMemoryDataset) -> None:
    plan = build("class_incremental", {}, images)
    assert plan.setting == "class" and not plan.task_ids_at_test
    assert plan.num_tasks == 5 and all(len(t.classes) == 2 for t in plan.tasks)
    check_class_split(plan, images, list(range(N_CLASSES)))
    assert plan.params["n_experiences"] == 5 and plan.params["shuffle_classes"] is True


def test_class_incremental_fixed_order_without_shuffle(images: InMemoryDataset) -> None:
    plan = build("class_incremental", {"shuffle_classes": False, "n_experiences": 2}, images)
    assert [t.classes for t in plan.tasks] == [(0, 1, 2, 3, 4), (5, 6, 7, 8, 9)]
    # No random choice left: the seed does not change the plan.
    other = build(
        "class_incremental", {"shuffle_classes": False, "n_experiences": 2}, images, seed=9
    )
    assert other.content_hash == plan.content_hash


def test_class_incremental_explicit_order_subset(images: InMemoryDataset) -> None:
    plan = build("class_incremental", {"class_order": [7, 2, 5, 0], "n_experiences": 2}, images)
    assert [t.classes for t in plan.tasks] == [(7, 2), (5, 0)]
    assert class_targets(plan) == {7: 0, 2: 1, 5: 2, 0: 3}
    check_class_split(plan, images, [7, 2, 5, 0])
    assert plan.params["shuffle_classes"] is False  # resolved: the order is given


def test_class_incremental_num_classes_uses_first_of_order(images: InMemoryDataset) -> None:
    full = build("class_incremental", {"n_experiences": 1}, images, seed=4)
    plan = build("class_incremental", {"num_classes": 6, "n_experiences": 3}, images, seed=4)
    order = list(full.tasks[0].classes)
    assert [c for t in plan.tasks for c in t.classes] == order[:6]
    check_class_split(plan, images, order[:6])


@pytest.mark.parametrize("sizes", [[4, 3, 3], [5, 1, 1, 1, 1, 1], [10]])
def test_uneven_explicit_split(sizes: list[int], images: InMemoryDataset) -> None:
    plan = build("class_incremental", {"classes_per_experience": sizes}, images)
    assert [len(t.classes) for t in plan.tasks] == sizes
    assert plan.params["n_experiences"] == len(sizes)
    check_class_split(plan, images, list(range(N_CLASSES)))


@st.composite
def _split_params(draw: st.DrawFn) -> dict[str, Any]:
    """A random class order (all classes or a prefix) and a random explicit split of it."""
    order = draw(st.permutations(range(N_CLASSES)))[: draw(st.integers(1, N_CLASSES))]
    cuts = sorted(draw(st.sets(st.integers(1, len(order) - 1))) if len(order) > 1 else set())
    sizes = [b - a for a, b in zip([0, *cuts], [*cuts, len(order)], strict=True)]
    return {"class_order": order, "classes_per_experience": sizes}


@settings(max_examples=60, deadline=None)
@given(params=_split_params())
def test_any_explicit_split_keeps_every_class(params: dict[str, Any]) -> None:
    dataset = _dataset("tiny_images", lambda n: torch.zeros(n, 1, 8, 8, dtype=torch.uint8))
    plan = build("class_incremental", params, dataset)
    assert [c for t in plan.tasks for c in t.classes] == params["class_order"]
    check_class_split(plan, dataset, params["class_order"])


def test_task_incremental_is_the_class_split_with_task_ids(images: InMemoryDataset) -> None:
    params = {"classes_per_experience": [4, 3, 3]}
    cil = build("class_incremental", params, images, seed=3)
    til = build("task_incremental", params, images, seed=3)
    assert til.setting == "task" and til.task_ids_at_test
    check_class_split(til, images, list(range(N_CLASSES)))
    for a, b in zip(cil.tasks, til.tasks, strict=True):
        assert a.to_dict() == b.to_dict()
    # Per-task output ids: disjoint blocks covering all outputs, the engine's masks.
    assert [t.output_ids for t in til.tasks] == [(0, 1, 2, 3), (4, 5, 6), (7, 8, 9)]


def test_class_split_on_vectors(vectors: InMemoryDataset) -> None:
    plan = build("class_incremental", {"n_experiences": 10}, vectors)
    check_class_split(plan, vectors, list(range(N_CLASSES)))


# ---------------------------------------------------------------------------------------------
# determinism and serialisation


@pytest.mark.parametrize(
    "name, params",
    [
        ("class_incremental", {}),
        ("task_incremental", {}),
        ("domain_incremental", {}),
        ("domain_incremental", {"domain": "noise", "split": "disjoint"}),
        ("joint", {}),
    ],
)
def test_same_seed_same_plan_other_seed_other_plan(
    name: str, params: dict[str, Any], images: InMemoryDataset
) -> None:
    a, b = build(name, params, images, seed=7), build(name, params, images, seed=7)
    assert a.content_hash == b.content_hash
    for ta, tb in zip(a.tasks, b.tasks, strict=True):
        np.testing.assert_array_equal(ta.train_indices, tb.train_indices)
        np.testing.assert_array_equal(ta.test_indices, tb.test_indices)
        assert ta.classes == tb.classes and ta.transform == tb.transform
    c = build(name, params, images, seed=8)
    assert c.content_hash != a.content_hash
    if a.setting != "domain":
        assert [t.classes for t in c.tasks] != [t.classes for t in a.tasks]


@pytest.mark.parametrize(
    "name, params, fixture",
    [
        ("class_incremental", {"classes_per_experience": [5, 1, 1, 1, 1, 1]}, "images"),
        ("task_incremental", {}, "vectors"),
        ("domain_incremental", {"domain": "rotation"}, "images"),
        ("domain_incremental", {"domain": "noise", "train_samples_per_task": 50}, "images"),
        ("domain_incremental", {"domain": "dataset", "n_experiences": 3}, "multi_domain"),
        ("joint", {"of": {"name": "task_incremental"}}, "images"),
    ],
)
def test_json_round_trip(
    name: str, params: dict[str, Any], fixture: str, request: pytest.FixtureRequest
) -> None:
    plan = build(name, params, request.getfixturevalue(fixture))
    loaded = ScenarioPlan.from_dict(json.loads(json.dumps(plan.to_dict())))
    assert loaded.content_hash == plan.content_hash
    assert loaded.describe() == plan.describe()


def test_describe_lists_classes_and_sizes(images: InMemoryDataset) -> None:
    plan = build("class_incremental", {"class_order": [7, 2, 5, 0], "n_experiences": 2}, images)
    text = plan.describe()
    assert "task 0: classes [7, 2] train 40 test 20" in text
    assert "task 1: classes [5, 0] train 40 test 20" in text


# ---------------------------------------------------------------------------------------------
# domain-incremental


def check_same_label_space(plan: ScenarioPlan, dataset: InMemoryDataset) -> None:
    classes = tuple(range(dataset.num_classes))
    assert plan.setting == "domain" and plan.num_outputs == dataset.num_classes
    for task in plan.tasks:
        assert task.classes == classes and task.output_ids == classes
        assert task.label_map == {c: c for c in classes}


def test_permutation_defaults_transform_every_task(images: InMemoryDataset) -> None:
    plan = build("domain_incremental", {}, images)
    check_same_label_space(plan, images)
    assert plan.num_tasks == 5
    kinds = {t.transform.kind for t in plan.tasks}
    assert kinds == {"permutation"}  # task 0 permuted too (Avalanche / van de Ven)
    seeds = [t.transform.seed for t in plan.tasks]
    assert len(set(seeds)) == 5 and all(isinstance(s, int) for s in seeds)
    for task in plan.tasks:  # full train and test sets per task
        np.testing.assert_array_equal(task.train_indices, np.arange(len(images.train)))
        np.testing.assert_array_equal(task.test_indices, np.arange(len(images.test)))


def test_first_task_identity_keeps_the_other_transforms(images: InMemoryDataset) -> None:
    off = build("domain_incremental", {"first_task_identity": False}, images)
    on = build("domain_incremental", {"first_task_identity": True}, images)
    assert on.tasks[0].transform.kind == "identity"
    assert off.tasks[0].transform.kind == "permutation"
    assert [t.transform for t in on.tasks[1:]] == [t.transform for t in off.tasks[1:]]


def test_permutation_works_on_vectors(vectors: InMemoryDataset) -> None:
    plan = build("domain_incremental", {"n_experiences": 3}, vectors)
    check_same_label_space(plan, vectors)
    assert all(t.transform.kind == "permutation" for t in plan.tasks)


@pytest.mark.parametrize(
    "first, expected",
    [(False, [30.0, 60.0, 90.0, 120.0, 150.0]), (True, [0.0, 36.0, 72.0, 108.0, 144.0])],
)
def test_rotation_default_angles(
    first: bool, expected: list[float], images: InMemoryDataset
) -> None:
    plan = build("domain_incremental", {"domain": "rotation", "first_task_identity": first}, images)
    check_same_label_space(plan, images)
    assert plan.params["rotations"] == pytest.approx(expected)
    degrees = [t.transform.degrees for t in plan.tasks]
    assert degrees == pytest.approx(expected)
    assert (plan.tasks[0].transform.kind == "identity") is first
    assert all(t.transform.kind == "rotation" for t in plan.tasks[1:])


def test_explicit_rotations(images: InMemoryDataset) -> None:
    plan = build(
        "domain_incremental",
        {"domain": "rotation", "n_experiences": 3, "rotations": [0, 90, -45]},
        images,
    )
    assert [t.transform.kind for t in plan.tasks] == ["identity", "rotation", "rotation"]
    assert [t.transform.degrees for t in plan.tasks[1:]] == [90.0, -45.0]


@pytest.mark.parametrize("first", [False, True])
def test_noise_levels(first: bool, images: InMemoryDataset) -> None:
    plan = build("domain_incremental", {"domain": "noise", "first_task_identity": first}, images)
    check_same_label_space(plan, images)
    stds = [t.transform.std for t in plan.tasks]
    assert stds == pytest.approx(np.linspace(0.0 if first else 0.1, 0.5, 5))
    noisy = plan.tasks[1:] if first else plan.tasks
    assert all(t.transform.kind == "noise" and t.transform.seed is not None for t in noisy)


def test_disjoint_split_keeps_every_sample(images: InMemoryDataset) -> None:
    plan = build("domain_incremental", {"split": "disjoint", "n_experiences": 3}, images)
    chunks = [t.train_indices for t in plan.tasks]
    assert sorted(len(c) for c in chunks) == [66, 67, 67]
    np.testing.assert_array_equal(np.sort(np.concatenate(chunks)), np.arange(len(images.train)))
    for task in plan.tasks:  # test sets stay full
        np.testing.assert_array_equal(task.test_indices, np.arange(len(images.test)))


@pytest.mark.parametrize("split", ["full", "disjoint"])
def test_train_samples_per_task(split: str, images: InMemoryDataset) -> None:
    params = {"split": split, "train_samples_per_task": 40, "n_experiences": 4}
    plan = build("domain_incremental", params, images)
    assert all(len(t.train_indices) == 40 for t in plan.tasks)
    assert all(len(np.unique(t.train_indices)) == 40 for t in plan.tasks)
    merged = np.concatenate([t.train_indices for t in plan.tasks])
    assert (len(np.unique(merged)) == 160) is (split == "disjoint")


def test_train_samples_per_class_keeps_a_seeded_subset_of_every_class(
    images: InMemoryDataset,
) -> None:
    params = {"n_experiences": 5, "train_samples_per_class": 7, "shuffle_classes": False}
    plan = build("class_incremental", params, images, seed=3)
    labels = images.train.y.numpy()
    for task in plan.tasks:
        kept = labels[task.train_indices]
        assert sorted(np.unique(kept)) == sorted(task.classes)
        assert all((kept == c).sum() == 7 for c in task.classes)
        assert np.all(np.diff(task.train_indices) > 0)
    full = build("class_incremental", {"n_experiences": 5, "shuffle_classes": False}, images)
    assert [t.test_indices.tolist() for t in plan.tasks] == [
        t.test_indices.tolist() for t in full.tasks
    ]
    again = build("class_incremental", params, images, seed=3)
    other = build("class_incremental", params, images, seed=4)
    assert again.content_hash == plan.content_hash != other.content_hash
    task_il = build("task_incremental", params, images, seed=3)
    assert [t.train_indices.tolist() for t in task_il.tasks] == [
        t.train_indices.tolist() for t in plan.tasks
    ]


def test_train_samples_per_class_unset_keeps_the_run_hash() -> None:
    from clbench.config import build_config, config_hash

    plain = build_config(None, ["scenario.name=class_incremental"])
    assert "train_samples_per_class" in plain.scenario  # resolved, at its default None
    before = dict(plain.scenario)
    del before["train_samples_per_class"]  # what a run made before the key existed holds
    old = plain.model_copy(update={"scenario": before})
    assert config_hash(old) == config_hash(plain)
    subset = build_config(None, ["scenario.train_samples_per_class=10"])
    assert config_hash(subset) != config_hash(plain)


def test_train_samples_per_class_unset_keeps_the_plan_hash(images: InMemoryDataset) -> None:
    plan = build("class_incremental", {"n_experiences": 5}, images)
    assert "train_samples_per_class" not in plan.params  # as in plans made before the key
    subset = build("class_incremental", {"n_experiences": 5, "train_samples_per_class": 5}, images)
    assert subset.params["train_samples_per_class"] == 5


def test_dataset_domains(multi_domain: InMemoryDataset) -> None:
    plan = build("domain_incremental", {"domain": "dataset", "n_experiences": 3}, multi_domain)
    check_same_label_space(plan, multi_domain)
    assert [t.name for t in plan.tasks] == ["a", "b", "c"]
    for d, task in enumerate(plan.tasks):
        assert task.transform.kind == "identity"
        np.testing.assert_array_equal(
            task.train_indices, np.flatnonzero(multi_domain.train.domain.numpy() == d)
        )
        np.testing.assert_array_equal(
            task.test_indices, np.flatnonzero(multi_domain.test.domain.numpy() == d)
        )


# ---------------------------------------------------------------------------------------------
# joint


@pytest.mark.parametrize(
    "of",
    [
        None,
        {"name": "class_incremental", "classes_per_experience": [4, 3, 3]},
        {"name": "task_incremental", "n_experiences": 2},
        {"name": "domain_incremental", "n_experiences": 3},
    ],
)
def test_joint_is_one_phase_with_every_task(
    of: dict[str, Any] | None, images: InMemoryDataset
) -> None:
    params = {} if of is None else {"of": of}
    plan = build("joint", params, images, seed=5)
    inner_of = dict(plan.params["of"])
    inner = build(inner_of.pop("name"), inner_of, images, seed=5)
    assert plan.scenario == "joint" and plan.setting == inner.setting
    assert plan.num_outputs == inner.num_outputs
    assert [t.to_dict() for t in plan.tasks] == [t.to_dict() for t in inner.tasks]
    assert len(plan.phases) == 1
    (phase,) = plan.phases
    assert [p.task for p in phase.parts] == list(range(plan.num_tasks))
    for part, task in zip(phase.parts, plan.tasks, strict=True):
        np.testing.assert_array_equal(part.indices, task.train_indices)
    assert phase.current_task == plan.num_tasks - 1
    assert plan.count_matrix().shape == (1, plan.num_tasks)


def test_joint_default_is_class_incremental_with_resolved_params(images: InMemoryDataset) -> None:
    plan = build("joint", {}, images)
    assert plan.params["of"]["name"] == "class_incremental"
    assert plan.params["of"]["n_experiences"] == 5
    assert plan.setting == "class" and plan.num_tasks == 5


# ---------------------------------------------------------------------------------------------
# bad parameters: ConfigError naming the parameter


@pytest.mark.parametrize(
    "name, params, field",
    [
        ("class_incremental", {"n_experiences": 0}, "scenario.n_experiences"),
        ("class_incremental", {"n_experiences": 11}, "scenario.n_experiences"),
        ("class_incremental", {"n_experiences": 3}, "scenario.n_experiences"),
        ("task_incremental", {"n_experiences": 4}, "scenario.n_experiences"),
        ("class_incremental", {"class_order": [1, 2, 1, 3]}, "scenario.class_order"),
        ("class_incremental", {"class_order": [0, 1, 12, 3, 4]}, "scenario.class_order"),
        ("class_incremental", {"class_order": [0, -1]}, "scenario.class_order"),
        (
            "class_incremental",
            {"classes_per_experience": [4, 4]},
            "scenario.classes_per_experience",
        ),
        (
            "class_incremental",
            {"classes_per_experience": [5, 0, 5]},
            "scenario.classes_per_experience",
        ),
        (
            "class_incremental",
            {"classes_per_experience": [5, 5], "n_experiences": 3},
            "scenario.n_experiences",
        ),
        ("class_incremental", {"class_order": [0, 1], "num_classes": 3}, "scenario.num_classes"),
        ("class_incremental", {"num_classes": 11, "n_experiences": 1}, "scenario.num_classes"),
        (
            "class_incremental",
            {"class_order": [0, 1], "shuffle_classes": True},
            "scenario.shuffle_classes",
        ),
        ("class_incremental", {"n_experience": 5}, "scenario.n_experience"),
        ("domain_incremental", {"n_experiences": 0}, "scenario.n_experiences"),
        ("domain_incremental", {"domain": "blur"}, "scenario.domain"),
        ("domain_incremental", {"domain": "dataset"}, "scenario.domain"),
        ("domain_incremental", {"rotations": [0, 10, 20, 30, 40]}, "scenario.rotations"),
        ("domain_incremental", {"domain": "rotation", "rotations": [0, 90]}, "scenario.rotations"),
        (
            "domain_incremental",
            {
                "domain": "rotation",
                "n_experiences": 2,
                "first_task_identity": True,
                "rotations": [10, 90],
            },
            "scenario.rotations",
        ),
        (
            "domain_incremental",
            {"domain": "noise", "noise_levels": [0, 0.1, 0.2, 0.3, 2]},
            "scenario.noise_levels",
        ),
        ("domain_incremental", {"train_samples_per_task": 201}, "scenario.train_samples_per_task"),
        (
            "class_incremental",
            {"train_samples_per_class": TRAIN_PER_CLASS + 1},
            "scenario.train_samples_per_class",
        ),
        (
            "domain_incremental",
            {"split": "disjoint", "train_samples_per_task": 50},
            "scenario.train_samples_per_task",
        ),
        ("joint", {"of": {"n_experiences": 2}}, "scenario.of"),
        ("joint", {"of": {"name": "nope"}}, "scenario.of.name"),
        ("joint", {"of": {"name": "joint"}}, "scenario.of"),
        (
            "joint",
            {"of": {"name": "class_incremental", "n_experiences": 0}},
            "scenario.of.n_experiences",
        ),
        (
            "joint",
            {"of": {"name": "class_incremental", "n_experiences": 3}},
            "scenario.of.n_experiences",
        ),
        ("joint", {"of": {"name": "domain_incremental", "colour": 1}}, "scenario.of.colour"),
    ],
)
def test_bad_parameters_name_the_parameter(
    name: str, params: dict[str, Any], field: str, images: InMemoryDataset
) -> None:
    raises_config_error(name, params, images, field)


def test_non_dividing_split_suggests_explicit_sizes(images: InMemoryDataset) -> None:
    err = raises_config_error(
        "class_incremental", {"n_experiences": 3}, images, "scenario.n_experiences"
    )
    assert "scenario.classes_per_experience" in str(err) and "[4, 3, 3]" in str(err)


def test_rotation_and_noise_need_images(vectors: InMemoryDataset) -> None:
    for domain in ("rotation", "noise"):
        err = raises_config_error(
            "domain_incremental", {"domain": domain}, vectors, "scenario.domain"
        )
        assert "images" in str(err)


def test_dataset_domain_count_must_match(multi_domain: InMemoryDataset) -> None:
    err = raises_config_error(
        "domain_incremental",
        {"domain": "dataset", "n_experiences": 2},
        multi_domain,
        "scenario.n_experiences",
    )
    assert "3" in str(err) and "a, b, c" in str(err)


# ---------------------------------------------------------------------------------------------
# the real `digits` dataset (skipped while its source is not there)


@pytest.fixture(scope="module")
def digits(tmp_path_factory: pytest.TempPathFactory) -> InMemoryDataset:
    module = pytest.importorskip("clbench.data.sources.digits")
    source = module.Digits(module.Digits.Config(), root=tmp_path_factory.mktemp("data"))
    return source.load()


def test_digits_split_mnist_protocol(digits: InMemoryDataset) -> None:
    plan = build("class_incremental", {"n_experiences": 5}, digits)
    check_class_split(plan, digits, list(range(10)))
    assert sum(len(t.train_indices) for t in plan.tasks) == len(digits.train)
    assert sum(len(t.test_indices) for t in plan.tasks) == len(digits.test)
    with pytest.raises(ConfigError, match=r"scenario\.n_experiences"):
        build("class_incremental", {"n_experiences": 4}, digits)


def test_digits_domain_incremental(digits: InMemoryDataset) -> None:
    for domain in ("permutation", "rotation", "noise"):
        plan = build("domain_incremental", {"domain": domain, "n_experiences": 4}, digits)
        check_same_label_space(plan, digits)
        assert plan.num_tasks == 4


def test_digits_joint(digits: InMemoryDataset) -> None:
    plan = build("joint", {"of": {"name": "task_incremental", "n_experiences": 2}}, digits)
    assert plan.phases[0].size == len(digits.train)
    assert plan.setting == "task"
