"""What an export logs for one finished run folder, tracker-independent.

The tags and their steps are `clbench.export.scalars`' (the mapping live tracking uses too):
per update step the continual-evaluation accuracies, the phase-end full-test accuracies, the
training loss and the phase ends; once per run the summary's scalar metrics as
``metric/<name>`` and the hyperparameters (the identifying config, seed and tags).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from clbench.errors import CorruptedResultError
from clbench.export.scalars import (
    RunMeta,
    Scalar,
    Steps,
    history_steps,
    run_meta,
    summary_metrics,
)
from clbench.metrics.records import record_arrays
from clbench.results.reader import RunFolder

__all__ = ["RunLog", "Scalar", "run_log"]


@dataclass
class RunLog(RunMeta):
    steps: Steps = field(default_factory=dict)  # update step -> {tag: value}, ascending steps
    metrics: dict[str, float] = field(default_factory=dict)  # metric/<name> (undefined left out)

    @property
    def last_step(self) -> int:
        return max(self.steps, default=0)


def run_log(run: RunFolder) -> RunLog:
    records = run.records()
    try:
        ra = record_arrays(records)  # validates
    except ValueError as exc:
        raise CorruptedResultError(run.file("records.parquet"), str(exc)) from None
    summary = run.summary
    budget = summary.get("budget")
    ends = budget.get("phase_end_steps") if isinstance(budget, dict) else None
    if not isinstance(ends, list):  # summaries from before the budget listed them
        ends = ra.phase_end.tolist()
    loss = run.train_loss()
    steps = history_steps(records, zip(loss["step"], loss["loss"], strict=True), ends)
    meta = run_meta(
        str(summary.get("run_id") or run.path.name),
        run.config,
        summary.get("tags") or {},
        ra.n_tasks,
    )
    return RunLog(**vars(meta), steps=steps, metrics=summary_metrics(summary))
