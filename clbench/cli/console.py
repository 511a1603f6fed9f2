"""Prints a run's headline metrics as a table on the console."""

from __future__ import annotations

from pathlib import Path
from typing import Any

HEADLINE = (
    ("final_acc", "final accuracy (full test sets, task mean)"),
    ("aia", "average incremental accuracy"),
    ("forgetting", "average forgetting"),
    ("bwt", "backward transfer"),
    ("fwt", "forward transfer (vs initial model)"),
    ("min_acc", "min-ACC (worst accuracy of old tasks)"),
    ("wc_acc", "WC-ACC (worst-case accuracy)"),
    ("wf_10", "windowed forgetting WF^10"),
    ("wf_100", "windowed forgetting WF^100"),
    ("wp_10", "windowed plasticity WP^10"),
    ("wp_100", "windowed plasticity WP^100"),
    ("lca", "learning curve area LCA"),
    ("gap_depth_mean", "stability-gap depth (mean over boundaries)"),
    ("recovery_time_mean", "gap recovery time, updates (mean of recovered)"),
)


def format_value(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


def print_summary(summary: dict[str, Any], path: Path, skipped: bool = False) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    metrics = summary["metrics"]
    table = Table(
        title=f"{summary['run_id']}" + (" (already finished; not re-run)" if skipped else "")
    )
    table.add_column("metric")
    table.add_column("value", justify="right")
    table.add_column("meaning", style="dim")
    for key, meaning in HEADLINE:
        if key in metrics:
            table.add_row(key, format_value(metrics[key]), meaning)
    budget = summary["budget"]
    table.add_row(
        "updates", str(budget["updates"]), f"evaluations every {summary['eval_every']} update(s)"
    )
    table.add_row(
        "train / eval time",
        f"{budget['train_time_s']:.1f}s / {budget['eval_time_s']:.1f}s",
        "wall clock",
    )
    console.print(table)
    per_task = [format_value(a) for a in metrics.get("per_task_final_acc", [])]
    console.print(f"per-task final accuracy: {per_task}")
    console.print(f"results: {path}")
