"""Learning Curve Area LCA_β (spec §2.9)."""

from __future__ import annotations

import warnings
from typing import Literal

import numpy as np
import pandas as pd

from clbench.metrics.records import RecordArrays, record_arrays

LcaMode = Literal["official", "chaudhry"]


def _first_current(ra: RecordArrays, task: int) -> int:
    return int(np.nonzero(ra.phase_task == task)[0][0])


def _window(ra: RecordArrays, task: int, beta: int, mode: LcaMode) -> list[float] | None:
    """The task's first evaluations while it is current, or ``None`` if the window is not full."""
    col = ra.acc[:, task]
    rows = np.nonzero((ra.point_task == task) & ~np.isnan(col))[0]
    if mode == "official":
        # Phase 0 contributes its step-0 point (b = 0..β-1); later tasks start after their first
        # update (b = 1..β) because pre-update rows of later phases are not evaluation points.
        values = col[rows[:beta]].tolist()
        return values if len(values) == beta else None
    intro = _first_current(ra, task)
    start = ra.phase_start[intro]
    if intro == 0:
        first = rows[:1]
        pre = float(col[first[0]]) if first.size and ra.point_step[first[0]] == start else None
    else:
        pre = ra.preupdate.get((intro, task))
    if pre is None:
        return None
    after = rows[ra.point_step[rows] > start][:beta]
    values = [pre, *col[after].tolist()]
    return values if len(values) == beta + 1 else None


def learning_curve_area(
    records: pd.DataFrame | RecordArrays, beta: int = 10, mode: LcaMode = "official"
) -> float | None:
    """LCA_β: mean over tasks of the mean of its first evaluations while it is current (§2.9).

    ``official``: β values per task; the first task includes its step-0 pre-update point,
    later tasks start after their first update. ``chaudhry``: β+1 values b = 0..β, where b = 0 is
    the pre-update evaluation of the task (needs ``preupdate_every_task`` for tasks after the
    first). Windows count evaluations, so with ``eval_every > 1`` b indexes evaluations, not
    updates. Tasks without a full window are left out; ``None`` if no task has one.
    """
    if mode not in ("official", "chaudhry"):
        raise ValueError(f"lca_mode: got {mode!r}; allowed: official, chaudhry")
    if isinstance(beta, bool) or beta < 1:
        raise ValueError(f"lca_beta: got {beta!r}; allowed: an integer >= 1")
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
    windows = [_window(ra, t, beta, mode) for t in tasks]
    full = [float(np.mean(w)) for w in windows if w is not None]
    return float(np.mean(full)) if full else None
