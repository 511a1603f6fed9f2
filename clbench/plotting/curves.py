"""Per-task accuracy vs update step (the continual-evaluation subset), task boundaries dashed.

One setting: one axes, a line per task. Several settings: one panel per task, a line per setting,
so settings are compared on the same task without a tangle of task x setting lines. Seeds of a
setting are averaged with a shaded ±1 std band.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from clbench.metrics.records import record_arrays
from clbench.plotting.figure import (
    SETTING_COLORMAP,
    color,
    draw_band,
    draw_boundaries,
    figure_legend,
    pyplot,
    save_figure,
)
from clbench.plotting.run_data import RunData, load_run_data
from clbench.plotting.seeds import seed_band
from clbench.plotting.settings import Setting

if TYPE_CHECKING:
    from matplotlib.figure import Figure

X_LABEL = "update (optimizer step)"
Y_LABEL = "accuracy (evaluation subset)"


def task_bands(data: Sequence[RunData]) -> dict[int, pd.DataFrame]:
    """Per task, the seed mean/std/n of its subset accuracy, indexed by update step."""
    curves = [d.curve for d in data]
    tasks = sorted({int(t) for c in curves for t in c.columns})
    return {t: seed_band([c[t].dropna() for c in curves if t in c.columns]) for t in tasks}


def plot_task_curves(
    records: pd.DataFrame, phase_end_steps: Sequence[int], path: Path, title: str = ""
) -> Figure:
    """The curves of one run (its ``accuracy.png``)."""
    data = RunData(record_arrays(records), [int(s) for s in phase_end_steps[:-1]])
    fig = _one_setting_figure(task_bands([data]), data.boundaries, title)
    save_figure(fig, path)
    return fig


def draw_curves(settings: Sequence[Setting], title: str = "") -> Figure:
    data = [[load_run_data(run) for run in s.runs] for s in settings]
    if len(settings) == 1:
        bands = task_bands(data[0])
        return _one_setting_figure(bands, data[0][0].boundaries, title or settings[0].caption)
    bands = [task_bands(d) for d in data]
    boundaries = [d[0].boundaries for d in data]
    return _panel_per_task_figure(settings, bands, boundaries, title)


def _one_setting_figure(
    bands: dict[int, pd.DataFrame], boundaries: list[int], title: str
) -> Figure:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(9, 4.5))
    for task, band in bands.items():
        draw_band(ax, band, color(task), f"task {task}")
    draw_boundaries(ax, boundaries)
    ax.set_xlabel(X_LABEL)
    ax.set_ylabel(Y_LABEL)
    ax.set_ylim(0, 1.02)
    ax.set_title(title)
    ax.legend(loc="lower left", fontsize=8, ncol=2)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def _panel_per_task_figure(
    settings: Sequence[Setting],
    bands: list[dict[int, pd.DataFrame]],
    boundaries: list[list[int]],
    title: str,
) -> Figure:
    plt = pyplot()
    tasks = sorted({t for b in bands for t in b})
    ncols = min(len(tasks), 4)
    nrows = math.ceil(len(tasks) / ncols)
    fig, axes = plt.subplots(
        nrows,
        ncols,
        figsize=(4 * ncols, 2.8 * nrows + 0.8),
        sharex=True,
        sharey=True,
        squeeze=False,
    )
    shared = all(b == boundaries[0] for b in boundaries)
    flat = axes.ravel()
    for ax, task in zip(flat, tasks, strict=False):
        for i, (setting, setting_bands) in enumerate(zip(settings, bands, strict=True)):
            if task in setting_bands:
                draw_band(ax, setting_bands[task], color(i, SETTING_COLORMAP), setting.caption)
            if not shared:
                draw_boundaries(ax, boundaries[i], color(i, SETTING_COLORMAP))
        if shared:
            draw_boundaries(ax, boundaries[0])
        ax.set_title(f"task {task}", fontsize=10)
        ax.set_ylim(0, 1.02)
        ax.grid(alpha=0.3)
    for ax in flat[len(tasks) :]:
        fig.delaxes(ax)
    for i, ax in enumerate(flat[: len(tasks)]):
        if i + ncols >= len(tasks):  # lowest panel of its column: it carries the x axis
            ax.xaxis.set_tick_params(labelbottom=True)
            ax.set_xlabel(X_LABEL)
    for ax in axes[:, 0]:
        ax.set_ylabel("accuracy")
    bottom = figure_legend(fig, flat[: len(tasks)], ncol=2)
    fig.suptitle(title or "accuracy per task (evaluation subset)")
    fig.tight_layout(rect=(0, bottom, 1, 1))
    return fig
