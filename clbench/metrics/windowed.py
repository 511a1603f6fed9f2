"""Windowed forgetting WF^w and windowed plasticity WP^w (spec §2.7, §2.8).

Per task, a window holds the last ``w`` subset evaluations of that task (windows count
evaluations, not updates, and run across phase boundaries). After every append the task's value
becomes ``max(value, max over pairs m < n in the window of the decrease/increase)``, starting at 0.

Every pair of evaluations at most ``w - 1`` apart lies in the window that ends at its later point,
so the final running maximum is the maximum over all such pairs. It is computed one lag
``d = n - m`` at a time with numpy, O(N·w) per task, instead of replaying the windows.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import pandas as pd

from clbench.metrics.records import RecordArrays, record_arrays

WfTasks = Literal["all", "previous"]
WpMode = Literal["exact", "official_pruned"]


def _check_window(w: int) -> None:
    if isinstance(w, bool) or not isinstance(w, (int, np.integer)) or w < 1:
        raise ValueError(f"window size: got {w!r}; allowed: an integer >= 1")


def _official_starts(a: np.ndarray, w: int) -> np.ndarray:
    """Start points the official running-max scan scores at least once (spec §2.8).

    The official per-window scan skips a start point that is below the running maximum of the
    window before it. A start s is scored in the latest window that still contains it, which begins
    at ``L_s = min(s, max(0, N - w))``: for every s up to N - w that window starts at s itself, so
    only starts among the last w - 1 evaluations can be skipped (the "tail effect").
    """
    eligible = np.ones(a.size, dtype=bool)
    lo = max(0, a.size - w)
    tail = a[lo:]
    if tail.size:
        before = np.concatenate(([-np.inf], np.maximum.accumulate(tail)[:-1]))
        eligible[lo:] = tail >= before
    return eligible


def max_window_decrease(seq: Sequence[float] | np.ndarray, w: int) -> float:
    """Per-task F_i^w: ``max(0, max a[m] - a[n] over m < n, n - m < w)`` (spec §2.7).

    Exact; the official pruned scan gives the same value for decreases.
    """
    _check_window(w)
    a = np.asarray(seq, dtype=float)
    best = 0.0
    for d in range(1, min(w, a.size)):
        best = max(best, float((a[:-d] - a[d:]).max()))
    return best


def max_window_increase(seq: Sequence[float] | np.ndarray, w: int, mode: WpMode = "exact") -> float:
    """Per-task P_i^w: ``max(0, max a[n] - a[m] over m < n, n - m < w)`` (spec §2.8).

    ``exact`` scores every pair; ``official_pruned`` reproduces the official running-max pruning,
    e.g. a single window ``[0.5, 0.2, 0.9]`` gives 0.4 instead of 0.7.
    """
    _check_window(w)
    if mode not in ("exact", "official_pruned"):
        raise ValueError(f"wp_mode: got {mode!r}; allowed: exact, official_pruned")
    a = np.asarray(seq, dtype=float)
    starts = _official_starts(a, w) if mode == "official_pruned" else None
    best = 0.0
    for d in range(1, min(w, a.size)):
        diff = a[d:] - a[:-d]
        if starts is not None:
            diff = diff[starts[:-d]]
        if diff.size:
            best = max(best, float(diff.max()))
    return best


def _task_sequences(ra: RecordArrays) -> dict[int, np.ndarray]:
    """Chronological subset accuracies of every evaluated task."""
    out = {}
    for t in range(ra.n_tasks):
        col = ra.acc[:, t]
        col = col[~np.isnan(col)]
        if col.size:
            out[t] = col
    return out


def windowed_forgetting_per_task(records: pd.DataFrame | RecordArrays, w: int) -> dict[int, float]:
    """``{task: F_i^w}`` for every evaluated task (spec §2.7)."""
    ra = record_arrays(records)
    return {t: max_window_decrease(s, w) for t, s in _task_sequences(ra).items()}


def windowed_plasticity_per_task(
    records: pd.DataFrame | RecordArrays, w: int, mode: WpMode = "exact"
) -> dict[int, float]:
    """``{task: P_i^w}`` for every evaluated task (spec §2.8)."""
    ra = record_arrays(records)
    return {t: max_window_increase(s, w, mode) for t, s in _task_sequences(ra).items()}


def windowed_forgetting(
    records: pd.DataFrame | RecordArrays, w: int, wf_tasks: WfTasks = "all"
) -> float | None:
    """WF^w: mean of F_i^w over all evaluated tasks (``all``, official) or over all but the last
    phase's current task (``previous``) (spec §2.7). ``None`` if no task qualifies."""
    if wf_tasks not in ("all", "previous"):
        raise ValueError(f"wf_tasks: got {wf_tasks!r}; allowed: all, previous")
    ra = record_arrays(records)
    per_task = windowed_forgetting_per_task(ra, w)
    if wf_tasks == "previous":
        last_task = int(ra.phase_task[-1])
        per_task = {t: v for t, v in per_task.items() if t != last_task}
    return float(np.mean(list(per_task.values()))) if per_task else None


def windowed_plasticity(
    records: pd.DataFrame | RecordArrays, w: int, wp_mode: WpMode = "exact"
) -> float | None:
    """WP^w: mean of P_i^w over all evaluated tasks (spec §2.8). ``None`` without evaluations."""
    per_task = windowed_plasticity_per_task(records, w, wp_mode)
    return float(np.mean(list(per_task.values()))) if per_task else None
