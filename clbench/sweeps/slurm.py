"""SLURM execution through submitit: each batch of runs is one array job, each array task one
`execute_run` call, wrapped in a `SlurmRun` that requeues itself when SLURM preempts it or its
time limit nears.

submitit asks SLURM to send SIGUSR2 ``slurm_signal_delay_s`` (90 s) before the time limit, and on
preemption where the cluster allows it. `SlurmRun` turns that signal into clbench's own stop (the
one SIGTERM triggers: checkpoint at the next update, folder ``interrupted``); once the run has
checkpointed, submitit requeues the task with `SlurmRun.checkpoint`'s submission, the same task,
which resumes the run folder from its checkpoint. The sweep process waits for the array, records
every `RunResult` (``job.result()``) in ``sweep.json``, and runs GTEP's second phase as a second
array.

The submitit cluster is ``slurm``; ``CLBENCH_SLURM_CLUSTER=local`` (processes on this machine) or
``debug`` (in this process) use submitit's local executors instead. That is for testing, on
machines without SLURM: they ignore the partition, CPUs and parallelism (``local`` starts every
task at once), and give every task the same GPUs, 0..G-1.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import submitit
from submitit.helpers import Checkpointable, DelayedSubmission

from clbench.errors import ConfigError
from clbench.sweeps.executors import OnResult, RunResult, RunTask, _stopped_result, execute_run

CLUSTER_ENV = "CLBENCH_SLURM_CLUSTER"
CLUSTERS = ("slurm", "local", "debug")
DEFAULT_TIME_MIN = 60
# how often the sweep looks at its jobs: sacct is rate-limited by submitit anyway
POLL_S = {"slurm": 10.0, "local": 0.5, "debug": 0.0}


def slurm_cluster() -> str:
    """The submitit cluster: ``slurm`` unless `CLUSTER_ENV` (tests) says ``local`` or ``debug``."""
    cluster = os.environ.get(CLUSTER_ENV, "").strip() or "slurm"
    if cluster not in CLUSTERS:
        raise ConfigError(CLUSTER_ENV, cluster, CLUSTERS)
    return cluster


@dataclass
class SlurmOptions:
    """The array job's resources; None leaves a value to SLURM (or submitit's default)."""

    folder: Path  # submitit's pickles and logs, named by job id
    time_min: int = DEFAULT_TIME_MIN
    partition: str | None = None
    gpus_per_run: int = 0
    array_parallelism: int | None = None
    cpus_per_task: int | None = None
    additional: dict[str, str] = field(default_factory=dict)  # further #SBATCH options
    cluster: str = "slurm"
    job_name: str = "clbench"

    def parameters(self, name: str) -> dict[str, Any]:
        """`submitit.AutoExecutor.update_parameters` arguments: one task on one node per run."""
        params: dict[str, Any] = {
            "name": name,
            "timeout_min": self.time_min,
            "nodes": 1,
            "tasks_per_node": 1,
        }
        if self.gpus_per_run:
            params["gpus_per_node"] = self.gpus_per_run
        if self.cpus_per_task:
            params["cpus_per_task"] = self.cpus_per_task
        if self.partition:
            params["slurm_partition"] = self.partition
        if self.array_parallelism:
            params["slurm_array_parallelism"] = self.array_parallelism
        if self.additional:
            params["slurm_additional_parameters"] = dict(self.additional)
        return params


class SlurmRun(Checkpointable):
    """One array task: `execute_run`, requeued from its checkpoint when preempted or timed out.

    ``checkpoint`` (called by submitit's signal handler, see `__call__`) resubmits the same task:
    the run's state is in its folder, not in this object.
    """

    def __call__(self, task: RunTask) -> RunResult:
        requeue = _PreemptionStopsRun()
        with requeue:
            result = execute_run(task)
        if requeue.signum is not None and result.status == "interrupted":
            requeue.hand_to_submitit()  # checkpoint() + requeue; exits this process
        return result

    def checkpoint(self, task: RunTask) -> DelayedSubmission:
        return DelayedSubmission(self, task)


class _PreemptionStopsRun:
    """While a run executes, submitit's preemption signal (USR2) asks the run to stop the way
    SIGTERM does (checkpoint at the next update) instead of letting submitit requeue at once.

    submitit's own handler requeues and exits from inside the signal handler: the run would die
    mid-update with only its last periodic checkpoint, and its folder marked failed.
    """

    def __init__(self) -> None:
        self.signum: int | None = None
        self._submitit_handler: Any = None
        self._sig = submitit.JobEnvironment._usr_sig()
        self._active = threading.current_thread() is threading.main_thread()

    def __enter__(self) -> _PreemptionStopsRun:
        if self._active:
            self._submitit_handler = signal.signal(self._sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._active:
            signal.signal(self._sig, self._submitit_handler)

    def _handle(self, signum: int, frame: Any) -> None:
        self.signum = signum
        # While `run_job` runs, SIGTERM's handler is its StopSignals: called with this signal, it
        # records the stop (the folder then says SIGUSR2), and the run checkpoints at its next
        # update and returns as interrupted. Outside a run the SIGTERM handler is someone
        # else's (submitit's, or the sweep's own in debug mode): leave it alone.
        job = sys.modules.get("clbench.engine.job")
        stop = signal.getsignal(signal.SIGTERM)
        if job is not None and isinstance(getattr(stop, "__self__", None), job.StopSignals):
            stop(signum, frame)  # type: ignore[operator]

    def hand_to_submitit(self) -> None:
        """submitit's handler: dumps `SlurmRun.checkpoint`'s submission, requeues, exits."""
        if self.signum is not None and callable(self._submitit_handler):
            self._submitit_handler(self.signum, None)


class SlurmExecutor:
    """Runs as SLURM array jobs through submitit; the same interface as `LocalExecutor`.

    The sweep process stays until the array is done: it polls the jobs, records each result and
    stops them (scancel: SIGTERM, so they checkpoint) when it is interrupted itself.
    """

    def __init__(self, options: SlurmOptions) -> None:
        self.options = options
        self._batches = 0

    def describe(self) -> str:
        o = self.options
        if o.cluster != "slurm":
            where = f"submitit's {o.cluster} executor (testing: SLURM resources not applied)"
        else:
            where = f"SLURM array job(s), partition {o.partition or '(default)'}"
        parts = [where, f"{o.time_min} min per run"]
        if o.gpus_per_run:
            parts.append(f"{o.gpus_per_run} GPU(s) per run")
        if o.array_parallelism:
            parts.append(f"at most {o.array_parallelism} at once")
        return ", ".join(parts) + f"; logs in {o.folder}"

    def __enter__(self) -> SlurmExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def executor(self, name: str) -> submitit.AutoExecutor:
        """A submitit executor with this sweep's resources; its files are named by job id
        (``<array id>_<index>_log.out``, ``..._submitted.pkl``), all in one folder."""
        executor = submitit.AutoExecutor(folder=self.options.folder, cluster=self.options.cluster)
        executor.update_parameters(**self.options.parameters(name))
        return executor

    def submit(self, tasks: Sequence[RunTask]) -> list[Any]:
        """Submit ``tasks`` as one array job; its jobs, in the order of ``tasks``."""
        self._batches += 1  # GTEP's two phases: two arrays, told apart in squeue
        name = self.options.job_name + (f"-{self._batches}" if self._batches > 1 else "")
        return list(self.executor(name).map_array(SlurmRun(), list(tasks)))

    def run(self, tasks: Sequence[RunTask], on_result: OnResult) -> None:
        jobs = self.submit(tasks)
        pending = list(zip(jobs, tasks, strict=True))
        poll = POLL_S.get(self.options.cluster, POLL_S["slurm"])
        try:
            while pending:
                # a debug job runs (in this process) when its result is asked for
                ready = [
                    pair for pair in pending if self.options.cluster == "debug" or pair[0].done()
                ]
                for pair in ready:
                    pending.remove(pair)
                    on_result(_result_of_job(*pair))
                if pending and not ready:
                    time.sleep(poll)
        except KeyboardInterrupt:  # Ctrl-C, or SIGTERM turned into one by the sweep
            # cancel the array: SLURM sends SIGTERM first, so running runs checkpoint
            for job, _task in pending:
                with contextlib.suppress(Exception):  # a failing scancel must not hide this
                    job.cancel(check=False)
            for _job, task in pending:
                result = _stopped_result(task)
                if result is not None:
                    on_result(result)
            raise


def _result_of_job(job: Any, task: RunTask) -> RunResult:
    """The job's `RunResult`; a job that ended without one (killed, out of memory, timed out too
    often) is ``failed``, or ``interrupted`` when its run checkpointed first."""
    try:
        result = job.result()
    except Exception as exc:
        stopped = _stopped_result(task)
        if stopped is not None and stopped.status == "interrupted":
            return stopped
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc)
        return RunResult(
            task.run_id,
            "failed",
            error=f"slurm job {job.job_id} ended without a result: {type(exc).__name__}: {first}",
            traceback=str(exc),
        )
    if not isinstance(result, RunResult):
        return RunResult(task.run_id, "failed", error=f"slurm job {job.job_id} returned {result!r}")
    return result


def check_slurm_available(cluster: str) -> None:
    """On the real cluster, ``sbatch`` must be here: fail before anything is written."""
    if cluster == "slurm" and shutil.which("sbatch") is None:
        raise ConfigError(
            "--executor",
            "slurm",
            "local or ray here: no sbatch command on this machine (start the sweep on a SLURM "
            "login node, or in a job, where sbatch is on PATH)",
        )
