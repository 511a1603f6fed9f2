"""Recurrence streams: long sequences of short class-based phases in which classes come back.

Two generators, both with one task per class (a *context*) and one head over all classes
(``setting: class``; targets are the class's position among the classes used, so a class keeps
its output whenever it returns):

* ``recurrence``: SCoLe (Lesort et al., CoLLAs 2023, arXiv 2207.04543; official code
  TLESORT/SCoLe-SCaling-Continual-Learning@ee71664:sampling.py). Each of ``n_phases`` phases trains
  on the samples of ``classes_per_phase`` classes drawn without replacement from a class
  distribution p: uniform, SCoLe's ``entropy_decrease`` skew, or an explicit list;
  ``prob_reduction`` divides the probability of just-drawn classes (novelty bias).
* ``cir``: class-incremental with repetition (Hemati et al., CoLLAs 2023; official code
  HamedHemati/CIR@ca3305a:cir/benchmarks/cir_sampling_based.py). Each class first occurs at a phase
  drawn from a first-occurrence distribution and then recurs in every later phase with its own
  repetition probability; empty phases are dropped (so the stream can be shorter than ``n_phases``)
  and each phase's ``samples_per_phase`` samples are split equally among its classes.

Task ids are numbered in order of first appearance in the stream (ties within a phase by class
position), so the tasks seen up to any phase are a prefix 0..k and the continual evaluator
evaluates exactly the classes seen so far. Classes that never appear have no task. A phase's
``current_task`` is the newest task present in it (the highest id): the class it introduces, or,
when it introduces none, the most recently introduced class among those it contains; metrics that
refer to "the current task" therefore follow the newest class.

Samples of a (class, phase) pair are drawn without replacement, freshly for every pair, capped by
the class's training samples (as the CIR code's ``randperm(...)[:n]`` silently does).
Not implemented: SCoLe's 10 % validation split per task, perturbations and its replay policies
(a strategy's job), and its ``forgetting``/``incremental`` stream variants.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np
from pydantic import Field, ValidationInfo, field_validator

from clbench.registry import SCENARIOS
from clbench.scenario import ScenarioBuilder
from clbench.scenario.plan import Phase, PhasePart, ScenarioPlan, Setting
from clbench.scenarios._class_streams import class_tasks
from clbench.scenarios._common import (
    invalid,
    make_plan,
    param_error,
    seeded_rng,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

    from clbench.scenario.base import PlanData

_SUBSET_STREAM = 20  # `seeded_rng` streams (see scenarios._common.seeded_rng)
_SCHEDULE_STREAM = 21
_SAMPLE_STREAM = 22
_SHUFFLE_STREAM = 23

# SCoLe's entropy_decrease step f (sampling.py): 0.01 for 100 classes, else 0.05, which makes
# 1 - f·i negative beyond i = 20; only N <= 20 or N = 100 is valid (other N are rejected).
_SCOLE_MAX_SMALL_N = 20

# CIR distributions (cir_utils.py): name -> its parameters.
FIRST_OCCURRENCE = {
    "uniform": (),
    "uniform_alpha": ("alpha",),
    "geometric": ("p",),
    "poisson": ("mu",),
    "zipf": ("exponent",),
    "zipf_reversed": ("exponent",),
}
RECURRENCE = {
    "fixed": ("p",),
    "random": (),
    "poisson": ("mu",),
    "zipf": ("exponent",),
    "fixed-dual": ("frac", "p_l", "p_h"),
}
_UNIT_INTERVAL = {"p", "frac", "p_l", "p_h"}


# ---------------------------------------------------------------------------------------------
# class distributions and schedules (pure functions of their parameters and a generator)


def scole_class_probs(
    n_classes: int, class_probs: str | dict[str, float] | list[float], rng: np.random.Generator
) -> np.ndarray:
    """SCoLe's class distribution p (official ``sampling.py::get_probability``).

    ``entropy_decrease: k``: ``p_i ∝ ((1 - f·i) / Σ)^k`` with f = 0.01 for 100 classes and 0.05
    otherwise, then shuffled (SCoLe shuffles with ``np.random.seed(seed)``; here with ``rng``).
    An explicit list is normalised to sum to 1.
    """
    if class_probs == "uniform":
        return np.full(n_classes, 1.0 / n_classes)
    if isinstance(class_probs, list):
        p = np.asarray(class_probs, dtype=np.float64)
        return p / p.sum()
    k = float(class_probs["entropy_decrease"])
    if k == 0:
        return np.full(n_classes, 1.0 / n_classes)
    f = 0.01 if n_classes == 100 else 0.05
    p = (1.0 - np.arange(n_classes) * f) / n_classes
    p = (p / p.sum()) ** k
    return rng.permutation(p / p.sum())


def scole_schedule(
    probs: np.ndarray,
    n_phases: int,
    classes_per_phase: int,
    prob_reduction: float,
    rng: np.random.Generator,
) -> list[np.ndarray]:
    """Class positions of each phase: C distinct classes drawn from p, i.i.d. over phases unless
    ``prob_reduction`` divides the probability of the classes just drawn (SCoLe ``main.py``)."""
    p = probs.copy()
    phases = []
    for _ in range(n_phases):
        chosen = rng.choice(len(p), size=classes_per_phase, replace=False, p=p)
        phases.append(np.sort(chosen))
        if prob_reduction != 0:
            p[chosen] /= prob_reduction
            p /= p.sum()
    return phases


def cir_first_occurrence_pmf(n_phases: int, dist: dict[str, Any]) -> np.ndarray:
    """PMF over phases 0..n_phases-1 of a class's first occurrence (CIR ``get_pmf``)."""
    kind = dist["dist_type"]
    e = np.arange(n_phases, dtype=np.float64)
    if kind == "uniform":
        pmf = np.ones(n_phases)
    elif kind == "uniform_alpha":
        pmf = (e < math.ceil(dist["alpha"] * n_phases)).astype(np.float64)
    elif kind == "geometric":
        pmf = (1.0 - dist["p"]) ** e * dist["p"]  # scipy geom.pmf(1..n, p)
    elif kind == "poisson":
        mu = dist["mu"]
        pmf = np.exp(e * math.log(mu) - mu - np.array([math.lgamma(x + 1) for x in e]))
    else:  # zipf, zipf_reversed
        pmf = 1.0 / (e + 1.0) ** dist["exponent"]
        if kind == "zipf_reversed":
            pmf = pmf[::-1]
    return pmf / pmf.sum()


