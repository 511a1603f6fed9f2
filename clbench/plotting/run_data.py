"""What a figure reads from one run folder: validated records, the task boundaries, metrics."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from clbench.errors import CorruptedResultError
from clbench.metrics.records import RecordArrays, accuracy_curve, accuracy_matrix, record_arrays
from clbench.results.reader import RunFolder

RECORDS = "records.parquet"
SUMMARY = "summary.json"


@dataclass(frozen=True)
class RunData:
    arrays: RecordArrays
    boundaries: list[int]  # update steps at which a new phase starts (all but the last end)

    @property
    def curve(self) -> pd.DataFrame:
        """Subset accuracy, index update step, one column per task (pre-update rows left out)."""
        return accuracy_curve(self.arrays).droplevel("phase")

    @property
    def matrix(self) -> pd.DataFrame:
        """Full-test-set accuracy R[phase, task] at each phase end."""
        return accuracy_matrix(self.arrays)

    def phase_task(self, phase: int) -> int:
        return int(self.arrays.phase_task[phase])


def has_records(run: RunFolder) -> bool:
    return run.file(RECORDS).is_file()


def has_summary(run: RunFolder) -> bool:
    return run.file(SUMMARY).is_file()


def load_run_data(run: RunFolder) -> RunData:
    """Records of ``run`` validated against the record schema; boundaries from the summary's
    budget (``phase_end_steps``) or, for a partial run without a summary, from the records."""
    records = run.records()
    try:
        arrays = record_arrays(records)
    except ValueError as exc:
        raise CorruptedResultError(run.file(RECORDS), str(exc)) from None
    if has_summary(run):
        ends = run.summary.get("budget", {}).get("phase_end_steps")
        if not isinstance(ends, list) or not all(isinstance(s, int) for s in ends):
            raise CorruptedResultError(run.file(SUMMARY), "no budget.phase_end_steps list")
    else:
        ends = arrays.phase_end.tolist()
    return RunData(arrays, [int(s) for s in ends[:-1]])
