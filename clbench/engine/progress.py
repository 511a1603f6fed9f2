"""The progress bar of long work (a run's updates, a sweep's runs), on stderr."""

from __future__ import annotations

from typing import Any


class ProgressBar:
    """A transient rich bar: label, bar, done/total, elapsed and remaining time."""

    def __init__(self, total: int, label: str, done: int = 0) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=Console(stderr=True),
            transient=True,
        )
        self.task = self.progress.add_task(label[:40], total=total, completed=done)

    def __enter__(self) -> ProgressBar:
        self.progress.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.progress.__exit__(*exc)

    def advance(self) -> None:
        self.progress.advance(self.task)

    def print(self, line: str) -> None:
        """A line above the bar (plain text, no rich markup)."""
        self.progress.console.print(line, markup=False, highlight=False)
