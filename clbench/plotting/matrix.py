"""The accuracy matrix R[i, j]: full-test-set accuracy on task j after phase i (the phase-end
``full`` evaluations), one heatmap per setting, the seed mean written in each cell; cells never
evaluated stay blank. Many settings wrap into rows of `COLUMNS` panels, at most `MAX_PANELS` (the
best by final accuracy), so the figure never outgrows a page's width."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from clbench.plotting.figure import new_figure, wrap
from clbench.plotting.run_data import load_run_data
from clbench.plotting.settings import Setting, keep_best, shown_note

if TYPE_CHECKING:
    from matplotlib.figure import Figure

MAX_ANNOTATED = 20  # beyond this many tasks per side the numbers no longer fit in the cells
COLUMNS = 4  # panels per row
MAX_PANELS = 16  # settings; beyond, the best settings only


def mean_matrix(setting: Setting) -> pd.DataFrame:
    """Cell-wise mean over the seeds that evaluated the cell (index phase, columns task)."""
    matrices = [load_run_data(run).matrix for run in setting.runs]
    stacked = pd.concat(matrices, keys=range(len(matrices)), names=["seed"])
    return stacked.groupby(level="phase").mean()


def draw_matrix(settings: Sequence[Setting], title: str = "") -> Figure:
    """One heatmap per setting, in rows of `COLUMNS`, one shared colour bar."""
    shown, _ = keep_best(settings, MAX_PANELS, "matrix")
    matrices = [mean_matrix(s) for s in shown]
    n = len(shown)
    ncols = min(n, COLUMNS)
    nrows = -(-n // ncols)
    side = max(max(m.shape) for m in matrices)
    panel = min(max(3.0, 0.45 * side + 1.5), 12.0 if n == 1 else 14.5 / ncols)
    fig = new_figure(panel * ncols + 1.0, (panel + 0.3) * nrows + 0.6, layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax in axes[n:]:
        fig.delaxes(ax)
    image = None
    for index, (ax, setting, matrix) in enumerate(zip(axes, shown, matrices, strict=False)):
        values = matrix.to_numpy(dtype=float)
        image = ax.imshow(
            np.ma.masked_invalid(values), vmin=0, vmax=1, cmap="viridis", interpolation="nearest"
        )
        if max(values.shape) <= MAX_ANNOTATED:  # tick labels and numbers fit
            size = 7 if max(values.shape) <= 10 else 5
            for (i, j), value in np.ndenumerate(values):
                if not np.isnan(value):
                    ink = "black" if value > 0.6 else "white"
                    ax.text(
                        j, i, f"{value:.2f}", ha="center", va="center", fontsize=size, color=ink
                    )
            ax.set_xticks(range(values.shape[1]), [str(t) for t in matrix.columns])
            ax.set_yticks(range(values.shape[0]), [str(p) for p in matrix.index])
        if index + ncols >= n:  # the lowest panel of its column
            ax.set_xlabel("evaluated task j", fontsize=9)
        if index % ncols == 0:
            ax.set_ylabel("after phase i", fontsize=9)
        ax.set_title(wrap(setting.caption, int(panel * 9)), fontsize=9)
    # a bar of fixed width (0.2 in), not a fraction of all panels: no wide empty band beside it
    fig.colorbar(
        image,
        ax=list(axes[:n]),
        label="accuracy (full test set)",
        fraction=0.2 / fig.get_figwidth(),
        pad=0.1 / fig.get_figwidth(),
        aspect=max(10.0, min(0.8 * fig.get_figheight(), 6.0) / 0.2),
        shrink=min(1.0, 6.0 / fig.get_figheight()),
    )
    heading = title or "accuracy matrix R[i, j] (seed mean)" + shown_note(len(settings), n)
    fig.suptitle(heading, fontsize=11)
    return fig
