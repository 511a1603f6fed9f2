"""What every tracker writer offers, live and after the fact, and the replay of a finished run.

A sink is opened for one run (`clbench.export.scalars.RunMeta`) by its tracker's module
(`tensorboard`, `wandb`, `mlflow`, `csv_log`); `clbench export` replays a run folder's
`RunLog` into one, and live tracking (`clbench.export.live`) feeds one as the run goes.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from clbench.export.run_log import RunLog


class Sink(Protocol):
    def log_steps(self, steps: Mapping[int, Mapping[str, float]]) -> None:
        """Scalars by update step (`clbench.export.scalars` tags); steps ascending."""

    def log_summary(self, metrics: Mapping[str, float]) -> None:
        """The final ``metric/<name>`` values, once."""

    def log_file(self, path: Path) -> None:
        """A file of the run (the accuracy figure, the summary), where the tracker keeps files."""

    def flush(self) -> None:
        """Make what was logged so far visible to readers."""

    def close(self, status: str) -> None:
        """End the tracker's run with the run's status (finished, diverged, interrupted,
        failed)."""


def replay(log: RunLog, sink: Sink) -> None:
    """Write a finished run's history and metrics to ``sink`` and close it."""
    try:
        sink.log_steps(log.steps)
        sink.log_summary(log.metrics)
    except BaseException:
        sink.close("failed")
        raise
    sink.close("finished")
