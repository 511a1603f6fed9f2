"""Domain-incremental streams: every task has all classes, each under its own input domain.

The label space is shared (targets = class ids, one head with all outputs) and the task id is not
given. A domain is either a per-task input transform applied on the device (``permutation``,
``rotation``, ``noise``; the plan stores only the transform parameters) or one source dataset of a
multi-dataset ``concat`` source (``dataset``: task k = the samples whose domain id is k).

Task 0 is transformed too by default (Avalanche and van de Ven's permuted MNIST);
``first_task_identity: true`` keeps it untransformed as continuum's ``Permutations`` does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np
from pydantic import Field, ValidationInfo, field_validator, model_validator

from clbench.registry import SCENARIOS
from clbench.scenario import ScenarioBuilder
from clbench.scenario.plan import IDENTITY, InputTransform, ScenarioPlan, Setting, Task
from clbench.scenarios._common import invalid, make_plan, param_error, seeded_rng

if TYPE_CHECKING:
    from clbench.scenario.base import PlanData

_TRANSFORM_STREAM = 1  # `seeded_rng` streams (see scenarios._common.seeded_rng)
_SPLIT_STREAM = 2
_MAX_NOISE_STD = 0.5


def default_rotations(n_experiences: int, first_task_identity: bool) -> list[float]:
    """Evenly spaced angles in [0, 180): ``180·k/K`` (k = 0..K-1) when task 0 is the identity,
    else ``180·k/(K+1)`` (k = 1..K) so that every task is rotated and none by a full 180°
    (which would swap e.g. 6 and 9 against the upright task)."""
    k = n_experiences
    if first_task_identity:
        return [180.0 * i / k for i in range(k)]
    return [180.0 * (i + 1) / (k + 1) for i in range(k)]


def default_noise_levels(n_experiences: int, first_task_identity: bool) -> list[float]:
    """Evenly spaced noise std up to 0.5: ``0, .., 0.5`` when task 0 is the identity, else
    ``0.5/K, .., 0.5`` so that every task is noisy."""
    start = 0.0 if first_task_identity else _MAX_NOISE_STD / n_experiences
    return np.linspace(start, _MAX_NOISE_STD, n_experiences).tolist()


def _check_per_task(values: list[float], info: ValidationInfo, domain: str) -> None:
    """Validate an explicit per-task list (rotations, noise_levels) against earlier fields."""
    if info.data.get("domain") != domain:
        raise invalid(f"only applies to domain={domain}")
    k = info.data.get("n_experiences")
    if k is not None and len(values) != k:
        raise invalid(f"needs one value per task ({k}), got {len(values)}")
    if info.data.get("first_task_identity") and values[0] != 0:
        raise invalid("first_task_identity needs 0 for task 0")


@SCENARIOS.register("domain_incremental")
class DomainIncremental(ScenarioBuilder):
    """All classes in every task, a different input domain per task, one shared head."""

    summary: ClassVar[str] = (
        "Domain-incremental: all classes in every task under a new input domain "
        "(permutation, rotation, noise or source dataset); shared head, no task id."
    )

    class Config(ScenarioBuilder.Config):
        # Field order matters: cross-field validators below read the fields declared before them.
        domain: Literal["permutation", "rotation", "noise", "dataset"] = Field(
            "permutation",
            description="What changes between tasks: a pixel/feature permutation, a rotation, "
            "additive Gaussian noise (images only for rotation and noise), or the source dataset "
            "of a multi-dataset concat source (task k = domain id k).",
        )
        n_experiences: int = Field(
            5,
            ge=1,
            description="Number of tasks; with domain=dataset it must equal the number of "
            "source datasets.",
        )
        first_task_identity: bool = Field(
            False,
            description="Keep task 0 untransformed (continuum convention). Default false: task 0 "
            "is transformed too (Avalanche / van de Ven permuted MNIST).",
        )
        rotations: list[float] | None = Field(
            None,
            description="domain=rotation: angle in degrees of each task (one per task). "
            "Default: evenly spaced in [0, 180): 180·k/K from 0 with first_task_identity, "
            "else 180·k/(K+1) for k = 1..K.",
        )
        noise_levels: list[float] | None = Field(
            None,
            description="domain=noise: noise std of each task in [0, 1] pixel units (one per "
            "task). Default: evenly spaced up to 0.5, from 0 with first_task_identity, else "
            "from 0.5/K.",
        )
        split: Literal["full", "disjoint"] = Field(
            "full",
            description="full: every task uses the whole train set under its own transform "
            "(permuted MNIST); disjoint: the train set is cut into K disjoint random chunks, "
            "one per task. Test sets are always full, one per task.",
        )
        train_samples_per_task: int | None = Field(
            None,
            ge=1,
            description="Random subset of this many training samples per task (default: all "
            "of the task's samples).",
        )

        # Field validators do not run on defaults: these only check explicitly given values.
        @field_validator("first_task_identity")
        @classmethod
        def _transform_domain(cls, flag: bool, info: ValidationInfo) -> bool:
            if info.data.get("domain") == "dataset":
                raise invalid("only applies to transform domains (not domain=dataset)")
            return flag

        @field_validator("rotations")
        @classmethod
        def _rotations(cls, angles: list[float] | None, info: ValidationInfo) -> list[float] | None:
            if angles is not None:
                _check_per_task(angles, info, "rotation")
            return angles

        @field_validator("noise_levels")
        @classmethod
        def _noise(cls, stds: list[float] | None, info: ValidationInfo) -> list[float] | None:
            if stds is not None:
                _check_per_task(stds, info, "noise")
                if any(not 0 <= s <= 1 for s in stds):
                    raise invalid("noise std is in [0, 1] pixel units")
            return stds

        @field_validator("split")
        @classmethod
        def _split(cls, split: str, info: ValidationInfo) -> str:
            if split == "disjoint" and info.data.get("domain") == "dataset":
                raise invalid("domain=dataset tasks are already disjoint; use split=full")
            return split

        @model_validator(mode="after")
        def _resolve(self) -> DomainIncremental.Config:
            # Make the dumped config (stored in the plan) list the angles/levels actually used.
            k, first = self.n_experiences, self.first_task_identity
            if self.domain == "rotation" and self.rotations is None:
                self.rotations = default_rotations(k, first)
            if self.domain == "noise" and self.noise_levels is None:
                self.noise_levels = default_noise_levels(k, first)
            return self

    @property
    def setting(self) -> Setting:
        return "domain"

    def transforms(self, dataset: PlanData, seed: int) -> list[InputTransform]:
        """The input transform of each task."""
        cfg = self.config
        k = cfg.n_experiences
        if cfg.domain in ("rotation", "noise") and not dataset.is_image:
            raise param_error(
                "domain",
                cfg.domain,
                f"permutation or dataset: {cfg.domain} needs uint8 images, dataset "
                f"{dataset.name!r} has {str(dataset.train.x.dtype).removeprefix('torch.')} inputs "
                f"{list(dataset.input_shape)}",
            )
        if cfg.domain == "dataset":
            return [IDENTITY] * k
        # One seed per task whatever first_task_identity says, so toggling it leaves the
        # transforms of tasks 1..K-1 unchanged. Distinct seeds: no two tasks share a permutation.
        seeds = seeded_rng(seed, _TRANSFORM_STREAM).choice(2**31 - 1, size=k, replace=False)
        out: list[InputTransform] = []
        for i, s in enumerate(seeds.tolist()):
            if cfg.domain == "permutation":
                identity = cfg.first_task_identity and i == 0
                t = IDENTITY if identity else InputTransform("permutation", seed=s)
            elif cfg.domain == "rotation":
                angle = float(cfg.rotations[i])
                t = IDENTITY if angle % 360 == 0 else InputTransform("rotation", degrees=angle)
            else:
                std = float(cfg.noise_levels[i])
                t = IDENTITY if std == 0 else InputTransform("noise", seed=s, std=std)
            out.append(t)
        return out

    def _domain_pools(self, dataset: PlanData) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Train and test indices of each source dataset (domain=dataset)."""
        cfg = self.config
        train_dom, test_dom = dataset.train.domain, dataset.test.domain
        if train_dom is None or test_dom is None:
            raise param_error(
                "domain",
                "dataset",
                f"permutation, rotation or noise: dataset {dataset.name!r} has no per-sample "
                "domain ids (domain=dataset needs a multi-dataset concat source)",
            )
        train_dom, test_dom = np.asarray(train_dom), np.asarray(test_dom)
        if dataset.domain_names is not None:
            n_domains = len(dataset.domain_names)
        else:
            n_domains = int(max(train_dom.max(initial=-1), test_dom.max(initial=-1))) + 1
        if cfg.n_experiences != n_domains:
            names = f": {', '.join(dataset.domain_names)}" if dataset.domain_names else ""
            raise param_error(
                "n_experiences",
                cfg.n_experiences,
                f"{n_domains}, the number of domains of dataset {dataset.name!r}{names} "
                "(domain=dataset makes one task per domain)",
            )
        train = [np.flatnonzero(train_dom == d).astype(np.int64) for d in range(n_domains)]
        test = [np.flatnonzero(test_dom == d).astype(np.int64) for d in range(n_domains)]
        return train, test

    def _train_indices(self, pools: list[np.ndarray], seed: int) -> list[np.ndarray]:
        """Each task's training indices from its pool: all, disjoint chunks, or a subset."""
        cfg = self.config
        rng = seeded_rng(seed, _SPLIT_STREAM)
        k, n = cfg.n_experiences, cfg.train_samples_per_task
        if cfg.split == "disjoint":
            # Transform domains share one pool (the whole train set); deal it into K chunks.
            pool = pools[0]
            if n is not None and n * k > len(pool):
                raise param_error(
                    "train_samples_per_task",
                    n,
                    f"at most {len(pool) // k} with split=disjoint and n_experiences={k} "
                    f"({len(pool)} training samples)",
                )
            if k > len(pool):
                raise param_error("n_experiences", k, f"at most {len(pool)} training samples")
            shuffled = rng.permutation(pool)
            # array_split keeps every sample (chunk sizes differ by at most one).
            chunks = np.array_split(shuffled, k) if n is None else np.split(shuffled[: n * k], k)
            return [np.sort(c) for c in chunks]
        if n is None:
            return list(pools)
        out = []
        for pool in pools:
            if n > len(pool):
                raise param_error(
                    "train_samples_per_task", n, f"at most {len(pool)} (training samples of a task)"
                )
            out.append(np.sort(rng.choice(pool, size=n, replace=False)))
        return out

    def build(self, dataset: PlanData, seed: int) -> ScenarioPlan:
        """K tasks over all classes; targets = class ids; full test set per task."""
        cfg = self.config
        k = cfg.n_experiences
        transforms = self.transforms(dataset, seed)
        if cfg.domain == "dataset":
            pools, test = self._domain_pools(dataset)
            names = list(dataset.domain_names or [f"domain {d}" for d in range(k)])
        else:
            pools = [np.arange(len(dataset.train), dtype=np.int64)] * k
            test = [np.arange(len(dataset.test), dtype=np.int64)] * k
            names = [_transform_name(t) for t in transforms]
        train = self._train_indices(pools, seed)
        classes = tuple(range(dataset.num_classes))
        tasks = [
            Task(
                id=i,
                name=names[i],
                classes=classes,
                train_indices=train[i],
                test_indices=test[i],
                label_map={c: c for c in classes},
                output_ids=classes,
                transform=transforms[i],
            )
            for i in range(k)
        ]
        return make_plan(self, dataset, tasks, num_outputs=dataset.num_classes)


def _transform_name(t: InputTransform) -> str:
    """A short task name saying which domain the task is in (shown in plan descriptions)."""
    details: dict[str, Any] = {
        "identity": "",
        "permutation": f" seed={t.seed}",
        "rotation": f" {t.degrees:g}deg",
        "noise": f" std={t.std:g}",
    }
    return f"{t.kind}{details[t.kind]}"
