"""A scenario plan's task x phase heatmap of training-sample counts (`plot --schedule`)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from clbench.plotting.figure import pyplot, save_figure

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from clbench.scenario.plan import ScenarioPlan


def plot_schedule(
    plan: ScenarioPlan, path: Path, log_scale: bool = False, title: str = ""
) -> Figure:
    """Heatmap of ``plan.count_matrix()``: training samples of each task (rows) in each phase
    (columns): the scenario's composition matrix.

    Empty cells stay white so sparse recurrence streams read as a pattern; ``log_scale`` colours
    counts logarithmically (power-law tails span orders of magnitude). Cells are drawn without
    interpolation and the figure widens with the number of phases (up to a cap), so streams of
    hundreds of phases stay legible; each phase's current task is marked with a dot when there
    are few enough phases for dots to read.
    """
    plt = pyplot()
    import matplotlib
    import numpy as np
    from matplotlib.colors import LogNorm, Normalize
    from matplotlib.ticker import MaxNLocator

    counts = plan.count_matrix().T  # rows = tasks, columns = phases
    n_tasks, n_phases = counts.shape
    masked = np.ma.masked_equal(counts, 0)
    peak = max(int(counts.max(initial=0)), 1)
    norm = LogNorm(vmin=1, vmax=max(peak, 2)) if log_scale else Normalize(vmin=0, vmax=peak)
    width = min(4.0 + 0.12 * n_phases, 18.0)
    height = min(2.0 + 0.25 * n_tasks, 12.0)
    fig, ax = plt.subplots(figsize=(width, height))
    cmap = matplotlib.colormaps["viridis"].with_extremes(bad="white")
    image = ax.imshow(
        masked, aspect="auto", interpolation="nearest", origin="lower", cmap=cmap, norm=norm
    )
    if n_phases <= 60:
        current = [p.current_task for p in plan.phases]
        ax.scatter(range(n_phases), current, s=6, c="red", marker="o", label="current task")
        ax.legend(loc="upper left", fontsize=7, framealpha=0.8)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("phase")
    ax.set_ylabel("task")
    ax.set_title(title or f"{plan.scenario} on {plan.dataset}: samples per task and phase")
    fig.colorbar(image, ax=ax, label="training samples" + (" (log)" if log_scale else ""))
    fig.tight_layout()
    save_figure(fig, path)
    return fig
