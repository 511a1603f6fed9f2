"""Power-law rehearsal environments: after each new task, earlier tasks come back.

Gandhi, Shah, Marupudi & Varma, arXiv 2401.10393: v1/v2 rehearse permuted-MNIST tasks
(domain-IL) in a "power-law environment", v3 rehearses class-IL splits. The closest code is the
prototype archana53/power-law-for-CI@39ec2f8:environments.py, whose count matrix this module
reproduces.

The plan keeps the tasks of a sequential ``base`` scenario unchanged and replaces its phases:
phase i trains on the new task i (``current_task = i``) plus, for every earlier task j < i, a
rehearsal part of ``n[i, j]`` samples given by a lag kernel ``w(Δ)``:

==============  ===========================================  ==================================
kernel          weight of an earlier task j at lag Δ          parameters (defaults)
==============  ===========================================  ==================================
``power``       ``(1 + Δ/τ)^(-d)``                            ``d`` 5.6, ``tau`` 10 (prototype)
``exponential`` ``exp(-Δ/β) / β``                             ``beta`` 1 (prototype)
``uniform``     ``1``
``rank_poly``   ``α·(0.10 + 0.01·j)^(α-1)``, j = task index   ``alpha`` 5 (prototype "powerlaw(α)")
``table``       ``table[Δ-1]``, 0 beyond the list             ``table`` (a list of weights)
``none``        no rehearsal (fine-tuning, lower baseline)
``full``        every earlier task again with as many samples as it had when introduced
                (cumulative training, upper baseline)
==============  ===========================================  ==================================

Normalisation (``n_new`` = the new task's sample count in phase i):

* ``absolute``: ``n[i, j] = round(n_new · w(Δ))``. The power kernel at d = 5.6, τ = 10 on
  57927 samples gives the prototype's ``powerlaw_unrestricted`` column to within one sample
  (57927 33969 20867 13329 8802 5981 4167 2967 2155 1592; the prototype's hard-coded list has
  2968 at Δ = 7 and is not exactly any power law; ``PROTOTYPE_LAG_COUNTS`` with
  ``kernel: table`` reproduces it exactly, see ``prototype_table``).
* ``budget``: the earlier tasks share ``floor(r · n_new)`` samples in proportion to ``w``.
  ``budget_rounding: exact`` (default) apportions by largest remainders, so the rehearsal total
  is exactly the budget whenever the tasks hold enough samples; ``prototype`` is the prototype's
  ``floor((budget // Σw) · w)``, which can fall a few samples short (28959 of 28963 for the
  exponential kernel at r = 0.5, phase 10).

Counts never exceed what a task can supply (its training samples, or its memory with
``resample: fixed_memory``); in absolute mode a capped count is simply lower, in exact budget mode
the remainder goes to the other tasks in proportion to their weights.

Rehearsal samples are drawn without replacement, freshly for every (task, phase) from the task's
whole training set (``resample: fresh``, the prototype's behaviour) or from a fixed per-task
memory of ``memory_per_task`` samples drawn once from the samples the task was introduced with
(``fixed_memory``). The lag Δ counts phases since the task's introduction (``lag_from:
introduction``, the prototype's matrix) or since the last phase in which it had samples
(``last_seen``).

``stochastic: true`` is the Anderson–Schooler variant (after Anderson & Schooler, Psychological
Science 1991, the paper's premise): in phase i every earlier task j is re-encountered with
probability ``min(1, a · Δ_j^(-d))``, Δ_j = phases since task j last had samples, which resets to 0
whenever it gets samples again. A re-encountered task gets the count the kernel and normalisation
give it at its lag (lag per ``lag_from``), computed over the re-encountered tasks only, so a budget
is shared among them; use ``kernel: full`` for whole re-encounters. Tasks not re-encountered get
nothing.

Parameters a chosen kernel or mode does not use are ignored (so a preset can switch kernels by a
single override).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np
from pydantic import BaseModel, Field, ValidationInfo, field_validator

from clbench.errors import ConfigError
from clbench.registry import SCENARIOS
from clbench.scenario import ScenarioBuilder
from clbench.scenario.plan import Phase, PhasePart, ScenarioPlan, Setting
from clbench.scenarios._common import (
    PREFIX,
    NestedScenario,
    invalid,
    make_plan,
    param_error,
    seeded_rng,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

    from clbench.scenario.base import PlanData

Kernel = Literal["power", "exponential", "uniform", "none", "full", "rank_poly", "table"]

_BASE = f"{PREFIX}.base"  # parameter path of the base scenario, used in its error messages
_NEW_STREAM = 10  # `seeded_rng` streams (see scenarios._common.seeded_rng)
_MEMORY_STREAM = 11
_REHEARSAL_STREAM = 12
_ENCOUNTER_STREAM = 13

# The prototype's hard-coded list (``power_law_sampling``), of which it keeps every other entry:
# lag Δ gets entry 2Δ, i.e. ≈ 57927·(1 + Δ/10)^(-5.6).
PROTOTYPE_POWER_LAW_LIST = (
    57927, 44078, 33969, 26483, 20867, 16603, 13329, 10790, 8802, 7232,
    5981, 4978, 4167, 3508, 2968, 2523, 2155, 1849, 1592, 1377, 1195,
)  # fmt: skip
PROTOTYPE_NEW_SAMPLES = 57927  # samples of the new task per phase in the prototype
PROTOTYPE_LAG_COUNTS = PROTOTYPE_POWER_LAW_LIST[0:20:2]  # lags 0..9


def prototype_table() -> list[float]:
    """``table`` weights for lags 1..9 that reproduce the prototype's power-law list exactly
    (absolute normalisation with 57927 new samples)."""
    return [n / PROTOTYPE_NEW_SAMPLES for n in PROTOTYPE_LAG_COUNTS[1:]]


def kernel_weights(config: PowerLaw.Config, lags: np.ndarray, task_ids: np.ndarray) -> np.ndarray:
    """Weights ``w`` of earlier tasks ``task_ids`` at lags ``lags`` (≥ 1) under ``config.kernel``
    (``full`` and ``none`` are handled by the caller)."""
    kernel = config.kernel
    lags = lags.astype(np.float64)
    if kernel == "power":
        return (1.0 + lags / config.tau) ** (-config.d)
    if kernel == "exponential":
        return np.exp(-lags / config.beta) / config.beta
    if kernel == "uniform":
        return np.ones_like(lags)
    if kernel == "rank_poly":
        # The prototype's positions 0.10, 0.11, ... for tasks 0, 1, ... (oldest smallest).
        return config.alpha * (0.10 + 0.01 * task_ids) ** (config.alpha - 1)
    if kernel == "table":
        table = np.asarray(config.table, dtype=np.float64)
        index = lags.astype(np.int64) - 1
        return np.where(index < len(table), table[np.minimum(index, len(table) - 1)], 0.0)
    raise ValueError(f"kernel {kernel!r} has no weights")


def apportion(total: int, weights: np.ndarray, caps: np.ndarray) -> np.ndarray:
    """Split ``total`` samples in proportion to ``weights``, at most ``caps[k]`` each.

    Largest remainders (ties to the lower position), so the counts sum to exactly
    ``min(total, Σ caps over positive weights)``; what a capped entry cannot take goes to the
    others in proportion to their weights.
    """
    counts = np.zeros(len(weights), dtype=np.int64)
    active = (weights > 0) & (caps > 0)
    remaining = total
    while remaining > 0 and active.any():
        share = remaining * weights[active] / weights[active].sum()
        room = (caps - counts)[active]
        over = share >= room
        if over.any():
            # Fill the tasks that cannot take their share, then share the rest again.
            idx = np.flatnonzero(active)[over]
            remaining -= int((caps - counts)[idx].sum())
            counts[idx] = caps[idx]
            active[idx] = False
            continue
        floors = np.floor(share).astype(np.int64)
        leftover = remaining - int(floors.sum())
        order = np.lexsort((np.arange(len(share)), -(share - floors)))
        floors[order[:leftover]] += 1
        counts[np.flatnonzero(active)] += floors
        break
    return counts


def _phase_row(
    config: PowerLaw.Config,
    phase: int,
    candidates: np.ndarray,
    lags: np.ndarray,
    new_counts: np.ndarray,
    caps: np.ndarray,
) -> np.ndarray:
    """Rehearsal counts of the earlier tasks ``candidates`` in phase ``phase``."""
    n_new = int(new_counts[phase])
    cap = caps[candidates]
    if config.kernel == "none" or len(candidates) == 0:
        return np.zeros(len(candidates), dtype=np.int64)
    if config.kernel == "full":
        return np.minimum(new_counts[candidates], cap)
    w = kernel_weights(config, lags, candidates)
    if config.normalisation == "absolute":
        # Round half up (np.rint would round half to even).
        return np.minimum(np.floor(n_new * w + 0.5).astype(np.int64), cap)
    budget = math.floor(n_new * config.replay_fraction)
    if config.budget_rounding == "prototype":
        # prototype: rescaled = (replay_cnt // sum(w)) * w, stored into an int matrix (truncation).
        rescaled = (budget // w.sum()) * w if w.sum() > 0 else np.zeros_like(w)
        return np.minimum(np.floor(rescaled).astype(np.int64), cap)
    return apportion(budget, w, cap)


def rehearsal_counts(
    config: PowerLaw.Config,
    new_counts: Sequence[int],
    capacities: Sequence[int],
    seed: int = 0,
) -> np.ndarray:
    """The composition matrix ``N[phase, task]`` of a power-law environment.

    ``new_counts[i]``: samples of task i in the phase that introduces it (the diagonal);
    ``capacities[j]``: the most samples task j can supply to one rehearsal part. Pure: no
    dataset; ``seed`` only drives the stochastic re-encounters.
    """
    new = np.asarray(new_counts, dtype=np.int64)
    caps = np.asarray(capacities, dtype=np.int64)
    k = len(new)
    matrix = np.zeros((k, k), dtype=np.int64)
    last_seen = np.arange(k)  # a task is seen when it is introduced
    encounters = seeded_rng(seed, _ENCOUNTER_STREAM)
    for i in range(k):
        matrix[i, i] = new[i]
        earlier = np.arange(i)
        if config.stochastic and i > 0:
            since = i - last_seen[:i]
            p = np.minimum(1.0, config.a * since.astype(np.float64) ** (-config.d))
            earlier = earlier[encounters.random(i) < p]
        lags = i - (last_seen[earlier] if config.lag_from == "last_seen" else earlier)
        row = _phase_row(config, i, earlier, lags, new, caps)
        matrix[i, earlier] = row
        last_seen[earlier[row > 0]] = i
    return matrix


def _required(value: Any, info: ValidationInfo, field: str, when: str, what: str) -> Any:
    """Fail when ``value`` is missing although the earlier ``field`` is ``when``."""
    if value is None and info.data.get(field) == when:
        raise invalid(f"{field}={when} needs {what}")
    return value


@SCENARIOS.register("power_law")
class PowerLaw(ScenarioBuilder):
    """Rehearsal environment over a sequential base scenario (Gandhi et al., arXiv 2401.10393)."""

    summary: ClassVar[str] = (
        "Power-law rehearsal environment: each phase = a new task of `base` + earlier tasks "
        "rehearsed by a lag kernel (power, exponential, uniform, none, full, ...)."
    )

    class Config(ScenarioBuilder.Config):
        # Field order matters: validators below read the fields declared before them.
        base: dict[str, Any] = Field(
            default_factory=lambda: {
                "name": "domain_incremental",
                "domain": "permutation",
                "n_experiences": 5,
            },
            description="The sequential scenario whose tasks are learned and rehearsed, as in a "
            "run config: {name: <scenario>, <its parameters>...}. Default: permuted domain-IL "
            "with 5 tasks (the paper's v1 setting); class_incremental gives its v3 setting. "
            "Stored resolved (with the base defaults).",
        )
        kernel: Kernel = Field(
            "power",
            description="Lag kernel w(Δ): power (1+Δ/tau)^-d, exponential exp(-Δ/beta)/beta, "
            "uniform, none (fine-tuning), full (cumulative), rank_poly (the prototype's "
            "budgeted powerlaw(alpha)), table (explicit weights per lag).",
        )
        d: float = Field(
            5.6,
            gt=0,
            description="Power-law exponent, of the power kernel and of the stochastic "
            "re-encounter probability (5.6: a fit of the prototype's list).",
        )
        tau: float = Field(10.0, gt=0, description="Power kernel lag offset τ, in phases (10).")
        beta: float = Field(1.0, gt=0, description="Exponential kernel scale β, in phases (1).")
        alpha: float = Field(
            5.0, gt=2, description="rank_poly exponent α (> 2, as the prototype requires; 5)."
        )
        table: list[float] | None = Field(
            None,
            validate_default=True,
            description="kernel=table: weight of lag 1, 2, ... (0 beyond the list); with "
            "absolute normalisation a count is round(n_new · weight).",
        )
        normalisation: Literal["absolute", "budget"] = Field(
            "absolute",
            validate_default=True,
            description="absolute: n = n_new · w(Δ); budget: earlier tasks share "
            "floor(replay_fraction · n_new) samples in proportion to w.",
        )
        replay_fraction: float | None = Field(
            None,
            validate_default=True,
            description="Rehearsal budget r in (0, 1] relative to the new task's samples "
            "(normalisation=budget; the prototype uses 1, 0.75, 0.5, 0.25, 0.1).",
        )
        budget_rounding: Literal["exact", "prototype"] = Field(
            "exact",
            description="exact: largest remainders, the budget is met exactly when tasks hold "
            "enough samples; prototype: floor((budget // Σw) · w) as in the prototype.",
        )
        samples_new: int | Literal["all"] = Field(
            "all",
            description="Samples of the new task in the phase that introduces it: all its "
            "training samples, or a random subset of this size (57927 in the prototype).",
        )
        resample: Literal["fresh", "fixed_memory"] = Field(
            "fresh",
            description="fresh: rehearsal samples drawn anew for every (task, phase) from the "
            "task's training set (prototype); fixed_memory: drawn from a per-task memory fixed "
            "when the task is introduced.",
        )
        memory_per_task: int | None = Field(
            None,
            ge=1,
            validate_default=True,
            description="resample=fixed_memory: memory size per task (capped by the samples "
            "the task was introduced with).",
        )
        lag_from: Literal["introduction", "last_seen"] = Field(
            "introduction",
            description="Lag Δ of the kernel: phases since the task's introduction (prototype) "
            "or since it last had samples.",
        )
        stochastic: bool = Field(
            False,
            description="Anderson–Schooler variant: an earlier task is re-encountered with "
            "probability min(1, a·Δ^-d), Δ = phases since it last had samples.",
        )
        a: float | None = Field(
            None,
            gt=0,
            validate_default=True,
            description="stochastic: re-encounter scale a > 0 (no default: the papers give none).",
        )

        @field_validator("base")
        @classmethod
        def _named(cls, base: dict[str, Any]) -> dict[str, Any]:
            name = base.get("name")
            if not isinstance(name, str):
                raise invalid("needs a 'name' key, e.g. {name: domain_incremental}")
            if name == "power_law":
                raise invalid("a power-law environment needs a sequential base scenario")
            return base

        @field_validator("table")
        @classmethod
        def _table(cls, table: list[float] | None, info: ValidationInfo) -> list[float] | None:
            _required(table, info, "kernel", "table", "a list of weights (lag 1, 2, ...)")
            if table is not None and (not table or any(not w >= 0 for w in table)):
                raise invalid("needs at least one weight, all >= 0")
            return table

        @field_validator("normalisation")
        @classmethod
        def _normalisation(cls, normalisation: str, info: ValidationInfo) -> str:
            kernel = info.data.get("kernel")
            if normalisation == "budget" and kernel == "full":
                raise invalid("kernel=full rehearses everything; a budget needs another kernel")
            if normalisation == "absolute" and kernel == "rank_poly":
                raise invalid("rank_poly weights are relative: use normalisation=budget")
            return normalisation

        @field_validator("replay_fraction")
        @classmethod
        def _fraction(cls, r: float | None, info: ValidationInfo) -> float | None:
            _required(r, info, "normalisation", "budget", "replay_fraction in (0, 1]")
            if r is not None and not 0 < r <= 1:
                raise invalid("must be in (0, 1] (a fraction of the new task's samples)")
            return r

        @field_validator("samples_new")
        @classmethod
        def _samples(cls, n: int | str) -> int | str:
            if isinstance(n, int) and n < 1:
                raise invalid('must be >= 1 or "all"')
            return n

        @field_validator("memory_per_task")
        @classmethod
        def _memory(cls, n: int | None, info: ValidationInfo) -> int | None:
            return _required(n, info, "resample", "fixed_memory", "memory_per_task >= 1")

        @field_validator("stochastic")
        @classmethod
        def _stochastic(cls, stochastic: bool, info: ValidationInfo) -> bool:
            if stochastic and info.data.get("kernel") == "none":
                raise invalid("kernel=none never rehearses; pick a kernel for re-encounters")
            return stochastic

        @field_validator("a")
        @classmethod
        def _scale(cls, a: float | None, info: ValidationInfo) -> float | None:
            if a is None and info.data.get("stochastic"):
                raise invalid("stochastic=true needs a > 0 (re-encounter probability scale)")
            return a

    def __init__(self, config: BaseModel) -> None:
        self.base = NestedScenario(config.base, _BASE)
        super().__init__(config.model_copy(update={"base": self.base.resolved}))

    @property
    def setting(self) -> Setting:
        return self.base.builder.setting

    def _base_plan(self, dataset: PlanData, seed: int) -> ScenarioPlan:
        plan = self.base.build(dataset, seed)
        sequential = len(plan.phases) == plan.num_tasks and all(
            len(p.parts) == 1 and p.parts[0].task == p.current_task == k
            for k, p in enumerate(plan.phases)
        )
        if not sequential:
            raise ConfigError(
                f"{_BASE}.name",
                plan.scenario,
                "a sequential scenario whose phase k trains on task k alone "
                "(class_incremental, task_incremental, domain_incremental)",
            )
        return plan

    def build(self, dataset: PlanData, seed: int) -> ScenarioPlan:
        """The base tasks, phase i = task i's new samples + kernel-weighted earlier tasks."""
        cfg = self.config
        base = self._base_plan(dataset, seed)
        pools = [t.train_indices for t in base.tasks]
        new_samples = self._new_samples(pools, seed)
        if cfg.resample == "fixed_memory":
            memory_rng = seeded_rng(seed, _MEMORY_STREAM)
            sources = [
                np.sort(memory_rng.choice(s, min(cfg.memory_per_task, len(s)), replace=False))
                for s in new_samples
            ]
        else:
            sources = pools
        counts = rehearsal_counts(
            cfg, [len(s) for s in new_samples], [len(s) for s in sources], seed
        )
        draws = seeded_rng(seed, _REHEARSAL_STREAM)
        phases = []
        for i, row in enumerate(counts):
            parts = [
                PhasePart(j, np.sort(draws.choice(sources[j], int(n), replace=False)))
                for j, n in enumerate(row[:i])
                if n > 0
            ]
            parts.append(PhasePart(i, new_samples[i]))
            phases.append(Phase(parts=tuple(parts), current_task=i))
        return make_plan(self, dataset, base.tasks, base.num_outputs, phases=phases)

    def _new_samples(self, pools: list[np.ndarray], seed: int) -> list[np.ndarray]:
        """Each task's samples in the phase that introduces it."""
        n = self.config.samples_new
        if n == "all":
            return list(pools)
        smallest = min(len(p) for p in pools)
        if n > smallest:
            raise param_error(
                "samples_new", n, f'"all" or at most {smallest} (the smallest task\'s samples)'
            )
        rng = seeded_rng(seed, _NEW_STREAM)
        return [np.sort(rng.choice(p, n, replace=False)) for p in pools]
