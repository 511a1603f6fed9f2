"""Class-incremental streams: the classes are split into disjoint groups learned in sequence.

Targets are the rank of a class in the class order, so the outputs a model needs grow in task
order (task 0 owns outputs 0..n0-1, task 1 the next ones, ...), as in van de Ven's class-IL
protocol. The split never drops a class: when ``n_experiences`` does not divide the number of
classes the build fails and asks for an explicit ``classes_per_experience`` (Avalanche's
``class_incremental_benchmark`` silently drops the remainder instead).
"""

from __future__ import annotations

from collections import Counter
from itertools import accumulate, pairwise
from typing import TYPE_CHECKING, ClassVar

import numpy as np
from pydantic import Field, ValidationInfo, field_validator, model_validator

from clbench.registry import SCENARIOS
from clbench.scenario import ScenarioBuilder
from clbench.scenario.plan import ScenarioPlan, Setting, Task
from clbench.scenarios._common import (
    indices_of_classes,
    invalid,
    make_plan,
    param_error,
    seeded_rng,
)

if TYPE_CHECKING:
    from clbench.scenario.base import PlanData

_ORDER_STREAM = 0  # `seeded_rng` streams (see scenarios._common.seeded_rng): class order
_SUBSAMPLE_STREAM = 3  # training samples kept per class


def _used_count(class_order: list[int] | None, num_classes: int | None) -> int | None:
    """Number of classes used, when it is known without the dataset."""
    if num_classes is not None:
        return num_classes
    return len(class_order) if class_order is not None else None


def _even_split_hint(n_classes: int, n_experiences: int) -> list[int]:
    """The most even explicit split (bigger groups first), to suggest in error messages."""
    q, r = divmod(n_classes, n_experiences)
    return [q + 1] * r + [q] * (n_experiences - r)


