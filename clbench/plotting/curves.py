"""Per-task accuracy vs update step (the continual-evaluation subset), task boundaries dashed.

One setting: one axes, a line per task. A few settings (up to `MAX_LINES`, as many as there are
setting colours): one panel per task, a line per setting, so settings are compared on the same
task without a tangle of task x setting lines. More settings: one panel per setting, a line per
task (small multiples), at most `MAX_FACETS`, the best by final accuracy. Seeds of a setting are
averaged with a shaded ±1 std band.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from clbench.metrics.records import record_arrays
from clbench.plotting.figure import (
    BAND_NOTE,
    SETTING_COLORMAP,
    SETTING_COLORS,
    accuracy_limits,
    color,
    draw_band,
    draw_boundaries,
    figure_legend,
    new_figure,
    save_figure,
    wrap,
)
from clbench.plotting.run_data import RunData, load_run_data
from clbench.plotting.seeds import seed_band
from clbench.plotting.settings import (
    RANK_METRIC,
    Setting,
    keep_best,
    rank_settings,
    shown_note,
)

if TYPE_CHECKING:
    from matplotlib.figure import Figure

MAX_LINES = SETTING_COLORS  # settings compared in one panel; beyond, one panel per setting
MAX_FACETS = 32  # panels of one setting each (8 rows of 4); beyond, the best settings only
FACET_COLUMNS = 4

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
    """Accuracy per task against updates of ``settings`` (see the module docstring for the
    layouts); a figure over more than `MAX_FACETS` settings keeps the best and says so."""
    shown, _ = keep_best(settings, MAX_FACETS, "curves")
    data = [[load_run_data(run) for run in s.runs] for s in shown]
    bands = [task_bands(d) for d in data]
    boundaries = [d[0].boundaries for d in data]
    seeds = max(s.seeds for s in shown) > 1
    if len(shown) == 1:
        heading = title or shown[0].caption
        return _one_setting_figure(bands[0], boundaries[0], _with_note(heading, seeds))
    heading = title or "accuracy per task (evaluation subset)" + shown_note(
        len(settings), len(shown)
    )
    if len(shown) <= MAX_LINES:
        return _panel_per_task_figure(shown, bands, boundaries, _with_note(heading, seeds))
    order = [shown.index(s) for s in rank_settings(shown)]  # small multiples: best first
    if not title:
        heading += f"; panels best first by {RANK_METRIC}"
    return _panel_per_setting_figure(
        [shown[i] for i in order],
        [bands[i] for i in order],
        [boundaries[i] for i in order],
        _with_note(heading, seeds),
    )


def _with_note(title: str, seeds: bool) -> str:
    return f"{title}\n{BAND_NOTE}" if seeds else title


def _one_setting_figure(
    bands: dict[int, pd.DataFrame], boundaries: list[int], title: str
) -> Figure:
    fig = new_figure(9, 4.5, layout="constrained")
    ax = fig.subplots()
    for task, band in bands.items():
        draw_band(ax, band, color(task), f"task {task}")
    draw_boundaries(ax, boundaries)
    ax.set_xlabel(X_LABEL)
    ax.set_ylabel(Y_LABEL)
    accuracy_limits([ax], bands.values())
    ax.set_title(title, fontsize=10)
    ax.legend(loc="lower left", fontsize=8, ncol=2)
    ax.grid(alpha=0.3)
    return fig


def _grid(count: int, ncols: int, panel: tuple[float, float], extra: float) -> tuple[Figure, Any]:
    """A figure of ``count`` panels in rows of ``ncols`` sharing both axes; unused panels
    removed; returns the figure and the flat list of used axes."""
    ncols = min(count, ncols)
    nrows = math.ceil(count / ncols)
    fig = new_figure(panel[0] * ncols, panel[1] * nrows + extra, layout="constrained")
    axes = fig.subplots(nrows, ncols, sharex=True, sharey=True, squeeze=False).ravel()
    for ax in axes[count:]:
        fig.delaxes(ax)
    for i, ax in enumerate(axes[:count]):
        if i + ncols >= count:  # lowest panel of its column: it carries the x axis
            ax.xaxis.set_tick_params(labelbottom=True)
            ax.set_xlabel(X_LABEL, fontsize=9)
        if i % ncols == 0:
            ax.set_ylabel("accuracy", fontsize=9)
    return fig, list(axes[:count])


def _panel_per_task_figure(
    settings: Sequence[Setting],
    bands: list[dict[int, pd.DataFrame]],
    boundaries: list[list[int]],
    title: str,
) -> Figure:
    tasks = sorted({t for b in bands for t in b})
    fig, axes = _grid(len(tasks), 4, (4.0, 2.8), 1.2)
    shared = all(b == boundaries[0] for b in boundaries)
    for ax, task in zip(axes, tasks, strict=True):
        for i, (setting, setting_bands) in enumerate(zip(settings, bands, strict=True)):
            if task in setting_bands:
                draw_band(ax, setting_bands[task], color(i, SETTING_COLORMAP), setting.caption)
            if not shared:
                draw_boundaries(ax, boundaries[i], color(i, SETTING_COLORMAP))
        if shared:
            draw_boundaries(ax, boundaries[0])
        ax.set_title(f"task {task}", fontsize=10)
        ax.grid(alpha=0.3)
    accuracy_limits(axes, [band for b in bands for band in b.values()])
    figure_legend(fig, axes, ncol=2)
    fig.suptitle(title, fontsize=11)
    return fig


def _panel_per_setting_figure(
    settings: Sequence[Setting],
    bands: list[dict[int, pd.DataFrame]],
    boundaries: list[list[int]],
    title: str,
) -> Figure:
    fig, axes = _grid(len(settings), FACET_COLUMNS, (3.6, 2.4), 1.2)
    for ax, setting, setting_bands, steps in zip(axes, settings, bands, boundaries, strict=True):
        for task, band in setting_bands.items():
            draw_band(ax, band, color(task), f"task {task}")
        draw_boundaries(ax, steps)
        ax.set_title(wrap(setting.caption, 44), fontsize=8)
        ax.grid(alpha=0.3)
    accuracy_limits(axes, [band for b in bands for band in b.values()])
    figure_legend(fig, axes, ncol=10)
    fig.suptitle(title, fontsize=11)
    return fig
