"""The sweep's own record in its results root: ``sweep.json`` (atomic) and ``sweep.log``.

``sweep.json`` lists every expanded run (entry, grid point, seed, phase, run id) with its status
in this sweep: ``pending``, ``skipped`` (finished before), ``finished``, ``failed``, ``diverged``,
``interrupted`` or ``cancelled``; it is rewritten after every run, so it is current even after a
crash. ``sweep.log`` collects the traceback of each failed run.
"""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from typing import Any

from clbench.results.run_dir import write_json
from clbench.sweep.executors import RunResult
from clbench.sweep.suite import LoadedSuite, PlannedRun

STATE_FILE = "sweep.json"
LOG_FILE = "sweep.log"


class SweepState:
    def __init__(self, loaded: LoadedSuite, options: dict[str, Any]) -> None:
        self.root = loaded.root
        self.header: dict[str, Any] = {
            "suite": loaded.suite.name,
            "suite_file": str(loaded.path),
            "options": options,
            "started": time.time(),
        }
        self.rows: dict[str, dict[str, Any]] = {}

    def add(self, runs: list[PlannedRun], status: str = "pending") -> None:
        for run in runs:
            self.rows.setdefault(
                run.run_id,
                {
                    "run_id": run.run_id,
                    "entry": run.entry,
                    "phase": run.phase,
                    "point": run.point,
                    "seed": run.seed,
                    "status": status,
                },
            )
        self.save()

    def record(self, result: RunResult) -> None:
        row = self.rows[result.run_id]
        row.update(status=result.status, seconds=round(result.seconds, 2))
        if result.error:
            row["error"] = result.error
        if result.traceback:
            self.log(f"{result.run_id} {result.status}\n{result.traceback}")
        self.save()

    def cancel_pending(self) -> None:
        for row in self.rows.values():
            if row["status"] == "pending":
                row["status"] = "cancelled"
        self.save()

    def counts(self) -> Counter[str]:
        return Counter(row["status"] for row in self.rows.values())

    def failed(self) -> list[dict[str, Any]]:
        return [row for row in self.rows.values() if row["status"] == "failed"]

    def save(self) -> None:
        write_json(
            self.root / STATE_FILE,
            {
                **self.header,
                "updated": time.time(),
                "counts": dict(self.counts()),
                "runs": list(self.rows.values()),
            },
        )

    def log(self, text: str) -> None:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        self.root.mkdir(parents=True, exist_ok=True)
        with (self.root / LOG_FILE).open("a") as log:
            log.write(f"[{stamp}] {text.rstrip()}\n")

    @property
    def path(self) -> Path:
        return self.root / STATE_FILE
