"""The matplotlib backend and atomic figure saving shared by every figure kind."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from clbench.engine.run_dir import atomic_write

if TYPE_CHECKING:
    from matplotlib.figure import Figure

TASK_COLORMAP = "tab10"  # tasks get fixed colours so one task reads the same in every panel
SETTING_COLORMAP = "Dark2"


def pyplot() -> Any:
    """``matplotlib.pyplot`` on the non-interactive Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def color(index: int, colormap: str = TASK_COLORMAP) -> Any:
    import matplotlib

    cmap = matplotlib.colormaps[colormap]
    return cmap(index % cmap.N)


def save_figure(fig: Figure, path: Path, fmt: str | None = None) -> Path:
    """Write ``fig`` to ``path`` atomically (format from ``fmt`` or the suffix) and close it.

    The closed figure keeps its artists, so callers and tests can still inspect it.
    """
    fmt = fmt or path.suffix.lstrip(".").lower() or "png"
    atomic_write(path, lambda tmp: fig.savefig(tmp, format=fmt, dpi=120))
    pyplot().close(fig)
    return path


def draw_band(ax: Any, band: Any, color: Any, label: str, x_offset: int = 0) -> None:
    """A seed-mean line with a shaded ±1 std band (``band``: index step, mean/std columns)."""
    x = band.index.to_numpy() - x_offset
    mean, std = band["mean"].to_numpy(), band["std"].to_numpy()
    ax.plot(x, mean, color=color, label=label, linewidth=1.2)
    if (std > 0).any():
        ax.fill_between(x, mean - std, mean + std, color=color, alpha=0.2, linewidth=0)


def draw_boundaries(ax: Any, steps: Any, color: Any = "grey") -> None:
    """Dashed vertical lines at task boundaries (labelled ``_boundary``: kept out of legends)."""
    for step in steps:
        ax.axvline(step, color=color, linestyle="--", linewidth=0.8, label="_boundary")


def wrap(label: str, width: int = 28) -> str:
    """Break a long setting label over lines (at spaces) so it fits under a panel."""
    import textwrap

    return "\n".join(textwrap.wrap(label, width, break_long_words=False)) or label


def figure_legend(fig: Figure, axes: Any, ncol: int) -> float:
    """One legend under the panels with every labelled line once; returns the height it takes
    (a fraction of the figure, for ``tight_layout(rect=...)``)."""
    entries: dict[str, Any] = {}
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            entries.setdefault(label, handle)
    if not entries:
        return 0.0
    ncol = max(1, min(ncol, len(entries)))
    fig.legend(list(entries.values()), list(entries), loc="lower center", ncol=ncol, fontsize=8)
    rows = -(-len(entries) // ncol)
    return min(0.4, (0.25 * rows + 0.15) / fig.get_figheight())
