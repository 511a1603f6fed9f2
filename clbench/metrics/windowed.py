"""Windowed forgetting WF^w and windowed plasticity WP^w (De Lange et al., ICLR 2023, continual
evaluation metrics; official code ``WindowedForgettingPluginMetric``).

Per task, a window holds the task's subset evaluations of a stretch of the stream and runs across
phase boundaries. After every evaluation the task's value becomes ``max(value, max over pairs
m < n in the window of the decrease/increase)``, starting at 0. The unit of ``w``:

* ``updates`` (clbench default): the window ending at evaluation n holds the evaluations whose
  global update step s satisfies ``s_n - w < s <= s_n``, so the pairs scored are those with
  ``s_n - s_m < w``. With an evaluation after every update this is the evaluation unit; with
  ``eval.every = 5``, WF^10 still spans 10 updates. Any set of evaluation steps works.
* ``evaluations`` (the official code): the window holds the last w evaluations of the task, so
  the pairs scored are those with ``n - m < w`` (w·ρ_eval updates at ``eval.every = ρ_eval``).

Every scored pair lies in the window that ends at its later point, so the final running maximum is

    F_i^w = max(0, max_{m < n, (m, n) in a window} a_i(m) - a_i(n))      (P_i^w: a_i(n) - a_i(m))

It is computed one lag ``d = n - m`` at a time with numpy, O(N·w) per task, instead of replaying
the windows; steps strictly increase along a task's evaluations, so at most w - 1 lags
qualify.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import pandas as pd

from clbench.metrics.options import WINDOW_UNITS, WfTasks, WindowUnit, WpMode
from clbench.metrics.records import RecordArrays, record_arrays


def _check_window(w: int) -> None:
    if isinstance(w, bool) or not isinstance(w, (int, np.integer)) or w < 1:
        raise ValueError(f"window size: got {w!r}; allowed: an integer >= 1")


def check_unit(unit: str) -> None:
    if unit not in WINDOW_UNITS:
        raise ValueError(f"window_unit: got {unit!r}; allowed: {', '.join(WINDOW_UNITS)}")


def _positions(a: np.ndarray, steps: Sequence[int] | np.ndarray | None) -> np.ndarray:
    """Where each evaluation lies on the window's axis: its step, or its index (``None``)."""
    if steps is None:
        return np.arange(a.size, dtype=np.int64)
    pos = np.asarray(steps, dtype=np.int64)
    if pos.shape != a.shape:
        raise ValueError(f"steps: got {pos.size} for {a.size} accuracies")
    if pos.size > 1 and (np.diff(pos) <= 0).any():
        raise ValueError("steps must be strictly increasing")
    return pos


def _lags(pos: np.ndarray, w: int, by_steps: bool) -> Iterator[tuple[int, np.ndarray | None]]:
    """Yield ``(d, in_window)`` for every lag d with at least one pair less than w apart.

    ``in_window`` is ``None`` when every pair at lag d qualifies (always in the evaluation unit).
    Positions strictly increase, so a pair's span grows with its lag and is at least the lag: the
    first lag with no pair inside ends the scan, and no lag reaches w.
    """
    for d in range(1, min(w, pos.size)):
        if not by_steps:
            yield d, None
            continue
        span = pos[d:] - pos[:-d]
        inside = span < w
        if inside.all():
            yield d, None
        elif inside.any():
            yield d, inside
        else:
            return


def _official_starts(a: np.ndarray, w: int, pos: np.ndarray) -> np.ndarray:
    """Start points the official running-max scan scores at least once.

    The official per-window scan skips a start point that is below the running maximum of the
    window before it. A start i is scored in some window iff it is scored in the latest window
    that still contains it, the one ending at ``hi_i`` (the last evaluation less than w from i),
    which begins at ``L_i`` (its first evaluation); so i is eligible iff
    ``a[i] >= max(a[L_i:i])``. In the evaluation unit ``L_i = min(i, max(0, N - w))``: only starts
    among the last w - 1 evaluations can be skipped (the "tail effect").
    """
    hi = np.searchsorted(pos, pos + w, side="left") - 1  # last evaluation with pos < pos_i + w
    first = np.searchsorted(pos, pos[hi] - w, side="right")  # first one with pos > pos_hi - w
    eligible = np.ones(a.size, dtype=bool)
    behind = np.arange(a.size) - first  # evaluations before i in that window
    for d in range(1, int(behind.max(initial=0)) + 1):
        idx = np.nonzero(behind >= d)[0]
        eligible[idx] &= a[idx] >= a[idx - d]
    return eligible


def max_window_decrease(
    seq: Sequence[float] | np.ndarray, w: int, steps: Sequence[int] | np.ndarray | None = None
) -> float:
    """Per-task F_i^w: the largest ``a[m] - a[n]`` over pairs m < n inside a window, at least 0.

    ``steps``: the update step of each evaluation (update unit, pairs with
    ``steps[n] - steps[m] < w``); ``None`` counts evaluations (pairs with ``n - m < w``). Exact;
    the official pruned scan gives the same value for decreases.
    """
    _check_window(w)
    a = np.asarray(seq, dtype=float)
    pos = _positions(a, steps)
    best = 0.0
    for d, inside in _lags(pos, w, steps is not None):
        diff = a[:-d] - a[d:]
        if inside is not None:
            diff = diff[inside]
        best = max(best, float(diff.max()))
    return best


