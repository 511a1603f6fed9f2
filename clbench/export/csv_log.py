"""CSV: ``<run>/trackers/metrics.csv``, one row per logging call, flushed at once so that
``tail -f`` follows a run.

Columns: ``step``, then every tag of `clbench.export.scalars.scalar_tags` (``phase/end``,
``train/loss``, ``acc/mean_seen``, ``acc/task_<t>``..., ``acc_full/mean_seen``,
``acc_full/task_<t>``...), empty where a row has no value. A row per update with its loss and,
where it was evaluated, its accuracies; at each phase end a second row of that step with the
full-test accuracies and ``phase/end``. ``pandas.read_csv(path).groupby("step").first()``
gives one row per step. Values are written exactly (Python's shortest round-trip repr).

``clbench export --to csv`` (`export_csv`) writes ``<out>/<run id>/metrics.csv`` with the same
columns and values, one row per step (the whole history arrives in one call, as when a resumed
run replays its checkpoint).
"""

from __future__ import annotations

import csv
import os
from collections.abc import Mapping
from pathlib import Path

from clbench.export.run_log import RunLog
from clbench.export.scalars import RunMeta, scalar_tags
from clbench.export.sink import replay

FILE_NAME = "metrics.csv"


class CsvSink:
    """Writes ``path`` anew (a resumed run replays its history into it first)."""

    def __init__(self, path: Path, meta: RunMeta) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.columns = scalar_tags(meta.num_tasks)
        self.file = path.open("w", newline="", encoding="utf-8")
        self.writer = csv.writer(self.file)
        self.writer.writerow(["step", *self.columns])
        self.file.flush()

    def log_steps(self, steps: Mapping[int, Mapping[str, float]]) -> None:
        for step, values in steps.items():
            cells = (values.get(c) for c in self.columns)
            self.writer.writerow([step, *("" if v is None else repr(float(v)) for v in cells)])
        self.file.flush()

    def log_summary(self, metrics: Mapping[str, float]) -> None:
        pass  # the run's summary.json holds them

    def log_file(self, path: Path) -> None:
        pass  # already in the run folder

    def flush(self) -> None:
        self.file.flush()

    def close(self, status: str) -> None:
        self.file.close()


def exported_csv(out: Path, run_id: str) -> list[Path]:
    """The CSV of an earlier export of ``run_id`` under ``out`` (none or one)."""
    path = out / run_id / FILE_NAME
    return [path] if path.is_file() else []


def export_csv(log: RunLog, out: Path, replace: bool = False) -> Path:
    """Write ``log`` to ``out/<run id>/metrics.csv`` and return that path. The file appears
    whole or not at all (written beside it, then renamed), so an export that fails is not
    taken for an earlier one; ``replace`` overwrites an earlier export, else one is an error."""
    path = out / log.run_id / FILE_NAME
    if not replace and path.exists():
        raise FileExistsError(path)
    partial = path.with_name(f".{FILE_NAME}.partial")
    try:
        replay(log, CsvSink(partial, log))
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    return path
