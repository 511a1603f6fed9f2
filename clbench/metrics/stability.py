"""Stability-gap metrics on the continual-evaluation (subset) curve: min-ACC, WC-ACC (spec §2.5,
§2.6) and the derived gap depth and recovery time (spec §2.10)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from clbench.metrics.records import RecordArrays, record_arrays

# Accuracies are ratios correct/n, but ``reference - eps`` is computed in binary floating point
# (0.80 - 0.10 = 0.7000000000000001); this slack makes a == reference - eps count as recovered.
_RECOVERY_SLACK = 1e-12


def _running_minima(ra: RecordArrays) -> np.ndarray:
    """``M[e, i]``: running minimum of task i over points <= e at which i was not current."""
    is_current = np.arange(ra.n_tasks)[None, :] == ra.point_task[:, None]
    return np.fmin.accumulate(np.where(is_current, np.nan, ra.acc), axis=0)


def stability_curves(records: pd.DataFrame | RecordArrays) -> pd.DataFrame:
    """Per-evaluation min-ACC and WC-ACC (spec §2.5, §2.6, official update rule).

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
    """``{task: m_i}``: minimum subset accuracy over evaluations where the task is not current.

    Official rule (spec §2.5): for a plain stream this is ``min_{|T_i| < n} a(i, n)``.
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
    """min-ACC at the last evaluation, i.e. at ``t = |T_K|`` (spec §2.5). ``None`` for K = 1."""
    return _final(stability_curves(records), "min_acc")


def wc_acc(records: pd.DataFrame | RecordArrays) -> float | None:
    """WC-ACC at the last evaluation (spec §2.6). Equals the current-task accuracy for K = 1."""
    return _final(stability_curves(records), "wc_acc")


@dataclass(frozen=True)
class Gap:
    """Stability gap of ``task`` during ``phase`` (spec §2.10; phase k = 1-based task k+1)."""

    task: int
    phase: int
    reference: float  # a(i, |T_{k-1}|): last evaluation of the task in phase k-1
    minimum: float  # min of a(i, n) over |T_{k-1}| < n <= |T_k|
    depth: float  # reference - minimum
    min_step: int  # step of the first arg-min
    recovery_time: int | None  # updates from min_step to recovery; None = not recovered

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def gap_analysis(records: pd.DataFrame | RecordArrays, recovery_eps: float = 0.02) -> list[Gap]:
    """Gap depth and recovery time for every task i and every later phase k (spec §2.10).

    For each phase k >= 1 and each task i introduced before k that is not current in k, the
    reference is i's last subset evaluation in phase k-1 (at ``|T_{k-1}|``) and the minimum is over
    i's evaluations in phase k after at least one update of phase k (a pre-update row of phase k
    is excluded). Recovery time counts updates from the first arg-min to the first evaluation at or
    after it with ``a >= reference - recovery_eps``; ``None`` if none within phase k. If the
    minimum itself is within ``recovery_eps`` of the reference the recovery time is 0.
    Sorted by (task, phase).
    """
    ra = record_arrays(records)
    gaps: list[Gap] = []
    for task in sorted(ra.intro_phase):
        col = ra.acc[:, task]
        evaluated = ~np.isnan(col)
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
            ok = np.nonzero(values[j_min:] >= reference - recovery_eps - _RECOVERY_SLACK)[0]
            gaps.append(
                Gap(
                    task=task,
                    phase=k,
                    reference=reference,
                    minimum=float(values[j_min]),
                    depth=reference - float(values[j_min]),
                    min_step=int(steps[j_min]),
                    recovery_time=int(steps[j_min + ok[0]] - steps[j_min]) if ok.size else None,
                )
            )
    return gaps


def _find_gap(
    records: pd.DataFrame | RecordArrays, task: int, phase: int, eps: float
) -> Gap | None:
    return next((g for g in gap_analysis(records, eps) if (g.task, g.phase) == (task, phase)), None)


def gap_depth(records: pd.DataFrame | RecordArrays, task: int, phase: int) -> float | None:
    """``gap_depth(i, k)`` of ``task`` during ``phase`` (spec §2.10); ``None`` if undefined."""
    gap = _find_gap(records, task, phase, 0.0)
    return None if gap is None else gap.depth


def recovery_time(
    records: pd.DataFrame | RecordArrays, task: int, phase: int, recovery_eps: float = 0.02
) -> int | None:
    """``recovery_time(i, k)`` in updates (spec §2.10); ``None`` if not recovered or undefined."""
    gap = _find_gap(records, task, phase, recovery_eps)
    return None if gap is None else gap.recovery_time
