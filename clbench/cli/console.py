"""Prints a run's headline metrics as a table on the console.

At a terminal the table is drawn with rich (already imported there for the progress bar); in a
log or a pipe it is plain aligned text, which neither wraps long meanings at 80 columns nor
pays rich's import (about 0.2 s of every finished-run answer).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from clbench.metrics.headline import HEADLINE, format_value

HEADERS = ("metric", "value", "meaning")


def summary_rows(summary: dict[str, Any]) -> list[tuple[str, str, str]]:
    """The table's rows: each headline metric the run has, then its updates and times."""
    metrics = summary["metrics"]
    rows = [
        (key, format_value(metrics[key]), meaning) for key, meaning in HEADLINE if key in metrics
    ]
    budget = summary["budget"]
    schedule = summary.get("eval_schedule", "every")  # summaries from before eval.schedule
    when = (
        "evaluations on the adaptive schedule"
        if schedule == "adaptive"
        else f"evaluations every {summary['eval_every']} update(s)"
    )
    rows.append(("updates", str(budget["updates"]), when))
    rows.append(
        (
            "train / eval time",
            f"{budget['train_time_s']:.1f}s / {budget['eval_time_s']:.1f}s",
            "wall clock",
        )
    )
    return rows


def print_summary(summary: dict[str, Any], path: Path, skipped: bool = False) -> None:
    title = f"{summary['run_id']}" + (" (already finished; not re-run)" if skipped else "")
    rows = summary_rows(summary)
    per_task = [format_value(a) for a in summary["metrics"].get("per_task_final_acc", [])]
    tail = [f"per-task final accuracy: {per_task}", f"results: {path}"]
    if not sys.stdout.isatty():
        print("\n".join([title, *plain_table(rows), *tail]))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    table.add_column(HEADERS[0])
    table.add_column(HEADERS[1], justify="right")
    table.add_column(HEADERS[2], style="dim")
    for row in rows:
        table.add_row(*row)
    console = Console()
    console.print(table)
    for line in tail:
        console.print(line, markup=False)


def plain_table(rows: list[tuple[str, str, str]]) -> list[str]:
    """``rows`` under `HEADERS` as aligned lines: names left, values right, meanings last."""
    name_w = max(len(r[0]) for r in [HEADERS, *rows])
    value_w = max(len(r[1]) for r in [HEADERS, *rows])
    return [f"{n:<{name_w}}  {v:>{value_w}}  {m}".rstrip() for n, v, m in [HEADERS, *rows]]
