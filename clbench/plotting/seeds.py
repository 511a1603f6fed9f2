"""Statistics over the seeds of one setting: mean, sample standard deviation (ddof=1) and count.

One seed has no spread: its std is reported as 0 so bands and error bars simply vanish.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd


def seed_band(curves: Sequence[pd.Series]) -> pd.DataFrame:
    """Align per-seed curves on their index (update step); columns ``mean``, ``std``, ``n``.

    A step missing in some seeds is averaged over the seeds that have it.
    """
    frame = pd.concat(list(curves), axis=1).sort_index()
    return pd.DataFrame(
        {
            "mean": frame.mean(axis=1),
            "std": frame.std(axis=1, ddof=1).fillna(0.0),
            "n": frame.notna().sum(axis=1),
        }
    )


def mean_std(values: Sequence[float | None]) -> tuple[float, float, int]:
    """(mean, std, n) of the defined values; (nan, nan, 0) when none is defined."""
    defined = np.array([v for v in values if v is not None], dtype=float)
    if defined.size == 0:
        return float("nan"), float("nan"), 0
    std = float(defined.std(ddof=1)) if defined.size > 1 else 0.0
    return float(defined.mean()), std, int(defined.size)
