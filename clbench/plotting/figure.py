"""What every figure kind shares: a backend-free `Figure`, atomic saving, bands, size limits.

Figures are built with matplotlib's object-oriented API (`matplotlib.figure.Figure`), never
through ``pyplot``: nothing global changes, so a notebook keeps its backend and its inline
figures, and figures are never registered with pyplot (nothing to close, nothing leaks).
`Figure.savefig` renders through Agg (or the PDF/SVG backends) on its own.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from clbench.engine.run_dir import atomic_write

if TYPE_CHECKING:
    from matplotlib.figure import Figure

TASK_COLORMAP = "tab10"  # tasks get fixed colours so one task reads the same in every panel
SETTING_COLORMAP = "Dark2"
SETTING_COLORS = 8  # Dark2's colours: more settings than this cannot be told apart by colour
SAVE_DPI = 120
# The widest figure any kind draws: 16 in x 120 dpi = 1920 px, one screen or page width.
# Kinds with many settings facet into rows or keep the best settings instead of widening.
MAX_WIDTH_IN = 16.0
BAND_NOTE = "line: seed mean; band: ±1 std over seeds (ddof=1), not clipped to [0, 1]"


def new_figure(width: float, height: float, **kwargs: Any) -> Figure:
    """A `Figure` of ``width`` x ``height`` inches (width capped at `MAX_WIDTH_IN`), made
    without pyplot; ``kwargs`` go to `Figure` (e.g. ``layout="constrained"``)."""
    from matplotlib.figure import Figure

    return Figure(figsize=(min(width, MAX_WIDTH_IN), height), **kwargs)


def color(index: int, colormap: str = TASK_COLORMAP) -> Any:
    import matplotlib

    cmap = matplotlib.colormaps[colormap]
    return cmap(index % cmap.N)


def save_figure(fig: Figure, path: Path, fmt: str | None = None) -> Path:
    """Write ``fig`` to ``path`` atomically (format from ``fmt`` or the suffix).

    The figure stays as it was, so callers and tests can still inspect it.
    """
    fmt = fmt or path.suffix.lstrip(".").lower() or "png"
    atomic_write(path, lambda tmp: fig.savefig(tmp, format=fmt, dpi=SAVE_DPI))
    return path


def figure_bytes(fig: Figure, fmt: str, dpi: int = SAVE_DPI) -> bytes:
    """``fig`` rendered in memory (``svg`` or ``png``), as the results page embeds it."""
    buffer = io.BytesIO()
    metadata = {"Date": None} if fmt == "svg" else {}  # no timestamp: the same figure, same bytes
    fig.savefig(buffer, format=fmt, dpi=dpi, metadata=metadata)
    return buffer.getvalue()


def draw_band(ax: Any, band: Any, color: Any, label: str, x_offset: int = 0) -> None:
    """A seed-mean line with a shaded ±1 std band (``band``: index step, mean/std columns)."""
    x = band.index.to_numpy() - x_offset
    mean, std = band["mean"].to_numpy(), band["std"].to_numpy()
    ax.plot(x, mean, color=color, label=label, linewidth=1.2)
    if (std > 0).any():
        ax.fill_between(x, mean - std, mean + std, color=color, alpha=0.2, linewidth=0)


def accuracy_limits(axes: Sequence[Any], bands: Iterable[Any]) -> None:
    """y-limits of ``axes`` that hold [0, 1] and every band whole.

    A ±1 std band is a statistical spread, not a set of possible accuracies: with few seeds it
    passes 1 (or 0) exactly where seeds disagree most. Clipping the axis at [0, 1] would hide how
    wide it is there, so the axis grows to show the band, and a dotted line marks 0 and 1.
    """
    low, high = 0.0, 1.0
    for band in bands:
        if len(band):
            low = min(low, float((band["mean"] - band["std"]).min()))
            high = max(high, float((band["mean"] + band["std"]).max()))
    margin = 0.02 * (high - low)
    for ax in axes:
        ax.set_ylim(low - margin, high + margin)
        if low < 0 or high > 1:
            for edge in (0, 1):
                ax.axhline(edge, color="black", linewidth=0.5, linestyle=":", label="_limit")


def draw_boundaries(ax: Any, steps: Any, color: Any = "grey") -> None:
    """Dashed vertical lines at task boundaries (labelled ``_boundary``: kept out of legends)."""
    for step in steps:
        ax.axvline(step, color=color, linestyle="--", linewidth=0.8, label="_boundary")


def wrap(label: str, width: int = 28) -> str:
    """Break a long setting label over lines (at spaces) so it fits under a panel."""
    import textwrap

    return "\n".join(textwrap.wrap(label, width, break_long_words=False)) or label


def figure_legend(fig: Figure, axes: Any, ncol: int) -> None:
    """One legend under the panels with every labelled line once (the figure's constrained
    layout makes room for it)."""
    entries: dict[str, Any] = {}
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            entries.setdefault(label, handle)
    if not entries:
        return
    ncol = max(1, min(ncol, len(entries)))
    fig.legend(
        list(entries.values()), list(entries), loc="outside lower center", ncol=ncol, fontsize=8
    )
