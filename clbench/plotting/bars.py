"""Summary metrics as bars: one panel per metric, one bar per setting (mean over seeds, error bar
±1 std), the mean written on the bar; a metric undefined for a setting shows ``n/a``."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import pandas as pd

from clbench.errors import ConfigError
from clbench.plotting.figure import SETTING_COLORMAP, color, pyplot, wrap
from clbench.plotting.seeds import mean_std
from clbench.plotting.settings import Setting
from clbench.results.reader import RunFolder

if TYPE_CHECKING:
    from matplotlib.figure import Figure

DEFAULT_METRICS = ("final_acc", "aia", "forgetting", "min_acc", "wc_acc", "gap_depth_mean")


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


def draw_bars(settings: Sequence[Setting], metrics: Sequence[str], title: str = "") -> Figure:
    table = metric_table(settings, metrics)
    plt = pyplot()
    ncols = min(len(metrics), 3)
    nrows = math.ceil(len(metrics) / ncols)
    width = max(3.2, 0.7 * len(settings) + 1.6)
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(width * ncols, 3.2 * nrows + 0.8), squeeze=False
    )
    flat = axes.ravel()
    x = list(range(len(settings)))
    colors = [color(i, SETTING_COLORMAP) for i in x]
    for ax, metric in zip(flat, metrics, strict=False):
        rows = table[table["metric"] == metric]
        means, stds = rows["mean"].to_numpy(), rows["std"].to_numpy()
        ax.bar(x, means, yerr=stds, color=colors, capsize=3, error_kw={"linewidth": 1})
        for i, (mean, std, n) in enumerate(zip(means, stds, rows["n"], strict=True)):
            text = "n/a" if n == 0 else f"{mean:.3f}"
            ax.annotate(
                text,
                (i, 0 if n == 0 else mean + std),
                ha="center",
                va="bottom",
                fontsize=7,
                xytext=(0, 2),
                textcoords="offset points",
            )
        ax.set_title(metric, fontsize=10)
        ax.set_xticks(x, [wrap(s.label, 20) for s in settings], rotation=30, ha="right", fontsize=7)
        ax.axhline(0, color="black", linewidth=0.6)
        ax.grid(axis="y", alpha=0.3)
    for ax in flat[len(metrics) :]:
        fig.delaxes(ax)
    seeds = ", ".join(sorted({str(s.seeds) for s in settings}))
    fig.suptitle(title or f"metrics: mean ± std over seeds (seeds per setting: {seeds})")
    fig.tight_layout()
    return fig
