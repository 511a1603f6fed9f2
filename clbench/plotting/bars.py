"""Summary metrics as bars: one panel per metric, one horizontal bar per setting (mean over seeds,
error bar ±1 std), the mean written after the bar; a metric undefined for a setting shows ``n/a``.
Panel titles give the metric's readable name with ↑ (higher is better) or ↓ (lower is better).

Bars lie horizontally so setting labels read across and the figure grows downwards, not
sideways, with the number of settings (26 vertical bars per panel made a 7,000-px-wide image).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from clbench.errors import ConfigError
from clbench.metrics.directions import arrow, direction, readable_name
from clbench.plotting.figure import SETTING_COLORMAP, SETTING_COLORS, color, new_figure, wrap
from clbench.plotting.seeds import mean_std
from clbench.plotting.settings import Setting, keep_best, shown_note
from clbench.results.reader import RunFolder

if TYPE_CHECKING:
    from matplotlib.figure import Figure

DEFAULT_METRICS = ("final_acc", "aia", "forgetting", "min_acc", "wc_acc", "gap_depth_mean")
SORT_FROM = 13  # from this many settings on, bars are sorted best first by the first metric
MAX_BARS = 40  # settings; beyond, the best by final accuracy only
LABEL_WIDTH = 40  # characters per line of a setting label
BAR_COLOR = "#4c72b0"  # one colour when there are more settings than setting colours


def _is_scalar(value: Any) -> bool:
    return value is None or (isinstance(value, int | float) and not isinstance(value, bool))


def scalar_metrics(runs: Sequence[RunFolder]) -> list[str]:
    """Metric names that are numbers (or null) in every summary that has them, in order."""
    names: dict[str, bool] = {}
    for run in runs:
        for name, value in run.summary["metrics"].items():
            names[name] = names.get(name, True) and _is_scalar(value)
    return [name for name, scalar in names.items() if scalar]


def choose_metrics(runs: Sequence[RunFolder], requested: Sequence[str] | None) -> list[str]:
    """``requested`` checked against the runs' scalar metrics, or the defaults they have."""
    available = scalar_metrics(runs)
    if not requested:
        chosen = [m for m in DEFAULT_METRICS if m in available]
        return chosen or available[: len(DEFAULT_METRICS)]
    for name in requested:
        if name not in available:
            raise ConfigError("--metrics", name, available or "no scalar metric in these runs")
    return list(requested)


def metric_table(settings: Sequence[Setting], metrics: Sequence[str]) -> pd.DataFrame:
    """One row per (setting, metric): ``mean``, ``std`` (ddof=1) and ``n`` over defined seeds."""
    rows = []
    for setting in settings:
        for metric in metrics:
            values = [run.summary["metrics"].get(metric) for run in setting.runs]
            mean, std, n = mean_std(values)
            rows.append(
                {"setting": setting.label, "metric": metric, "mean": mean, "std": std, "n": n}
            )
    return pd.DataFrame(rows, columns=["setting", "metric", "mean", "std", "n"])


def _order(settings: Sequence[Setting], table: pd.DataFrame, metric: str) -> list[int]:
    """Setting indices best first by ``metric``'s mean (higher first when it has no direction),
    undefined means last."""
    means = table[table["metric"] == metric]["mean"].to_numpy()
    sign = 1.0 if direction(metric) == "lower" else -1.0
    return sorted(
        range(len(settings)),
        key=lambda i: (math.isnan(means[i]), sign * means[i] if not math.isnan(means[i]) else 0, i),
    )


def draw_bars(settings: Sequence[Setting], metrics: Sequence[str], title: str = "") -> Figure:
    """One panel per metric, one horizontal bar per setting (labels read across, however many
    settings); more than `SORT_FROM` settings are sorted best first by the first metric, more
    than `MAX_BARS` keep the best by final accuracy."""
    shown, _ = keep_best(settings, MAX_BARS, "bars")
    table = metric_table(shown, metrics)
    order = list(range(len(shown)))
    if len(shown) >= SORT_FROM:
        order = _order(shown, table, metrics[0])
    n = len(shown)
    ncols = min(len(metrics), 3)
    nrows = math.ceil(len(metrics) / ncols)
    labels = [wrap(shown[i].label, LABEL_WIDTH) for i in order]
    label_in = min(4.0, 0.065 * max(len(line) for t in labels for line in t.split("\n")) + 0.3)
    panel_h = max(2.2, 0.24 * n + 1.0)
    fig = new_figure(3.6 * ncols + label_in, panel_h * nrows + 0.9, layout="constrained")
    axes = fig.subplots(nrows, ncols, sharey=True, squeeze=False).ravel()
    y = list(range(n))
    colors = [color(i, SETTING_COLORMAP) if n <= SETTING_COLORS else BAR_COLOR for i in order]
    for ax, metric in zip(axes, metrics, strict=False):
        rows = table[table["metric"] == metric].reset_index(drop=True).iloc[order]
        means, stds = rows["mean"].to_numpy(), rows["std"].to_numpy()
        ax.barh(y, means, xerr=stds, color=colors, capsize=2, error_kw={"linewidth": 0.8})
        low = min(0.0, float(np.nanmin(means - stds, initial=0.0)))
        high = max(0.0, float(np.nanmax(means + stds, initial=0.0)))
        span = (high - low) or 1.0
        for i, (mean, std, count) in enumerate(zip(means, stds, rows["n"], strict=True)):
            text = "n/a" if count == 0 else f"{mean:.3f}"
            ax.annotate(
                text,
                (0.0 if count == 0 else max(mean + std, 0.0), i),
                ha="left",
                va="center",
                fontsize=7,
                xytext=(3, 0),
                textcoords="offset points",
            )
        ax.set_xlim(low - 0.02 * span, high + 0.22 * span)
        ax.set_title(f"{readable_name(metric)} {arrow(metric)}".strip(), fontsize=10)
        better = {"higher": "higher is better", "lower": "lower is better"}
        ax.set_xlabel(
            f"{metric} ({better.get(direction(metric) or '', 'no direction')})", fontsize=8
        )
        ax.axvline(0, color="black", linewidth=0.6)
        ax.grid(axis="x", alpha=0.3)
        ax.tick_params(labelsize=8)
    axes[0].set_yticks(y, labels, fontsize=8)
    axes[0].invert_yaxis()  # the first (best) setting on top
    for ax in axes[len(metrics) :]:
        fig.delaxes(ax)
    seeds = ", ".join(sorted({str(s.seeds) for s in shown}))
    heading = title or f"summary metrics: seed mean ± 1 std (seeds per setting: {seeds})"
    if not title:
        if len(shown) >= SORT_FROM:
            heading += f"; sorted by {metrics[0]}, best on top"
        heading += shown_note(len(settings), n)
    fig.suptitle(heading, fontsize=11)
    return fig
