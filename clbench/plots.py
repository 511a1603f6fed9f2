"""Matplotlib figures of a run (imported lazily: matplotlib is slow to import)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd


def plot_task_curves(
    records: pd.DataFrame, phase_end_steps: list[int], path: Path, title: str = ""
) -> None:
    """Per-task accuracy vs update (continual evaluation), with task boundaries as dashed lines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    subset = records[records["kind"] == "subset"]
    fig, ax = plt.subplots(figsize=(9, 4.5))
    for task, rows in subset.groupby("task"):
        rows = rows.sort_values(["step", "phase"])
        ax.plot(rows["step"], rows["correct"] / rows["n"], label=f"task {task}", linewidth=1.2)
    for boundary in phase_end_steps[:-1]:
        ax.axvline(boundary, color="grey", linestyle="--", linewidth=0.8)
    ax.set_xlabel("update (optimizer step)")
    ax.set_ylabel("accuracy (evaluation subset)")
    ax.set_ylim(0, 1.02)
    ax.set_title(title)
    ax.legend(loc="lower left", fontsize=8, ncol=2)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
