"""A run's progress as `logging` lines (logger ``clbench``), for output that is not a terminal.

Cluster jobs, sweeps and ``nohup`` write stderr to a file, where the progress bar
(`clbench.engine.progress`) shows nothing useful. `ProgressLog` is a run observer
(`clbench.engine.observer`) that logs the run's start (or where it resumes), each phase's start
and end, the continual-evaluation accuracy at a cadence, and an ETA from the pace of the updates
made so far in this process. `run_job` adds it whenever it shows no progress bar; the lines are
printed where logging is set up: by `progress_logging` around a run (``clbench run`` and sweep
workers, when stderr is not a terminal), `enable_progress_logging`, or the application's own
`logging` configuration.

Cadence: a line at the first evaluation after each tenth of a phase, at most one every
``min_interval_s`` and, while evaluations come, at least one every ``max_interval_s``. Phases are
numbered from 0, as in ``records.parquet``.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import time
from collections.abc import Callable, Iterator
from typing import TextIO

from clbench.engine.observer import LOG, Evaluation, RunEnd, RunObserver, RunStart

LINE_FORMAT = "%(asctime)s %(name)s %(levelname)s: %(message)s"


class ProgressLog(RunObserver):
    """Logs progress lines of one run at INFO on the ``clbench`` logger."""

    def __init__(
        self,
        fraction: float = 0.1,
        min_interval_s: float = 10.0,
        max_interval_s: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
        logger: logging.Logger = LOG,
    ) -> None:
        self.fraction, self.min_interval_s, self.max_interval_s = (
            fraction,
            min_interval_s,
            max_interval_s,
        )
        self.clock, self.log = clock, logger
        self.run: RunStart | None = None
        self._t0 = self._last_line = 0.0
        self._next_step = 0  # the step from which the next evaluation line is due
        self._full_mean: float | None = None

    # -- hooks --------------------------------------------------------------------------------
    def on_run_start(self, run: RunStart) -> None:
        self.run = run
        self._t0 = self._last_line = self.clock()
        self._next_step = run.start_step + self._spacing(self._phase_of(run.start_step))
        phases = len(run.updates_per_phase)
        if run.resumed:
            phase = self._phase_of(run.start_step)
            self._info(
                f"resuming after update {run.start_step}/{run.total_updates} "
                f"(phase {phase} of {phases})"
            )
        else:
            self._info(f"starting: {run.total_updates} updates in {phases} phases")

    def on_phase_start(self, phase: int, step: int) -> None:
        run = self._started()
        self._next_step = step + self._spacing(phase)
        self._full_mean = None
        self._info(f"phase {phase} (of {len(run.updates_per_phase)}) started at {self._at(step)}")

    def on_evaluation(self, evaluation: Evaluation) -> None:
        run = self._started()
        if evaluation.kind == "full":
            self._full_mean = evaluation.mean_seen()
            return
        if evaluation.kind != "subset" or evaluation.preupdate:
            return
        now = self.clock()
        since = now - self._last_line
        due = evaluation.step >= self._next_step and since >= self.min_interval_s
        if not (due or since >= self.max_interval_s):
            return
        self._next_step = evaluation.step + self._spacing(evaluation.phase)
        mean = evaluation.mean_seen()
        accuracy = "" if mean is None else f": mean accuracy {mean:.3f} over "
        accuracy += f"{evaluation.seen_upto + 1} seen task(s)" if accuracy else ""
        phases = len(run.updates_per_phase)
        self._info(
            f"phase {evaluation.phase} (of {phases}), {self._at(evaluation.step)}{accuracy}"
            f"{self._eta(evaluation.step)}"
        )

    def on_phase_end(self, phase: int, step: int) -> None:
        run = self._started()
        full = "" if self._full_mean is None else f", full-test mean accuracy {self._full_mean:.3f}"
        self._info(
            f"phase {phase} (of {len(run.updates_per_phase)}) finished at {self._at(step)}"
            f"{full}{self._eta(step)}"
        )

    def on_run_end(self, end: RunEnd) -> None:
        if self.run is None:
            return
        took = _duration(self.clock() - self._t0)
        if end.status == "finished":
            metrics = (end.summary or {}).get("metrics", {})
            final = metrics.get("final_acc")
            result = "" if not isinstance(final, float) else f": final accuracy {final:.3f}"
            self._info(f"finished at {self._at(end.step)} in {took}{result} ({self.run.path})")
        else:
            detail = f": {end.detail}" if end.detail else ""
            self._info(f"{end.status} at {self._at(end.step)} after {took}{detail}")

    # -- helpers ------------------------------------------------------------------------------
    def _started(self) -> RunStart:
        if self.run is None:
            raise RuntimeError("ProgressLog: on_run_start was not called")
        return self.run

    def _info(self, message: str) -> None:
        self.log.info("%s: %s", self._started().run_id, message)
        self._last_line = self.clock()

    def _spacing(self, phase: int) -> int:
        updates = self._started().updates_per_phase
        return max(1, round(self.fraction * updates[phase])) if phase < len(updates) else 1

    def _phase_of(self, step: int) -> int:
        end = 0
        for phase, updates in enumerate(self._started().updates_per_phase):
            end += updates
            if step < end:
                return phase
        return len(self._started().updates_per_phase)

    def _at(self, step: int) -> str:
        total = self._started().total_updates
        return f"update {step}/{total} ({100 * step / max(total, 1):.0f}%)"

    def _eta(self, step: int) -> str:
        run = self._started()
        done = step - run.start_step
        left = run.total_updates - step
        if done <= 0 or left <= 0:
            return ""
        return f"; ETA {_duration((self.clock() - self._t0) * left / done)}"


def _duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


_HANDLER_FLAG = "_clbench_progress"


class _StderrHandler(logging.StreamHandler):
    """Writes to `sys.stderr` as it is at each line (tests and tools replace it)."""

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr
        super().emit(record)


def enable_progress_logging(stream: TextIO | None = None) -> logging.Handler | None:
    """Print the ``clbench`` logger's INFO lines on ``stream`` (default: stderr, as it is at each
    line), once per process however often it is called; returns the handler it added (None when
    one was there already)."""
    logger = logging.getLogger(LOG.name)
    if any(getattr(h, _HANDLER_FLAG, False) for h in logger.handlers):
        return None
    handler = _StderrHandler() if stream is None else logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter(LINE_FORMAT))
    setattr(handler, _HANDLER_FLAG, True)
    logger.addHandler(handler)
    if logger.getEffectiveLevel() > logging.INFO:
        logger.setLevel(logging.INFO)
    return handler


@contextlib.contextmanager
def progress_logging() -> Iterator[None]:
    """`enable_progress_logging` for the duration of a ``with`` block (one command of a process
    that may run others, e.g. `clbench.cli.main` called from Python)."""
    logger = logging.getLogger(LOG.name)
    level = logger.level
    handler = enable_progress_logging()
    try:
        yield
    finally:
        if handler is not None:
            logger.removeHandler(handler)
            logger.setLevel(level)
