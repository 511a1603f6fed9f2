"""Boundary metrics from the full-test-set accuracy matrix ``R[phase, task]``.

All of them read only ``full`` rows (and ``init`` rows for FWT). A value needed by a metric that is
missing from the records makes that metric ``None`` rather than silently averaging fewer tasks.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from clbench.metrics.options import AvgAccWeighting, ForgettingReference
from clbench.metrics.records import RecordArrays, record_arrays


def _mean_or_none(values: list[float]) -> float | None:
    if not values or any(np.isnan(v) for v in values):
        return None
    return float(np.mean(values))


def per_task_final_accuracy(records: pd.DataFrame | RecordArrays) -> list[float | None]:
    """Full-test-set accuracy of each task at the end of the last phase.

    The list is indexed by task id and covers the tasks seen by the end of the stream; ``None``
    where a task has no ``full`` row in the last phase.
    """
    ra = record_arrays(records)
    last = ra.n_phases - 1
    seen = ra.seen_tasks(last)
    out: list[float | None] = [None] * (max(seen) + 1 if seen else 0)
    for t in seen:
        a = ra.full_acc[last, t]
        out[t] = None if np.isnan(a) else float(a)
    return out


def final_accuracy(
    records: pd.DataFrame | RecordArrays, weighting: AvgAccWeighting = "task_mean"
) -> float | None:
    """avg-ACC: accuracy over the seen tasks' full test sets after the last phase.

    ``task_mean`` averages per-task accuracies; ``sample_pooled`` (official) pools all test samples.
    ``None`` if any seen task lacks a ``full`` row in the last phase.
    """
    ra = record_arrays(records)
    last = ra.n_phases - 1
    seen = ra.seen_tasks(last)
    if not seen or np.isnan(ra.full_acc[last, seen]).any():
        return None
    if weighting == "task_mean":
        return float(np.mean(ra.full_acc[last, seen]))
    if weighting == "sample_pooled":
        return float(ra.full_correct[last, seen].sum() / ra.full_n[last, seen].sum())
    raise ValueError(f"weighting: got {weighting!r}; allowed: task_mean, sample_pooled")


def average_incremental_accuracy(records: pd.DataFrame | RecordArrays) -> float | None:
    """AIA: mean over phases k of the task-mean full-test accuracy of the tasks seen by k."""
    ra = record_arrays(records)
    per_phase = [
        _mean_or_none([ra.full_acc[k, t] for t in ra.seen_tasks(k)]) for k in range(ra.n_phases)
    ]
    if any(v is None for v in per_phase):
        return None
    return float(np.mean(per_phase))


def _reference_phase(ra: RecordArrays, task: int, last: int) -> int:
    """Latest phase before ``last`` in which ``task`` was current (its end-of-task point).

    Avalanche resets the reference whenever the trained and evaluated experience coincide; a task
    that was never current falls back to the phase that introduced it.
    """
    current = [p for p in range(last) if ra.phase_task[p] == task]
    return current[-1] if current else ra.intro_phase[task]


def _forgetting_tasks(ra: RecordArrays) -> list[int]:
    """Tasks seen before the last phase, minus the last phase's current task."""
    last = ra.n_phases - 1
    return [t for t in ra.seen_tasks(last - 1) if t != ra.phase_task[last]]


def forgetting(
    records: pd.DataFrame | RecordArrays, reference: ForgettingReference = "end_of_task"
) -> float | None:
    """Average forgetting FORG over tasks 1..K-1.

    ``end_of_task`` (official/Avalanche): reference R[end of task i, i]; ``max`` (Chaudhry): the
    maximum of R[l, i] over the phases l from i's introduction to K-1. ``None`` if K = 1.
    """
    if reference not in ("end_of_task", "max"):
        raise ValueError(f"reference: got {reference!r}; allowed: end_of_task, max")
    ra = record_arrays(records)
    last = ra.n_phases - 1
    tasks = _forgetting_tasks(ra)
    if last == 0 or not tasks:
        return None
    values = []
    for t in tasks:
        if reference == "end_of_task":
            ref = ra.full_acc[_reference_phase(ra, t, last), t]
        else:
            refs = ra.full_acc[ra.intro_phase[t] : last, t]
            ref = np.nan if np.isnan(refs).any() else refs.max()
        values.append(ref - ra.full_acc[last, t])
    return _mean_or_none(values)


def backward_transfer(records: pd.DataFrame | RecordArrays) -> float | None:
    """BWT = mean over tasks 1..K-1 of R[K, i] - R[end of task i, i] = -FORG.

    Always uses the end-of-task reference (Lopez-Paz & Ranzato). ``None`` if K = 1.
    """
    value = forgetting(records, "end_of_task")
    return None if value is None else -value


def forward_transfer(records: pd.DataFrame | RecordArrays) -> float | None:
    """FWT = mean over tasks i >= 1 of R[i-1, i] - b_i, b_i = accuracy of the initial model.

    R[i-1, i] comes from the forward-tracking ``full`` row of task i at the end of the phase before
    it is introduced and b_i from its ``init`` row (Lopez-Paz & Ranzato, NeurIPS 2017; Avalanche
    ``forward_transfer``). ``None`` if K = 1 or any of those values is missing.
    """
    ra = record_arrays(records)
    tasks = [t for t, p in sorted(ra.intro_phase.items()) if p >= 1]
    if ra.n_phases == 1 or not tasks:
        return None
    return _mean_or_none([ra.full_acc[ra.intro_phase[t] - 1, t] - ra.init_acc[t] for t in tasks])
