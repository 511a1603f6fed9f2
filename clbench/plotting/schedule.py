"""A scenario plan's task x phase heatmap of training-sample counts (`plot --schedule`)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from clbench.plotting.figure import new_figure, save_figure, wrap

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from clbench.scenario.plan import ScenarioPlan

COLORBAR_WIDTH_IN = 0.18  # the colour bar and its gap are fixed widths, not fractions of the axes
COLORBAR_PAD_IN = 0.12


def draw_schedule(plan: ScenarioPlan, log_scale: bool = False, title: str = "") -> Figure:
    """Heatmap of ``plan.count_matrix()``: training samples of each task (rows) in each phase
    (columns): the scenario's composition matrix.

    Empty cells stay white so sparse recurrence streams read as a pattern; ``log_scale`` colours
    counts logarithmically (power-law tails span orders of magnitude). Cells are drawn without
    interpolation and the figure widens with the number of phases (up to a cap), so streams of
    hundreds of phases stay legible; each phase's current task is marked with a dot when there
    are few enough phases for dots to read. The colour bar sits right next to the heatmap: its
    width and gap are set in inches, where a fraction of a wide axes left an empty band.
    """
    import matplotlib
    import numpy as np
    from matplotlib.colors import LogNorm, Normalize
    from matplotlib.ticker import MaxNLocator

    counts = plan.count_matrix().T  # rows = tasks, columns = phases
    n_tasks, n_phases = counts.shape
    masked = np.ma.masked_equal(counts, 0)
    peak = max(int(counts.max(initial=0)), 1)
    norm = LogNorm(vmin=1, vmax=max(peak, 2)) if log_scale else Normalize(vmin=0, vmax=peak)
    width = min(4.5 + 0.12 * n_phases, 18.0)
    height = min(2.2 + 0.25 * n_tasks, 12.0)
    fig = new_figure(width, height, layout="constrained")
    ax = fig.subplots()
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
    heading = title or f"{plan.scenario} on {plan.dataset}: samples per task and phase"
    ax.set_title(wrap(heading, int(fig.get_figwidth() * 9)), fontsize=10)
    axes_width = fig.get_figwidth() - 1.4  # about what the labels and the colour bar leave
    fig.colorbar(
        image,
        ax=ax,
        label="training samples" + (" (log)" if log_scale else ""),
        fraction=COLORBAR_WIDTH_IN / axes_width,
        pad=COLORBAR_PAD_IN / axes_width,
        aspect=max(10.0, 0.8 * fig.get_figheight() / COLORBAR_WIDTH_IN),
    )
    return fig


def plot_schedule(
    plan: ScenarioPlan, path: Path, log_scale: bool = False, title: str = ""
) -> Figure:
    """`draw_schedule`, saved to ``path`` (format from the suffix); returns the figure."""
    fig = draw_schedule(plan, log_scale, title)
    save_figure(fig, path)
    return fig
