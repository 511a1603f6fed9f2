"""Observers of a run: what the engine tells live trackers and progress logs while it trains.

Callbacks in the style of Lightning's, each named for when it fires, with no-op defaults so an
observer overrides only what it needs. `run_job` takes them from its caller (the CLI, sweep
workers, the Python API), as it takes the run figure: the engine never imports the layers above
it that implement them (`clbench.export.live` for TensorBoard, W&B, MLflow and CSV;
`clbench.engine.progress_log` for logging lines).

Order of the calls in one run: `on_run_start` (once the folder is checked and set up, before
the first update; a resumed run passes what its checkpoint already holds), then per phase
`on_phase_start`, `on_train_losses` and `on_evaluation` as the loop goes, `on_phase_end`, and
finally `on_run_end` with the status, whatever it is. Observing never changes a run: the
accuracies an evaluation hands over are read from the device right after the evaluation's own
synchronisation, and the training losses are handed over in batches at evaluations and phase
ends (never one host sync per update).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

    from clbench.config import RunConfig

LOG = logging.getLogger("clbench")


@dataclass(frozen=True)
class Evaluation:
    """One evaluation of the tasks ``tasks`` (a group of rows of ``records.parquet``)."""

    kind: str  # "subset" (continual), "full" (whole test sets, phase ends) or "init" (step 0)
    step: int  # updates made before it
    phase: int
    current_task: int
    tasks: tuple[int, ...]
    accuracies: tuple[float, ...]  # per task of ``tasks``
    seen_upto: int  # the highest task id seen so far: tasks 0..seen_upto are "seen"
    # a subset evaluation at the start of phase >= 1: the weights of the previous evaluation
    # again (`clbench.metrics.records`), which the metrics and trackers leave out
    preupdate: bool = False

    def mean_seen(self) -> float | None:
        """Mean accuracy over the evaluated tasks that are seen (None when there is none)."""
        seen = [a for t, a in zip(self.tasks, self.accuracies, strict=True) if t <= self.seen_upto]
        return sum(seen) / len(seen) if seen else None


@dataclass(frozen=True)
class RunStart:
    """What an observer gets before the first update of a run (or of its resumed part)."""

    run_id: str
    path: Path  # the run folder
    config: RunConfig
    num_tasks: int
    updates_per_phase: tuple[int, ...]
    start_step: int  # 0, or the update the run resumes after
    resumed: bool
    # what the run holds already (from its checkpoint; empty for a fresh run): its records,
    # the training loss of updates 1..start_step and the last update of each finished phase
    records: pd.DataFrame
    train_losses: tuple[float, ...]
    phase_end_steps: tuple[int, ...]

    @property
    def total_updates(self) -> int:
        return sum(self.updates_per_phase)


@dataclass(frozen=True)
class RunEnd:
    """How a run ended: ``status`` as in ``status.json`` (finished, diverged, interrupted,
    failed); a finished run's summary and the files it wrote for trackers to attach."""

    status: str
    step: int
    summary: dict[str, Any] | None = None
    files: tuple[Path, ...] = ()
    detail: str = ""


class RunObserver:
    """Base class of run observers: every hook does nothing until overridden."""

    def on_run_start(self, run: RunStart) -> None:
        """Before the first update (of this process); ``run.resumed`` after a checkpoint."""

    def on_phase_start(self, phase: int, step: int) -> None:
        """Phase ``phase`` starts after update ``step`` (not called for the phase a resumed run
        continues inside)."""

    def on_train_losses(self, first_step: int, losses: Sequence[float]) -> None:
        """The training losses of updates ``first_step``, ``first_step + 1``, ... (every update,
        delivered in batches just before an evaluation and at phase ends)."""

    def on_evaluation(self, evaluation: Evaluation) -> None:
        """After every evaluation, continual (``subset``), phase-end (``full``) or ``init``."""

    def on_phase_end(self, phase: int, step: int) -> None:
        """After the last update and the phase-end evaluation of ``phase``, before its
        checkpoint: everything logged up to ``step`` is in that checkpoint."""

    def on_run_end(self, end: RunEnd) -> None:
        """Once, however the run ended (after its result files were written)."""


class Observers:
    """The observers of one run, called in order.

    An error in `start` propagates: nothing has trained yet, and a tracker that cannot start
    should stop the run rather than let it go untracked. Later errors are logged as warnings
    and drop that observer from the hooks during the run (it still gets `on_run_end`, to close
    its files), so tracking never costs a run its results; `end` never raises.
    """

    def __init__(self, observers: Sequence[RunObserver] = ()) -> None:
        self.observers = list(observers)
        self._started: list[RunObserver] = []

    def __bool__(self) -> bool:
        return bool(self.observers)

    def start(self, run: RunStart) -> None:
        for observer in self.observers:
            self._started.append(observer)  # before its start: a half-started one is closed too
            observer.on_run_start(run)

    def notify(self, hook: str, *args: Any) -> None:
        for observer in list(self.observers):
            try:
                getattr(observer, hook)(*args)
            except Exception as exc:
                LOG.warning("%s failed in %s and is dropped: %r", _name(observer), hook, exc)
                self.observers.remove(observer)

    def end(self, end: RunEnd) -> None:
        started, self._started, self.observers = self._started, [], []
        for observer in started:
            try:
                observer.on_run_end(end)
            except Exception as exc:
                LOG.warning("%s failed in on_run_end: %r", _name(observer), exc)


def _name(observer: RunObserver) -> str:
    return type(observer).__name__