def max_window_increase(
    seq: Sequence[float] | np.ndarray,
    w: int,
    mode: WpMode = "exact",
    steps: Sequence[int] | np.ndarray | None = None,
) -> float:
    """Per-task P_i^w: the largest ``a[n] - a[m]`` over pairs m < n inside a window, at least 0.

    ``steps`` as in :func:`max_window_decrease`. ``exact`` scores every pair;
    ``official_pruned`` reproduces the official running-max pruning on the same windows, e.g. a
    single window ``[0.5, 0.2, 0.9]`` gives 0.4 instead of 0.7.
    """
    _check_window(w)
    if mode not in ("exact", "official_pruned"):
        raise ValueError(f"wp_mode: got {mode!r}; allowed: exact, official_pruned")
    a = np.asarray(seq, dtype=float)
    pos = _positions(a, steps)
    starts = _official_starts(a, w, pos) if mode == "official_pruned" else None
    best = 0.0
    for d, inside in _lags(pos, w, steps is not None):
        diff = a[d:] - a[:-d]
        keep = inside
        if starts is not None:
            keep = starts[:-d] if keep is None else keep & starts[:-d]
        if keep is not None:
            diff = diff[keep]
        if diff.size:
            best = max(best, float(diff.max()))
    return best


def _task_sequences(ra: RecordArrays) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """``{task: (steps, accuracies)}``: chronological subset evaluations of every task."""
    out = {}
    for t in range(ra.n_tasks):
        col = ra.acc[:, t]
        have = ~np.isnan(col)
        if have.any():
            out[t] = (ra.point_step[have], col[have])
    return out


def _steps_for(unit: WindowUnit, steps: np.ndarray) -> np.ndarray | None:
    check_unit(unit)
    return steps if unit == "updates" else None


def _scored_tasks(
    ra: RecordArrays, w: int, unit: WindowUnit
) -> dict[int, tuple[np.ndarray | None, np.ndarray]]:
    """The tasks a window of w can score, with their window positions and accuracies.

    In the update unit a task evaluated less often than the window can see (no two consecutive
    evaluations less than w updates apart, and sparser than one per update; e.g. WF^10 under
    ``eval.every=25``) has no pair to score: its value is undefined, not 0, so a sparse schedule
    never reads as "no forgetting". Otherwise the official code's convention stands: a window that
    holds no pair contributes 0 (a task evaluated once, or w = 1), in either unit, so both units
    agree whenever there is an evaluation after every update.
    """
    out = {}
    for t, (steps, a) in _task_sequences(ra).items():
        pos = _steps_for(unit, steps)
        if pos is not None and pos.size > 1:
            spacing = int(np.diff(pos).min())
            if spacing >= w and spacing > 1:
                continue
        out[t] = (pos, a)
    return out


def windowed_forgetting_per_task(
    records: pd.DataFrame | RecordArrays, w: int, unit: WindowUnit = "updates"
) -> dict[int, float]:
    """``{task: F_i^w}`` for every task a window can score; ``unit`` of w: updates or
    evaluations."""
    ra = record_arrays(records)
    return {t: max_window_decrease(a, w, pos) for t, (pos, a) in _scored_tasks(ra, w, unit).items()}


def windowed_plasticity_per_task(
    records: pd.DataFrame | RecordArrays,
    w: int,
    mode: WpMode = "exact",
    unit: WindowUnit = "updates",
) -> dict[int, float]:
    """``{task: P_i^w}`` for every task a window can score; ``unit`` of w: updates or
    evaluations."""
    ra = record_arrays(records)
    return {
        t: max_window_increase(a, w, mode, pos)
        for t, (pos, a) in _scored_tasks(ra, w, unit).items()
    }


def windowed_forgetting(
    records: pd.DataFrame | RecordArrays,
    w: int,
    wf_tasks: WfTasks = "all",
    unit: WindowUnit = "updates",
) -> float | None:
    """WF^w: mean of F_i^w over all evaluated tasks (``all``, official) or over all but the last
    phase's current task (``previous``). ``None`` if no task qualifies or none has a pair of
    evaluations inside a window (update unit)."""
    if wf_tasks not in ("all", "previous"):
        raise ValueError(f"wf_tasks: got {wf_tasks!r}; allowed: all, previous")
    ra = record_arrays(records)
    per_task = windowed_forgetting_per_task(ra, w, unit)
    if wf_tasks == "previous":
        last_task = int(ra.phase_task[-1])
        per_task = {t: v for t, v in per_task.items() if t != last_task}
    return float(np.mean(list(per_task.values()))) if per_task else None


def windowed_plasticity(
    records: pd.DataFrame | RecordArrays,
    w: int,
    wp_mode: WpMode = "exact",
    unit: WindowUnit = "updates",
) -> float | None:
    """WP^w: mean of P_i^w over the tasks a window can score. ``None`` if there is none."""
    per_task = windowed_plasticity_per_task(records, w, wp_mode, unit)
    return float(np.mean(list(per_task.values()))) if per_task else None
