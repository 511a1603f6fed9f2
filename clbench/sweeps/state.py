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

from clbench.engine.lock import RunLock, RunLockedError
from clbench.engine.run_dir import remove_stale_temp_files, write_json
from clbench.errors import ClbenchError, ConfigError
from clbench.sweeps.executors import RunResult
from clbench.sweeps.suite import LoadedSuite, PlannedRun

STATE_FILE = "sweep.json"
LOG_FILE = "sweep.log"
LOCK_FILE = ".sweep.lock"


class SweepLockedError(ClbenchError):
    """Another sweep (alive: the OS drops a dead holder's lock) runs into the same results root."""

    def __init__(self, root: Path, holder: dict[str, Any] | None) -> None:
        who = (
            f"sweep {holder.get('suite')!r}, pid {holder.get('pid')} on host {holder.get('host')}"
            if holder
            else "another sweep"
        )
        super().__init__(
            f"{root}: results root is in use by {who}; wait for it to end or stop it "
            "(two sweeps on one root would run the same runs twice)"
        )


class SweepLock:
    """An exclusive lock on ``<results root>/.sweep.lock`` for the whole sweep
    (`clbench.engine.lock.RunLock` with its own file name: the kernel drops it however the holder
    ends, and the file says who holds it). Failing to create the root is reported here, before any
    run starts."""

    def __init__(self, root: Path, suite: str) -> None:
        self.root = root
        self._lock = RunLock(root, attempts=1, name=LOCK_FILE, stamp={"suite": suite})

    def __enter__(self) -> SweepLock:
        try:
            self._lock.acquire()
        except RunLockedError as exc:
            raise SweepLockedError(self.root, exc.holder) from None
        except OSError as exc:
            raise ConfigError(
                "suite output.root", str(self.root), f"a writable folder ({exc.strerror})"
            ) from None
        # held: no other sweep writes here, so a `.sweep.json.XXXXXXXX` is a killed write's
        remove_stale_temp_files(self.root)
        return self

    def __exit__(self, *exc: object) -> None:
        self._lock.release()


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

    def cancel_pending(self, reason: str | None = None) -> None:
        """Pending runs become ``cancelled``; ``reason`` (e.g. SIGTERM) is kept in the header."""
        if reason is not None:
            self.header["interrupted"] = {"by": reason, "time": time.time()}
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