@SCENARIOS.register("class_incremental")
class ClassIncremental(ScenarioBuilder):
    """Disjoint groups of classes, one group per task; the task id is not given at test time."""

    summary: ClassVar[str] = (
        "Class-incremental: disjoint class groups in sequence, one growing head, no task id."
    )

    class Config(ScenarioBuilder.Config):
        # Field order matters: cross-field validators below read the fields declared before them.
        class_order: list[int] | None = Field(
            None,
            description="Explicit class order (distinct base-dataset class ids, all classes or a "
            "subset); the classes listed are the classes used. Default: a random order drawn "
            "from the build seed (shuffle_classes) or 0..C-1.",
        )
        shuffle_classes: bool = Field(
            True,
            description="Without class_order, shuffle the classes with the build seed; false "
            "keeps 0..C-1. Forced to false when class_order is given.",
        )
        num_classes: int | None = Field(
            None,
            ge=1,
            description="Use only the first num_classes classes of the order (default: all).",
        )
        classes_per_experience: list[int] | None = Field(
            None,
            description="Explicit (possibly uneven) split, e.g. [5, 1, 1, 1, 1, 1]; must sum to "
            "the number of classes used. Overrides the even split of n_experiences.",
        )
        n_experiences: int = Field(
            5,
            ge=1,
            description="Number of tasks of an even split; must divide the number of classes "
            "used (set to len(classes_per_experience) when that is given).",
        )
        train_samples_per_class: int | None = Field(
            None,
            ge=1,
            description="Random subset of this many training samples of every class, drawn "
            "with the run's seed (default: all). Test sets stay full.",
        )

        @field_validator("class_order")
        @classmethod
        def _distinct_ids(cls, order: list[int] | None) -> list[int] | None:
            if order is None:
                return order
            if not order:
                raise invalid("must list at least one class id (or be omitted)")
            if any(c < 0 for c in order):
                raise invalid(f"class ids are non-negative; got {[c for c in order if c < 0]}")
            duplicates = sorted(c for c, n in Counter(order).items() if n > 1)
            if duplicates:
                raise invalid(f"class ids must be distinct; repeated: {duplicates}")
            return order

        # Field validators do not run on defaults, so these two only see explicit values.
        @field_validator("shuffle_classes")
        @classmethod
        def _no_shuffle_with_order(cls, shuffle: bool, info: ValidationInfo) -> bool:
            if shuffle and info.data.get("class_order") is not None:
                raise invalid("class_order fixes the order; omit shuffle_classes or set false")
            return shuffle

        @field_validator("num_classes")
        @classmethod
        def _within_order(cls, n: int | None, info: ValidationInfo) -> int | None:
            order = info.data.get("class_order")
            if n is not None and order is not None and n > len(order):
                raise invalid(f"class_order lists only {len(order)} classes")
            return n

        @field_validator("classes_per_experience")
        @classmethod
        def _valid_sizes(cls, sizes: list[int] | None, info: ValidationInfo) -> list[int] | None:
            if sizes is None:
                return sizes
            if not sizes or any(n < 1 for n in sizes):
                raise invalid("needs at least one experience, each with at least one class")
            used = _used_count(info.data.get("class_order"), info.data.get("num_classes"))
            if used is not None and sum(sizes) != used:
                raise invalid(
                    f"sums to {sum(sizes)} but {used} classes are used (class_order/num_classes)"
                )
            return sizes

        @field_validator("n_experiences")
        @classmethod
        def _consistent_count(cls, n: int, info: ValidationInfo) -> int:
            sizes = info.data.get("classes_per_experience")
            if sizes is not None and n != len(sizes):
                raise invalid(
                    f"classes_per_experience has {len(sizes)} entries; give only one of the two"
                )
            used = _used_count(info.data.get("class_order"), info.data.get("num_classes"))
            if used is not None and n > used:
                raise invalid(f"more experiences than the {used} classes used")
            return n

        @model_validator(mode="after")
        def _resolve(self) -> ClassIncremental.Config:
            # Make the dumped config (stored in the plan) say what the build actually does.
            if self.classes_per_experience is not None:
                self.n_experiences = len(self.classes_per_experience)
            if self.class_order is not None:
                self.shuffle_classes = False
            return self

    @property
    def setting(self) -> Setting:
        return "class"

    def class_groups(self, num_dataset_classes: int, seed: int) -> list[list[int]]:
        """Base class ids of each task, in class order; raises `ConfigError` on a bad split."""
        cfg = self.config
        if cfg.class_order is not None:
            unknown = sorted(c for c in cfg.class_order if c >= num_dataset_classes)
            if unknown:
                raise param_error(
                    "class_order", unknown, f"class ids 0..{num_dataset_classes - 1} of the dataset"
                )
            order = list(cfg.class_order)
        elif cfg.shuffle_classes:
            order = seeded_rng(seed, _ORDER_STREAM).permutation(num_dataset_classes).tolist()
        else:
            order = list(range(num_dataset_classes))

        if cfg.num_classes is not None:
            if cfg.num_classes > len(order):
                raise param_error(
                    "num_classes", cfg.num_classes, f"at most the {len(order)} classes available"
                )
            order = order[: cfg.num_classes]
        used = len(order)

        if cfg.classes_per_experience is not None:
            sizes = list(cfg.classes_per_experience)
            if sum(sizes) != used:
                raise param_error(
                    "classes_per_experience",
                    sizes,
                    f"sizes summing to the {used} classes used (or set scenario.num_classes to "
                    f"{sum(sizes)} to use fewer classes)",
                )
        else:
            n = cfg.n_experiences
            if n > used:
                raise param_error("n_experiences", n, f"1..{used} (the number of classes used)")
            if used % n:
                divisors = [d for d in range(1, used + 1) if used % d == 0]
                raise param_error(
                    "n_experiences",
                    n,
                    f"a divisor of the {used} classes used ({', '.join(map(str, divisors))}); "
                    "classes are never dropped: for an uneven split set "
                    f"scenario.classes_per_experience, e.g. {_even_split_hint(used, n)}",
                )
            sizes = [used // n] * n

        bounds = accumulate(sizes, initial=0)
        return [order[a:b] for a, b in pairwise(bounds)]

    def _kept_train(self, labels: np.ndarray, classes: list[int], seed: int) -> np.ndarray | None:
        """Mask of the training samples kept: ``train_samples_per_class`` of every class, drawn
        without replacement from one stream, classes in ascending order; None keeps all."""
        n = self.config.train_samples_per_class
        if n is None:
            return None
        rng = seeded_rng(seed, _SUBSAMPLE_STREAM)
        keep = np.zeros(len(labels), dtype=bool)
        for c in sorted(classes):
            pool = indices_of_classes(labels, [c])
            if n > len(pool):
                allowed = f"at most {len(pool)} (training samples of class {c})"
                raise param_error("train_samples_per_class", n, allowed)
            keep[rng.choice(pool, size=n, replace=False)] = True
        return keep

    def build(self, dataset: PlanData, seed: int) -> ScenarioPlan:
        """One task per class group, targets = global rank of the class in the order."""
        groups = self.class_groups(dataset.num_classes, seed)
        rank = {c: r for r, c in enumerate(c for group in groups for c in group)}
        y_train, y_test = np.asarray(dataset.train.y), np.asarray(dataset.test.y)
        keep = self._kept_train(y_train, [c for group in groups for c in group], seed)
        tasks = [
            Task(
                id=k,
                classes=tuple(group),
                train_indices=_kept(indices_of_classes(y_train, group), keep),
                test_indices=indices_of_classes(y_test, group),
                label_map={c: rank[c] for c in group},
                output_ids=tuple(rank[c] for c in group),
            )
            for k, group in enumerate(groups)
        ]
        return make_plan(self, dataset, tasks, num_outputs=len(rank))


def _kept(indices: np.ndarray, keep: np.ndarray | None) -> np.ndarray:
    return indices if keep is None else indices[keep[indices]]
