"""A zoom on the stability gap: each old task's accuracy in the first ``window`` updates after
each task boundary (x = updates since the boundary; 0 is the last evaluation before the switch).

Rows are settings (at most ``MAX_ROWS``, the best by final accuracy), columns are boundaries (the
first ``MAX_BOUNDARIES`` of long streams), lines are the tasks seen before the boundary, seeds
averaged with a ±1 std band. The window stops at the next boundary (or the end of the stream), and
the title says how many updates are actually shown, not just the window asked for.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import pandas as pd

from clbench.errors import ClbenchError
from clbench.plotting.curves import task_bands
from clbench.plotting.figure import (
    BAND_NOTE,
    accuracy_limits,
    color,
    draw_band,
    figure_legend,
    new_figure,
    wrap,
)
from clbench.plotting.run_data import RunData, load_run_data
from clbench.plotting.settings import Setting, keep_best, shown_note

if TYPE_CHECKING:
    from matplotlib.figure import Figure

DEFAULT_WINDOW = 100
MAX_BOUNDARIES = 8
MAX_ROWS = 8  # settings, one row each; beyond, the best settings only


class NoBoundaryError(ClbenchError):
    """The runs have a single phase: there is no task switch to zoom on."""


def gap_span(first: RunData, boundary: int, window: int) -> int:
    """How many updates the zoom after boundary number ``boundary`` shows: ``window``, cut at the
    end of the phase that starts there (the next boundary, or the end of the stream)."""
    start = first.boundaries[boundary]
    ends = first.arrays.phase_end
    end = int(ends[boundary + 1]) if boundary + 1 < len(ends) else start + window
    return max(0, min(window, end - start))


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


def gap_title(spans: Sequence[int], window: int) -> str:
    """What the panels show: ``the first 100 updates`` when every panel shows the whole window,
    else the most any panel shows and why it is fewer (a title promising 100 updates over panels
    that end at 27 misleads)."""
    most = max(spans)
    if min(spans) == window:
        unit = "update" if window == 1 else "updates"
        return f"stability gap: the first {window} {unit} after each task boundary"
    return (
        f"stability gap: up to {most} updates after each task boundary "
        f"(window {window}, cut at the end of each phase)"
    )


def draw_gap(settings: Sequence[Setting], window: int = DEFAULT_WINDOW, title: str = "") -> Figure:
    """The zoom of every setting (rows) after each boundary (columns); see the module docstring."""
    shown, _ = keep_best(settings, MAX_ROWS, "gap")
    data = [[load_run_data(run) for run in s.runs] for s in shown]
    counts = [len(d[0].boundaries) for d in data]
    total = max(counts)
    if total == 0:
        raise NoBoundaryError("gap: the runs have a single phase, so no task boundary to zoom on")
    ncols = min(total, MAX_BOUNDARIES)
    nrows = len(shown)
    fig = new_figure(3.2 * ncols + 0.9, 2.3 * nrows + 1.3, layout="constrained")
    axes = fig.subplots(nrows, ncols, sharey=True, squeeze=False)
    spans: list[int] = []
    drawn: list[pd.DataFrame] = []
    for row, (setting, runs) in enumerate(zip(shown, data, strict=True)):
        bands = task_bands(runs)
        for col in range(ncols):
            ax = axes[row, col]
            if col >= counts[row]:
                ax.axis("off")
                continue
            step = runs[0].boundaries[col]
            span = gap_span(runs[0], col, window)
            spans.append(span)
            for task, band in gap_bands(bands, runs[0], col, window).items():
                draw_band(ax, band, color(task), f"task {task}")
                drawn.append(band)
            ax.axvline(0, color="grey", linestyle="--", linewidth=0.8, label="_boundary")
            ax.set_xlim(0, max(span, 1))
            ax.set_title(f"→ task {runs[0].phase_task(col + 1)} at step {step}", fontsize=9)
            ax.grid(alpha=0.3)
            if row == nrows - 1:
                ax.set_xlabel("updates since boundary", fontsize=9)
        axes[row, 0].set_ylabel(f"{wrap(setting.caption, 30)}\n\naccuracy", fontsize=8)
    accuracy_limits([a for a in axes.ravel() if a.axison], drawn)
    figure_legend(fig, axes.ravel(), ncol=10)
    heading = title or gap_title(spans, window)
    if not title:
        heading += shown_note(len(settings), len(shown))
        if ncols < total:
            heading += f"; first {ncols} of {total} boundaries"
    if max(s.seeds for s in shown) > 1:
        heading += f"\n{BAND_NOTE}"
    fig.suptitle(heading, fontsize=11)
    return fig