def cir_recurrence_probs(
    n_classes: int, dist: dict[str, Any], rng: np.random.Generator
) -> np.ndarray:
    """Per-class repetition probabilities, shuffled over classes (CIR ``get_per_entity_prob``;
    ``random`` and ``fixed-dual`` use ``rng`` where CIR uses the unseeded global generator)."""
    kind = dist["dist_type"]
    k = np.arange(n_classes, dtype=np.float64)
    if kind == "fixed":
        probs = np.full(n_classes, float(dist["p"]))
    elif kind == "random":
        probs = rng.random(n_classes)
    elif kind == "poisson":
        mu = dist["mu"]
        probs = np.exp(k * math.log(mu) - mu - np.array([math.lgamma(x + 1) for x in k]))
    elif kind == "zipf":
        probs = 1.0 / (k + 1.0) ** dist["exponent"]
    else:  # fixed-dual
        n_low = int(n_classes * dist["frac"])
        probs = np.array([dist["p_l"]] * n_low + [dist["p_h"]] * (n_classes - n_low))
    return rng.permutation(probs)


def cir_schedule(
    n_classes: int,
    n_phases: int,
    first_occurrence: dict[str, Any],
    recurrence: dict[str, Any],
    rng: np.random.Generator,
) -> np.ndarray:
    """Presence table ``[phase, class]`` of a CIR stream, empty phases dropped (as official)."""
    pmf = cir_first_occurrence_pmf(n_phases, first_occurrence)
    first = rng.choice(n_phases, size=n_classes, p=pmf)
    repeat = cir_recurrence_probs(n_classes, recurrence, rng)
    phase = np.arange(n_phases)[:, None]
    present = (rng.random((n_phases, n_classes)) < repeat[None, :]) & (phase > first[None, :])
    present |= phase == first[None, :]
    return present[present.any(axis=1)]


