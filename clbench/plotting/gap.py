"""A zoom on the stability gap: each old task's accuracy in the first ``window`` updates after
each task boundary (x = updates since the boundary; 0 is the last evaluation before the switch).

Rows are settings, columns are boundaries (the first ``MAX_BOUNDARIES`` of long streams), lines
are the tasks seen before the boundary, seeds averaged with a ±1 std band. The window stops at
the next boundary.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import pandas as pd

from clbench.errors import ClbenchError
from clbench.plotting.curves import task_bands
from clbench.plotting.figure import color, draw_band, figure_legend, pyplot, wrap
from clbench.plotting.run_data import RunData, load_run_data
from clbench.plotting.settings import Setting

if TYPE_CHECKING:
    from matplotlib.figure import Figure

DEFAULT_WINDOW = 100
MAX_BOUNDARIES = 8


class NoBoundaryError(ClbenchError):
    """The runs have a single phase: there is no task switch to zoom on."""


def gap_bands(
    bands: dict[int, pd.DataFrame], first: RunData, boundary: int, window: int
) -> dict[int, pd.DataFrame]:
    """Per old task, its seed band (from `task_bands`) in ``[b, b + window]``, clipped to the
    next boundary, after boundary number ``boundary`` (0 = the start of phase 1) of the
    setting's first seed ``first``, re-indexed by updates since the boundary ``b``."""
    start = first.boundaries[boundary]
    stop = start + window
    if boundary + 1 < len(first.boundaries):
        stop = min(stop, first.boundaries[boundary + 1])
    new_task = first.phase_task(boundary + 1)
    out: dict[int, pd.DataFrame] = {}
    for task, band in bands.items():
        if task == new_task or start not in band.index or pd.isna(band.at[start, "mean"]):
            continue  # only tasks evaluated before the switch can show a gap
        part = band.loc[start:stop].copy()
        part.index = part.index - start
        out[task] = part
    return out


def draw_gap(settings: Sequence[Setting], window: int = DEFAULT_WINDOW, title: str = "") -> Figure:
    data = [[load_run_data(run) for run in s.runs] for s in settings]
    counts = [len(d[0].boundaries) for d in data]
    total = max(counts)
    if total == 0:
        raise NoBoundaryError("gap: the runs have a single phase, so no task boundary to zoom on")
    ncols = min(total, MAX_BOUNDARIES)
    nrows = len(settings)
    plt = pyplot()
    fig, axes = plt.subplots(
        nrows,
        ncols,
        figsize=(3.2 * ncols + 0.6, 2.6 * nrows + 0.6),
        sharey=True,
        squeeze=False,
    )
    for row, (setting, runs) in enumerate(zip(settings, data, strict=True)):
        bands = task_bands(runs)
        for col in range(ncols):
            ax = axes[row, col]
            if col >= counts[row]:
                ax.axis("off")
                continue
            step = runs[0].boundaries[col]
            for task, band in gap_bands(bands, runs[0], col, window).items():
                draw_band(ax, band, color(task), f"task {task}")
            ax.axvline(0, color="grey", linestyle="--", linewidth=0.8, label="_boundary")
            ax.set_title(f"→ task {runs[0].phase_task(col + 1)} at step {step}", fontsize=9)
            ax.set_ylim(0, 1.02)
            ax.grid(alpha=0.3)
            if row == nrows - 1:
                ax.set_xlabel("updates since boundary")
        axes[row, 0].set_ylabel(f"{wrap(setting.label, 30)}\n\naccuracy", fontsize=8)
    bottom = figure_legend(fig, axes.ravel(), ncol=8)
    shown = "" if ncols == total else f"; first {ncols} of {total} boundaries"
    fig.suptitle(title or f"stability gap: up to {window} updates after each task boundary{shown}")
    fig.tight_layout(rect=(0, bottom, 1, 1))
    return fig
