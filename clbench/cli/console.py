"""Prints a run's headline metrics as a table on the console."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from clbench.metrics.headline import HEADLINE, format_value


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
    schedule = summary.get("eval_schedule", "every")  # summaries from before eval.schedule
    when = (
        "evaluations on the adaptive schedule"
        if schedule == "adaptive"
        else f"evaluations every {summary['eval_every']} update(s)"
    )
    table.add_row("updates", str(budget["updates"]), when)
    table.add_row(
        "train / eval time",
        f"{budget['train_time_s']:.1f}s / {budget['eval_time_s']:.1f}s",
        "wall clock",
    )
    console.print(table)
    per_task = [format_value(a) for a in metrics.get("per_task_final_acc", [])]
    console.print(f"per-task final accuracy: {per_task}")
    console.print(f"results: {path}")
