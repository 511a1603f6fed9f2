"""The accuracy matrix R[i, j]: full-test-set accuracy on task j after phase i (the phase-end
``full`` evaluations), one heatmap per setting, the seed mean written in each cell; cells never
evaluated stay blank."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from clbench.plotting.figure import pyplot, wrap
from clbench.plotting.run_data import load_run_data
from clbench.plotting.settings import Setting

if TYPE_CHECKING:
    from matplotlib.figure import Figure

MAX_ANNOTATED = 20  # beyond this many tasks per side the numbers no longer fit in the cells


def mean_matrix(setting: Setting) -> pd.DataFrame:
    """Cell-wise mean over the seeds that evaluated the cell (index phase, columns task)."""
    matrices = [load_run_data(run).matrix for run in setting.runs]
    stacked = pd.concat(matrices, keys=range(len(matrices)), names=["seed"])
    return stacked.groupby(level="phase").mean()


def draw_matrix(settings: Sequence[Setting], title: str = "") -> Figure:
    matrices = [mean_matrix(s) for s in settings]
    plt = pyplot()
    n = len(settings)
    side = max(max(m.shape) for m in matrices)
    panel = min(max(3.0, 0.45 * side + 1.5), 12.0)
    fig, axes = plt.subplots(
        1, n, figsize=(panel * n + 1.0, panel), squeeze=False, layout="constrained"
    )
    image = None
    for ax, setting, matrix in zip(axes[0], settings, matrices, strict=True):
        values = matrix.to_numpy(dtype=float)
        image = ax.imshow(
            np.ma.masked_invalid(values), vmin=0, vmax=1, cmap="viridis", interpolation="nearest"
        )
        if max(values.shape) <= MAX_ANNOTATED:  # tick labels and numbers fit
            for (i, j), value in np.ndenumerate(values):
                if not np.isnan(value):
                    ink = "black" if value > 0.6 else "white"
                    ax.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=7, color=ink)
            ax.set_xticks(range(values.shape[1]), [str(t) for t in matrix.columns])
            ax.set_yticks(range(values.shape[0]), [str(p) for p in matrix.index])
        ax.set_xlabel("evaluated task j")
        ax.set_ylabel("after phase i")
        ax.set_title(wrap(setting.caption, int(panel * 9)), fontsize=9)
    fig.colorbar(image, ax=list(axes[0]), label="accuracy (full test set)", shrink=0.8)
    fig.suptitle(title or "accuracy matrix R[i, j] (seed mean)")
    return fig
