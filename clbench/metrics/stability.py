"""Stability-gap metrics on the continual-evaluation (subset) curve: min-ACC and WC-ACC (De Lange
et al., "Continual evaluation for lifelong learning: identifying the stability gap", ICLR 2023,
continual evaluation metrics) and clbench's derived gap depth and recovery time (not in the
paper, which shows the gap in its figures and quantifies it with min-ACC, WC-ACC and WF^w).

WC-ACC and min-ACC (official update rule). Let ``c`` be the current task at evaluation ``t``,
``m_i`` the lowest accuracy of task i over evaluations <= t at which i was an old task (not
current, and past the end of the first phase that trained it), and
``S_t`` the tasks that have such a minimum. Then

    min-ACC_t = mean_{i in S_t} m_i
    WC-ACC_t  = (a(c, t) + sum_{i in S_t, i != c} m_i) / k,   k = 1 + |S_t minus {c}|.

The paper's form ``WC-ACC_t = (1/k)·a(c, t) + (1 - 1/k)·min-ACC_t`` follows from this exactly when
``c`` is not in ``S_t``: the current task has never been evaluated while another task was current.
That holds at every evaluation of a plain sequential stream (every task current in one phase and
evaluated only from that phase on; k = number of tasks seen). On recurrence streams a task that is
current again already has a minimum ``m_c``, and then ``k = |S_t|`` and
``WC-ACC_t = min-ACC_t + (a(c, t) - m_c) / k``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from clbench.metrics.records import RecordArrays, record_arrays

if TYPE_CHECKING:
    from clbench.scenario.plan import ScenarioPlan

# Accuracies are ratios correct/n, but ``reference - eps`` is computed in binary floating point
# (0.80 - 0.10 = 0.7000000000000001); this slack makes a == reference - eps count as recovered.
# The same slack makes a reference of 10/100 count as "at chance" for a chance level of 1/10.
RECOVERY_SLACK = 1e-12

Chance = float | Sequence[float] | None


def _not_old(ra: RecordArrays) -> np.ndarray:
    """``(E, T)``: task i is not an old task at point e: it is current there, or e lies in its
    first phase. A phase can train several tasks (SCoLe, joint) while naming one current task;
    the others are being learned, not remembered, until that phase ends. On a plain stream a task
    is only evaluated from its own phase on, so this is the official "not current" rule."""
    intro = np.full(ra.n_tasks, -1)
    for task, phase in ra.intro_phase.items():
        intro[task] = phase
    is_current = np.arange(ra.n_tasks)[None, :] == ra.point_task[:, None]
    return is_current | (ra.point_phase[:, None] <= intro[None, :])


def _running_minima(ra: RecordArrays) -> np.ndarray:
    """``M[e, i]``: running minimum of task i over points <= e at which i was an old task."""
    return np.fmin.accumulate(np.where(_not_old(ra), np.nan, ra.acc), axis=0)


def stability_curves(records: pd.DataFrame | RecordArrays) -> pd.DataFrame:
    """Per-evaluation min-ACC and WC-ACC (official update rule; module doc for the formulas).

    Columns: ``phase``, ``step``, ``current_task``, ``min_acc``, ``wc_acc``; one row per
    evaluation point in chronological order. ``min_acc`` is the mean of the per-task minima
    ``m_i`` existing so far (NaN while there is none, e.g. during the first task); ``wc_acc`` is
    ``mean([a(current, t)] + [m_i for i != current])``.
    """
    ra = record_arrays(records)
    minima = _running_minima(ra)
    have = ~np.isnan(minima)
    count = have.sum(axis=1)
    total = np.where(have, minima, 0.0).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        min_acc = np.where(count > 0, total / count, np.nan)
    is_current = np.arange(ra.n_tasks)[None, :] == ra.point_task[:, None]
    others = have & ~is_current
    a_current = ra.acc[np.arange(ra.acc.shape[0]), ra.point_task]
    wc_acc = (a_current + np.where(others, minima, 0.0).sum(axis=1)) / (1 + others.sum(axis=1))
    return pd.DataFrame(
        {
            "phase": ra.point_phase,
            "step": ra.point_step,
            "current_task": ra.point_task,
            "min_acc": min_acc,
            "wc_acc": wc_acc,
        }
    )


def per_task_minima(records: pd.DataFrame | RecordArrays) -> dict[int, float]:
    """``{task: m_i}``: minimum subset accuracy over evaluations where the task is old.

    Official rule; for a plain stream this is the paper's ``min_{|T_i| < n} a(i, n)``.
    """
    ra = record_arrays(records)
    if ra.acc.shape[0] == 0:
        return {}
    last = _running_minima(ra)[-1]
    return {t: float(last[t]) for t in range(ra.n_tasks) if not np.isnan(last[t])}


def _final(curve: pd.DataFrame, column: str) -> float | None:
    if curve.empty or pd.isna(curve[column].iloc[-1]):
        return None
    return float(curve[column].iloc[-1])


def min_acc(records: pd.DataFrame | RecordArrays) -> float | None:
    """min-ACC at the last evaluation, i.e. at ``t = |T_K|``. ``None`` for K = 1."""
    return _final(stability_curves(records), "min_acc")


def wc_acc(records: pd.DataFrame | RecordArrays) -> float | None:
    """WC-ACC at the last evaluation. Equals the current-task accuracy for K = 1."""
    return _final(stability_curves(records), "wc_acc")


def boundary_min_acc(records: pd.DataFrame | RecordArrays) -> float | None:
    """min-ACC as an evaluation only at task boundaries would report it.

    The same rule as :func:`min_acc` over the last evaluation of each phase only (the point a
    boundary evaluation sees, with the same subset measurement). It is never below min-ACC;
    ``boundary_min_acc - min_acc`` is the part of the stability gap that per-boundary evaluation
    hides (De Lange et al., ICLR 2023, Sec. 4: the gap recovers before the boundary). ``None``
    for K = 1.
    """
    ra = record_arrays(records)
    if ra.acc.shape[0] == 0:
        return None
    last_of_phase = np.r_[ra.point_phase[1:] != ra.point_phase[:-1], True]
    masked = np.where(_not_old(ra) | ~last_of_phase[:, None], np.nan, ra.acc)
    with np.errstate(invalid="ignore"):
        minima = np.fmin.reduce(masked, axis=0)
    minima = minima[~np.isnan(minima)]
    return float(minima.mean()) if minima.size else None


def chance_levels(plan: ScenarioPlan) -> list[float]:
    """Accuracy of uniform guessing on each task's test samples, indexed by task.

    ``1 / C_i``, with ``C_i`` the number of outputs the prediction's argmax ranges over for task
    i: the task's own outputs when task ids are given at test time (task-incremental, logits
    masked), every output of the head otherwise (class- and domain-incremental). A predictor that
    chooses among fewer classes (e.g. only those seen so far) has a higher chance level, so this is
    a lower bound for it.
    """
    if plan.task_ids_at_test:
        return [1.0 / len(t.output_ids) for t in plan.tasks]
    return [1.0 / plan.num_outputs] * plan.num_tasks


def chance_of(chance: Chance, task: int) -> float:
    """The chance level of ``task``; 0 when unknown, so only a reference of 0 counts as lost."""
    if chance is None:
        return 0.0
    if isinstance(chance, (int, float, np.integer, np.floating)):
        return float(chance)
    return float(chance[task]) if task < len(chance) else 0.0


@dataclass(frozen=True)
class Gap:
    """Stability gap of ``task`` during ``phase`` (phase k = 1-based task k+1).

    A *forgotten* pair has nothing left to lose: its reference is at or below the task's chance
    level. Such a pair cannot dip and would "recover" at once, so it is excluded from the gap
    means and counted apart; its ``recovery_time`` is ``None``.
    """

    task: int
    phase: int
    reference: float  # a(i, |T_{k-1}|): last evaluation of the task in phase k-1
    minimum: float  # min of a(i, n) over |T_{k-1}| < n <= |T_k|
    depth: float  # reference - minimum
    min_step: int  # step of the first arg-min
    recovery_time: int | None  # updates from min_step to recovery; None = not recovered
    chance: float  # chance level of the task (0 when the run's is unknown)
    forgotten: bool  # reference <= chance: excluded from gap depth and recovery

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def gap_analysis(
    records: pd.DataFrame | RecordArrays, recovery_eps: float = 0.02, chance: Chance = None
) -> list[Gap]:
    """Gap depth and recovery time for every task i and every later phase k.

    For each phase k >= 1 and each task i introduced before k that is not current in k, the
    reference is i's last subset evaluation in phase k-1 (at ``|T_{k-1}|``) and the minimum is over
    i's evaluations in phase k after at least one update of phase k (a pre-update row of phase k
    is excluded)::

        gap_depth(i, k) = a(i, |T_{k-1}|) - min_{|T_{k-1}| < n <= |T_k|} a(i, n)

    Recovery time counts updates from the first arg-min to the first evaluation at or after it
    with ``a >= reference - recovery_eps``; ``None`` if none within phase k. If the minimum itself
    is within ``recovery_eps`` of the reference the recovery time is 0.

    ``chance``: the chance level per task (a sequence indexed by task, e.g.
    :func:`chance_levels`) or one value for all tasks; ``None`` means unknown and is taken as 0.
    A pair with ``reference <= chance_i`` is marked ``forgotten`` and gets no recovery time.
    Sorted by (task, phase).
    """
    ra = record_arrays(records)
    gaps: list[Gap] = []
    for task in sorted(ra.intro_phase):
        col = ra.acc[:, task]
        evaluated = ~np.isnan(col)
        level = chance_of(chance, task)
        for k in range(ra.intro_phase[task] + 1, ra.n_phases):
            if ra.phase_task[k] == task:
                continue
            before = np.nonzero(evaluated & (ra.point_phase == k - 1))[0]
            during = np.nonzero(evaluated & (ra.point_phase == k))[0]
            if before.size == 0 or during.size == 0:
                continue
            reference = float(col[before[-1]])
            values, steps = col[during], ra.point_step[during]
            j_min = int(np.argmin(values))  # first arg-min on ties
            ok = np.nonzero(values[j_min:] >= reference - recovery_eps - RECOVERY_SLACK)[0]
            forgotten = reference <= level + RECOVERY_SLACK
            recovered = ok.size > 0 and not forgotten
            gaps.append(
                Gap(
                    task=task,
                    phase=k,
                    reference=reference,
                    minimum=float(values[j_min]),
                    depth=reference - float(values[j_min]),
                    min_step=int(steps[j_min]),
                    recovery_time=int(steps[j_min + ok[0]] - steps[j_min]) if recovered else None,
                    chance=level,
                    forgotten=forgotten,
                )
            )
    return gaps


def _find_gap(
    records: pd.DataFrame | RecordArrays, task: int, phase: int, eps: float, chance: Chance
) -> Gap | None:
    return next(
        (g for g in gap_analysis(records, eps, chance) if (g.task, g.phase) == (task, phase)), None
    )


def gap_depth(
    records: pd.DataFrame | RecordArrays, task: int, phase: int, chance: Chance = None
) -> float | None:
    """``gap_depth(i, k)`` of ``task`` during ``phase``; ``None`` if undefined or forgotten."""
    gap = _find_gap(records, task, phase, 0.0, chance)
    return None if gap is None or gap.forgotten else gap.depth


def recovery_time(
    records: pd.DataFrame | RecordArrays,
    task: int,
    phase: int,
    recovery_eps: float = 0.02,
    chance: Chance = None,
) -> int | None:
    """``recovery_time(i, k)`` in updates; ``None`` if not recovered, undefined or forgotten."""
    gap = _find_gap(records, task, phase, recovery_eps, chance)
    return None if gap is None else gap.recovery_time
