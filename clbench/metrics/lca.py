"""Learning Curve Area LCA_β (Chaudhry et al., "Efficient lifelong learning with A-GEM", ICLR
2019; as tracked by De Lange et al.'s official code, ``TrackingLCAPluginMetric``).

Chaudhry et al. average ``Z_b = mean_k a(k, |T_{k-1}| + b)`` over ``b = 0..β``. Per task k,
clbench takes the mean of k's evaluations in a window at the start of its being current and then
averages over the tasks whose window is full. ``b`` is the number of updates made while k was
current (counted over every phase in which k is current, so a recurring task continues its
count), and the window is, by ``lca_mode``:

* ``official``: b = 0..β-1 for the first phase's task (its step-0 point included), b = 1..β for
  later tasks (no pre-update point), as the official code has it;
* ``chaudhry``: the pre-update evaluation (b = 0) and b = 1..β.

The unit of β (``window_unit``):

* ``updates``: the window holds the task's evaluations with b in that range, whatever their
  spacing (with ``eval.every > 1`` fewer than β values); it is full when k was current for at
  least its last b (β - 1 for the first phase's task in ``official``, β otherwise) and it holds an
  evaluation. With an evaluation after every update this equals the evaluation unit.
* ``evaluations`` (official code): the first β evaluations while current (β + 1 with the
  pre-update point in ``chaudhry``), b then indexes evaluations, not updates; full when there are
  that many.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from clbench.metrics.options import LcaMode
from clbench.metrics.records import RecordArrays, record_arrays
from clbench.metrics.windowed import WindowUnit, check_unit


def _first_current(ra: RecordArrays, task: int) -> int:
    return int(np.nonzero(ra.phase_task == task)[0][0])


def _current_updates(ra: RecordArrays, task: int, rows: np.ndarray) -> np.ndarray:
    """``b`` at each of ``rows`` (points at which ``task`` is current): updates made while the
    task was current, over every phase in which it is current, up to that point."""
    lengths = np.where(ra.phase_task == task, ra.phase_end - ra.phase_start, 0)
    before = np.cumsum(lengths) - lengths  # updates while current in earlier phases
    phase = ra.point_phase[rows]
    return before[phase] + ra.point_step[rows] - ra.phase_start[phase]


def _preupdate(ra: RecordArrays, task: int, rows: np.ndarray, col: np.ndarray) -> float | None:
    """The task's evaluation before its first update as current task (chaudhry's b = 0)."""
    intro = _first_current(ra, task)
    if intro > 0:
        return ra.preupdate.get((intro, task))
    first = rows[:1]
    if first.size and ra.point_step[first[0]] == ra.phase_start[intro]:
        return float(col[first[0]])
    return None


def _window(
    ra: RecordArrays, task: int, beta: int, mode: LcaMode, unit: WindowUnit
) -> list[float] | None:
    """The task's evaluations in its LCA window, or ``None`` if the window is not full."""
    col = ra.acc[:, task]
    rows = np.nonzero((ra.point_task == task) & ~np.isnan(col))[0]
    b = _current_updates(ra, task, rows)
    if unit == "updates":
        total = int(np.where(ra.phase_task == task, ra.phase_end - ra.phase_start, 0).sum())
        if mode == "official":
            lo = 0 if _first_current(ra, task) == 0 else 1
            last, pre = lo + beta - 1, None
        else:
            lo, last, pre = 1, beta, _preupdate(ra, task, rows, col)
            if pre is None:
                return None
        values = col[rows[(b >= lo) & (b <= last)]].tolist()
        if pre is not None:
            values.insert(0, pre)
        # full: the task was current through the window's last b (its evaluations may be sparse)
        return values if total >= last and values else None
    if mode == "official":
        # Phase 0 contributes its step-0 point (b = 0..β-1); later tasks start after their first
        # update (b = 1..β) because pre-update rows of later phases are not evaluation points.
        values = col[rows[:beta]].tolist()
        return values if len(values) == beta else None
    pre = _preupdate(ra, task, rows, col)
    if pre is None:
        return None
    after = rows[b > 0][:beta]
    values = [pre, *col[after].tolist()]
    return values if len(values) == beta + 1 else None


def learning_curve_area(
    records: pd.DataFrame | RecordArrays,
    beta: int = 10,
    mode: LcaMode = "official",
    unit: WindowUnit = "updates",
) -> float | None:
    """LCA_β: mean over tasks of the mean of their evaluations in the window (module doc).

    ``official``: b = 0..β-1 for the first task (its step-0 pre-update point included), b = 1..β
    for later tasks. ``chaudhry``: b = 0..β, where b = 0 is the pre-update evaluation of the task
    (needs ``preupdate_every_task`` for tasks after the first). ``unit``: b counts updates
    (``updates``) or evaluations (``evaluations``, the official code). Tasks without a full
    window are left out; ``None`` if no task has one.
    """
    if mode not in ("official", "chaudhry"):
        raise ValueError(f"lca_mode: got {mode!r}; allowed: official, chaudhry")
    if isinstance(beta, bool) or beta < 1:
        raise ValueError(f"lca_beta: got {beta!r}; allowed: an integer >= 1")
    check_unit(unit)
    ra = record_arrays(records)
    tasks = list(dict.fromkeys(ra.phase_task.tolist()))
    if mode == "chaudhry":
        lacking = [
            t for t in tasks if (p := _first_current(ra, t)) > 0 and (p, t) not in ra.preupdate
        ]
        if lacking:
            warnings.warn(
                f"lca_mode='chaudhry' needs a pre-update evaluation of every task "
                f"(preupdate_every_task); tasks {lacking} have none and are left out of LCA",
                stacklevel=2,
            )
    windows = [_window(ra, t, beta, mode, unit) for t in tasks]
    full = [float(np.mean(w)) for w in windows if w is not None]
    return float(np.mean(full)) if full else None