def equal_split(total: int, n_parts: int, rng: np.random.Generator) -> np.ndarray:
    """``total`` split into ``n_parts`` counts differing by at most one; the extra samples go to
    randomly chosen parts (CIR shuffles the classes and gives the remainder to the first ones)."""
    counts = np.full(n_parts, total // n_parts, dtype=np.int64)
    counts[rng.permutation(n_parts)[: total % n_parts]] += 1
    return counts


# ---------------------------------------------------------------------------------------------
# shared plan assembly


def used_classes(dataset: PlanData, num_classes: int | None, seed: int) -> list[int]:
    """Base class ids used, sorted: all, or a random subset (SCoLe relabels it 0..N-1)."""
    k = dataset.num_classes
    if num_classes is None:
        return list(range(k))
    if num_classes > k:
        raise param_error("num_classes", num_classes, f"at most the {k} classes of the dataset")
    chosen = seeded_rng(seed, _SUBSET_STREAM).choice(k, num_classes, replace=False)
    return sorted(chosen.tolist())


def class_stream_plan(
    builder: ScenarioBuilder,
    dataset: PlanData,
    classes: Sequence[int],
    phase_counts: Sequence[dict[int, int | None]],
    seed: int,
) -> ScenarioPlan:
    """Plan of a class stream: ``phase_counts[t]`` maps a class position (index into
    ``classes``, = its target) to its sample count in phase t (``None``: all its samples)."""
    # A class given no samples (CIR: fewer samples than classes in a phase) is not present.
    phase_counts = [{c: n for c, n in counts.items() if n != 0} for counts in phase_counts]
    task_of, tasks = class_tasks(dataset, classes, phase_counts)
    rng = seeded_rng(seed, _SAMPLE_STREAM)
    phases = []
    for counts in phase_counts:
        parts = []
        for pos in sorted(counts, key=task_of.__getitem__):
            pool = tasks[task_of[pos]].train_indices
            n = counts[pos]
            if n is None or n >= len(pool):
                indices = pool
            else:
                indices = np.sort(rng.choice(pool, n, replace=False))
            if len(indices):
                parts.append(PhasePart(task_of[pos], indices))
        if parts:
            phases.append(Phase(parts=tuple(parts), current_task=max(p.task for p in parts)))
    return make_plan(builder, dataset, tasks, num_outputs=len(classes), phases=phases)


# ---------------------------------------------------------------------------------------------
# SCoLe


@SCENARIOS.register("recurrence")
class Recurrence(ScenarioBuilder):
    """SCoLe: every phase trains on C classes drawn from a class distribution (SCoLe)."""

    summary: ClassVar[str] = (
        "SCoLe recurrence stream: many short phases of C classes drawn from a uniform or "
        "skewed class distribution; one task per class, in order of first appearance."
    )

    class Config(ScenarioBuilder.Config):
        # Field order matters: validators below read the fields declared before them.
        n_phases: int = Field(
            500,
            ge=1,
            description="Number of phases T (SCoLe's num_tasks; 500 in its MNIST example).",
        )
        num_classes: int | None = Field(
            None,
            ge=1,
            description="Use a random subset of this many classes (SCoLe's num_classes N); "
            "default: all classes of the dataset.",
        )
        classes_per_phase: int = Field(
            2, ge=1, description="Classes per phase C (SCoLe's classes_per_task, default 2)."
        )
        class_probs: Literal["uniform"] | dict[str, float] | list[float] = Field(
            "uniform",
            description="Class distribution p: uniform, {entropy_decrease: k} (SCoLe's skew, "
            "valid for N <= 20 or N = 100 classes), or one probability per class (normalised).",
        )
        prob_reduction: float = Field(
            0.0,
            ge=0,
            description="After each phase divide the probability of its classes by this and "
            "renormalise (SCoLe's novelty bias); 0 = off.",
        )
        samples_per_class: int | None = Field(
            None,
            ge=1,
            description="Cap on a class's samples per phase (a fresh random subset per phase); "
            "default: all its training samples, as in SCoLe.",
        )

        @field_validator("classes_per_phase")
        @classmethod
        def _fits(cls, c: int, info: ValidationInfo) -> int:
            n = info.data.get("num_classes")
            if n is not None and c > n:
                raise invalid(f"more than the num_classes={n} classes used")
            return c

        @field_validator("class_probs")
        @classmethod
        def _probs(cls, probs: Any, info: ValidationInfo) -> Any:
            if isinstance(probs, dict):
                if set(probs) != {"entropy_decrease"}:
                    raise invalid("a mapping must be {entropy_decrease: k}")
                if not probs["entropy_decrease"] >= 0:
                    raise invalid("entropy_decrease k must be >= 0 (0 = uniform)")
            elif isinstance(probs, list):
                if any(not p >= 0 for p in probs) or sum(probs) <= 0:
                    raise invalid("probabilities must be >= 0 with a positive sum")
                n = info.data.get("num_classes")
                if n is not None and len(probs) != n:
                    raise invalid(f"needs one probability per class ({n})")
            return probs

    @property
    def setting(self) -> Setting:
        return "class"

    def class_distribution(self, n_classes: int, seed: int) -> np.ndarray:
        """p over the classes used; raises `ConfigError` when it does not fit them."""
        cfg = self.config
        probs = cfg.class_probs
        skewed = isinstance(probs, dict) and probs["entropy_decrease"] != 0
        if skewed and n_classes > _SCOLE_MAX_SMALL_N and n_classes != 100:
            raise param_error(
                "class_probs",
                probs,
                f"entropy_decrease needs at most {_SCOLE_MAX_SMALL_N} or exactly 100 "
                f"classes, got {n_classes}: SCoLe's 1 - 0.05·i is negative beyond i = 20 "
                "(set scenario.num_classes, or give explicit probabilities)",
            )
        if isinstance(probs, list) and len(probs) != n_classes:
            raise param_error("class_probs", probs, f"one probability per class used ({n_classes})")
        p = scole_class_probs(n_classes, probs, seeded_rng(seed, _SHUFFLE_STREAM))
        positive = int((p > 0).sum())
        if cfg.classes_per_phase > positive:
            raise param_error(
                "classes_per_phase",
                cfg.classes_per_phase,
                f"at most the {positive} classes with positive probability",
            )
        return p

    def build(self, dataset: PlanData, seed: int) -> ScenarioPlan:
        """T phases of C classes each, all (or ``samples_per_class``) samples per class."""
        cfg = self.config
        classes = used_classes(dataset, cfg.num_classes, seed)
        if cfg.classes_per_phase > len(classes):
            raise param_error(
                "classes_per_phase",
                cfg.classes_per_phase,
                f"1..{len(classes)} (the number of classes used)",
            )
        p = self.class_distribution(len(classes), seed)
        schedule = scole_schedule(
            p,
            cfg.n_phases,
            cfg.classes_per_phase,
            cfg.prob_reduction,
            seeded_rng(seed, _SCHEDULE_STREAM),
        )
        counts = [dict.fromkeys(phase.tolist(), cfg.samples_per_class) for phase in schedule]
        return class_stream_plan(self, dataset, classes, counts, seed)


# ---------------------------------------------------------------------------------------------
# CIR


def _check_distribution(dist: dict[str, Any], known: dict[str, tuple[str, ...]]) -> None:
    kind = dist.get("dist_type")
    if kind not in known:
        raise invalid(f"dist_type must be one of {', '.join(known)}; got {kind!r}")
    needed = set(known[kind])
    given = set(dist) - {"dist_type"}
    if given != needed:
        wanted = ", ".join(sorted(needed)) or "no parameters"
        raise invalid(f"dist_type {kind} takes {wanted}; got {', '.join(sorted(given)) or 'none'}")
    for name in needed:
        value = dist[name]
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise invalid(f"{name} must be a number; got {value!r}")
        if name in _UNIT_INTERVAL and not 0 <= value <= 1:
            raise invalid(f"{name} must be in [0, 1]; got {value}")
        if name in ("mu", "alpha") and not value > 0:
            raise invalid(f"{name} must be > 0; got {value}")
        if name == "exponent" and not value >= 0:
            raise invalid(f"exponent must be >= 0; got {value}")
    if kind == "geometric" and dist["p"] == 0:
        raise invalid("geometric p must be in (0, 1]")
    if kind == "uniform_alpha" and dist["alpha"] > 1:
        raise invalid("uniform_alpha alpha must be in (0, 1]")


@SCENARIOS.register("cir")
class ClassIncrementalWithRepetition(ScenarioBuilder):
    """CIR: first occurrence + per-class repetition probability (Hemati et al., CoLLAs 2023)."""

    summary: ClassVar[str] = (
        "Class-incremental with repetition (CIR): each class first occurs at a random phase, "
        "then recurs with its own probability; fixed samples per phase."
    )

    class Config(ScenarioBuilder.Config):
        n_phases: int = Field(
            200,
            ge=1,
            description="Stream length before empty phases are dropped (CIR's n_e; 200 in "
            "its CIFAR-100 example).",
        )
        samples_per_phase: int = Field(
            500,
            ge=1,
            description="Samples per phase, split equally among its classes (CIR's s_e; 500).",
        )
        first_occurrence: dict[str, Any] = Field(
            default_factory=lambda: {"dist_type": "geometric", "p": 0.01},
            description="First-occurrence distribution over phases: {dist_type: uniform | "
            "uniform_alpha(alpha) | geometric(p) | poisson(mu) | zipf(exponent) | "
            "zipf_reversed(exponent)}; default geometric p=0.01 (CIR example).",
        )
        recurrence: dict[str, Any] = Field(
            default_factory=lambda: {"dist_type": "fixed", "p": 0.2},
            description="Per-class repetition probability after the first occurrence: "
            "{dist_type: fixed(p) | random | poisson(mu) | zipf(exponent) | "
            "fixed-dual(frac, p_l, p_h)}; default fixed p=0.2 (CIR example).",
        )
        num_classes: int | None = Field(
            None,
            ge=1,
            description="Use a random subset of this many classes; default: all classes.",
        )

        @field_validator("first_occurrence")
        @classmethod
        def _first(cls, dist: dict[str, Any]) -> dict[str, Any]:
            _check_distribution(dist, FIRST_OCCURRENCE)
            return dist

        @field_validator("recurrence")
        @classmethod
        def _recurrence(cls, dist: dict[str, Any]) -> dict[str, Any]:
            _check_distribution(dist, RECURRENCE)
            return dist

    @property
    def setting(self) -> Setting:
        return "class"

    def build(self, dataset: PlanData, seed: int) -> ScenarioPlan:
        """Presence table from the two distributions, then s_e samples split per phase."""
        cfg = self.config
        classes = used_classes(dataset, cfg.num_classes, seed)
        rng = seeded_rng(seed, _SCHEDULE_STREAM)
        present = cir_schedule(
            len(classes), cfg.n_phases, cfg.first_occurrence, cfg.recurrence, rng
        )
        counts = []
        for row in present:
            positions = np.flatnonzero(row)
            split = equal_split(cfg.samples_per_phase, len(positions), rng)
            counts.append(dict(zip(positions.tolist(), split.tolist(), strict=True)))
        return class_stream_plan(self, dataset, classes, counts, seed)
