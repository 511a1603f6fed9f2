"""Where runs execute: a local process pool or Ray tasks (SLURM: `clbench.sweeps.slurm`), all
calling the same `execute_run`.

`execute_run` is the whole worker: one `clbench.engine.job.run_job` call (which skips a finished
folder, resumes an interrupted one and writes ``status.json`` with the traceback of a failure).
It never raises: every outcome comes back as a `RunResult`, so one failing run cannot stop the
others. Configs travel as JSON-able dicts and are resolved again in the worker.
"""

from __future__ import annotations

import contextlib
import ctypes
import itertools
import os
import signal
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any


@dataclass
class RunResult:
    run_id: str
    status: str  # finished, skipped, failed, diverged, interrupted
    seconds: float = 0.0
    error: str | None = None
    traceback: str | None = None


@dataclass(frozen=True)
class RunTask:
    """What a worker needs: the run id, the resolved config as a dict, and the directory that
    relative paths in it (output root, data root, backbone file) are relative to."""

    run_id: str
    config: dict[str, Any]
    cwd: str


OnResult = Callable[[RunResult], None]


def _limit_threads(threads: int | None) -> None:
    """Before torch is imported in a worker: one core each when several runs share a machine."""
    if threads is not None:
        for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ[var] = str(threads)


_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
_PARENT_PID: int | None = None  # the sweep, in a pool worker


def die_with_parent(parent_pid: int, sig: int = signal.SIGTERM) -> bool:
    """Ask Linux to send ``sig`` to this process when its parent dies (a SIGKILLed sweep
    leaves no orphan computing runs); True when armed. If the parent is already gone, exit."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        armed = libc.prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False
    if os.getppid() != parent_pid:  # the parent died before prctl: nobody would signal us
        os._exit(1)
    return armed


def _take_gpu_slot(slots: Any) -> None:
    """Pin this worker to the GPU(s) of one free slot (a queue holding one ``CUDA_VISIBLE_DEVICES``
    value per worker), before torch is imported: CUDA reads the variable once, when it starts."""
    import queue

    try:
        os.environ["CUDA_VISIBLE_DEVICES"] = slots.get(timeout=60)
    except queue.Empty:  # more workers than slots: a bug, and sharing a GPU silently is worse
        raise RuntimeError("no free GPU slot for this sweep worker") from None


def _start_worker(
    threads: int | None, parent_pid: int | None = None, gpu_slots: Any = None
) -> None:
    """Pool worker start: die with the sweep, limit threads, take a GPU slot (with
    ``--gpus-per-run``), then import the engine once (not counted in run time).

    Ctrl-C reaches every process of the terminal's group. An idle worker ignores it (the sweep
    cancels what is queued); a running `run_job` installs its own handler, checkpoints and
    stops as ``interrupted``. SIGTERM (forwarded by the sweep, or sent by Linux when the sweep
    dies) does the same to a running run and ends an idle worker.
    """
    global _PARENT_PID
    if parent_pid is not None:
        _PARENT_PID = parent_pid
        die_with_parent(parent_pid)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _limit_threads(threads)
    if gpu_slots is not None:
        _take_gpu_slot(gpu_slots)
    import clbench.engine.job  # noqa: F401


def execute_run(task: RunTask) -> RunResult:
    """Run one config into its folder; failures become results (with the traceback)."""
    start = time.perf_counter()
    if Path(task.cwd).is_dir() and Path.cwd() != Path(task.cwd):
        os.chdir(task.cwd)  # Ray workers start elsewhere
    _limit_threads(task.config.get("threads"))
    try:
        from clbench.config import resolve_config
        from clbench.engine.job import run_job
        from clbench.engine.progress_log import progress_logging
        from clbench.export.live import build_trackers
        from clbench.plotting.curves import plot_task_curves

        config = resolve_config(task.config)
        trackers = build_trackers(config)
        # stderr not a terminal (e.g. a SLURM job's log): the run's progress as logging lines
        lines = contextlib.nullcontext() if sys.stderr.isatty() else progress_logging()
        with lines:
            outcome = run_job(config, progress=False, figure=plot_task_curves, observers=trackers)
    except KeyboardInterrupt:
        return RunResult(task.run_id, "interrupted", time.perf_counter() - start)
    except BaseException as exc:
        if _PARENT_PID is not None and os.getppid() != _PARENT_PID:
            os._exit(1)  # the sweep died (we were told to stop): nobody waits for a result
        recorded = _folder_status(task)
        return RunResult(
            task.run_id,
            recorded if recorded in ("diverged", "interrupted") else "failed",
            time.perf_counter() - start,
            error=f"{type(exc).__name__}: {exc}".splitlines()[0],
            traceback=traceback.format_exc(),
        )
    status = "skipped" if outcome.skipped else (_folder_status(task) or "finished")
    return RunResult(task.run_id, status, time.perf_counter() - start)


def _folder_status(task: RunTask) -> str | None:
    """The status `run_job` recorded in the run folder (None when no folder was written)."""
    from clbench.engine.run_dir import RunDir

    info = RunDir(Path(task.config["output"]["root"]) / task.run_id).status()
    return info.get("status") if info else None


class LocalExecutor:
    """A process pool of ``jobs`` workers (spawned: no forked torch state, no shared threads).

    With ``gpu_slots`` (`clbench.sweeps.devices.gpu_slots`), each worker starts pinned to one
    slot's device(s) and the pool has at most one worker per slot. Use it as a context manager:
    the pool starts with the first batch and serves every batch (both GTEP phases) until the
    ``with`` block ends.
    """

    def __init__(
        self,
        jobs: int,
        threads: int | None,
        gpu_slots: Sequence[str] = (),
        gpus_per_run: float = 0.0,
    ) -> None:
        self.requested_jobs, self.threads = jobs, threads
        self.gpus_per_run = gpus_per_run
        # a worker per slot at most: the runs beyond would have no device of their own
        self.gpu_slots = list(gpu_slots)[:jobs]
        self.jobs = len(self.gpu_slots) if gpu_slots else jobs
        self._pool: Any = None

    def describe(self) -> str:
        text = (
            f"a local pool of {self.jobs} process(es), {self.threads or 'default'} thread(s) each"
        )
        if self.gpu_slots:
            text += f", {self.gpus_per_run:g} GPU(s) per run (CUDA_VISIBLE_DEVICES "
            text += " | ".join(self.gpu_slots) + ")"
            if self.jobs < self.requested_jobs:
                text += f"; --jobs {self.requested_jobs} capped at {self.jobs}, one per GPU slot"
        return text

    def __enter__(self) -> LocalExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def _start_pool(self) -> Any:
        """The pool (started on first use); each worker takes one GPU slot from a queue."""
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        if self._pool is None:
            context = multiprocessing.get_context("spawn")
            slots = None
            if self.gpu_slots:
                # the pool never starts more than `jobs` workers (and none replaces a dead one:
                # the pool is broken then), so one slot per worker is enough
                slots = context.Queue()
                for slot in self.gpu_slots:
                    slots.put(slot)
            self._pool = ProcessPoolExecutor(
                max_workers=self.jobs,
                mp_context=context,
                initializer=_start_worker,
                initargs=(self.threads, os.getpid(), slots),
            )
        return self._pool

    def run(self, tasks: Sequence[RunTask], on_result: OnResult) -> None:
        from concurrent.futures import FIRST_COMPLETED, wait

        self._start_pool()
        # at most `jobs` runs in flight: nothing sits in the pool's queue when Ctrl-C comes
        queue = iter(tasks)
        pending: dict[Future[RunResult], RunTask] = {}
        try:
            for task in itertools.islice(queue, self.jobs):
                pending[self._pool.submit(execute_run, task)] = task
            while pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    on_result(_result_of(future, pending.pop(future)))
                    for task in itertools.islice(queue, 1):
                        pending[self._pool.submit(execute_run, task)] = task
        except KeyboardInterrupt:  # Ctrl-C, or SIGTERM turned into one by the sweep
            # stop submitting and drop queued runs; tell running ones to stop (SIGTERM: they
            # checkpoint and mark their folders interrupted, resumable); record what they report
            self._stop_workers()
            for future, task in pending.items():
                result = _result_of(future, task) if future.done() else _stopped_result(task)
                if result is not None:
                    on_result(result)
            raise

    def _stop_workers(self) -> None:
        """SIGTERM every worker (a Ctrl-C may not have reached them: `kill`, no terminal), then
        wait until each has checkpointed and exited."""
        pool, self._pool = self._pool, None
        if pool is None:
            return
        processes = list((getattr(pool, "_processes", None) or {}).values())
        for process in processes:
            if process.is_alive():
                process.terminate()
        pool.shutdown(wait=True, cancel_futures=True)
        for process in processes:
            process.join()


def _stopped_result(task: RunTask) -> RunResult | None:
    """What a run stopped by the sweep left in its folder (None: it never started)."""
    try:
        status = _folder_status(task)
    except Exception:
        status = None
    if status in ("interrupted", "running"):  # running: killed before it could say so
        return RunResult(task.run_id, "interrupted")
    if status in ("finished", "failed", "diverged"):
        return RunResult(task.run_id, status)
    return None


def _result_of(future: Future[RunResult], task: RunTask) -> RunResult:
    if future.cancelled():
        return _stopped_result(task) or RunResult(task.run_id, "cancelled")
    try:
        return future.result()
    except BaseException as exc:  # the worker process itself died (killed, out of memory)
        try:
            if _folder_status(task) == "interrupted":  # it checkpointed, then its pool broke
                return RunResult(task.run_id, "interrupted")
        except Exception:
            pass
        return RunResult(task.run_id, "failed", error=f"worker died: {exc!r}")


class RayExecutor:
    """The same `execute_run` as Ray tasks, on ``address`` or a local cluster of ``jobs`` CPUs.

    With ``gpus_per_run`` > 0 each task asks Ray for that many GPUs (``num_gpus``; a fraction
    lets several tasks share one): Ray then sets the task's ``CUDA_VISIBLE_DEVICES`` to its
    share, where a task asking for none sees no GPU at all. A context manager like
    `LocalExecutor`: Ray starts with the first batch (unless the caller already initialised it)
    and a cluster it started is shut down when the block ends.
    """

    def __init__(
        self,
        jobs: int,
        threads: int | None,
        address: str | None = None,
        gpus_per_run: float = 0.0,
    ) -> None:
        self.jobs, self.threads, self.address = jobs, threads, address
        self.gpus_per_run = gpus_per_run
        self._started = False

    def describe(self) -> str:
        text = f"Ray ({self.address or f'a local cluster of {self.jobs} CPU(s)'})"
        if self.gpus_per_run:
            text += f", {self.gpus_per_run:g} GPU(s) per run"
        return text

    def remote_options(self) -> dict[str, Any]:
        """What each task asks Ray for: one CPU, no retry (a failure is recorded, not rerun), and
        ``num_gpus`` when runs get GPUs."""
        options: dict[str, Any] = {"num_cpus": 1, "max_retries": 0}
        if self.gpus_per_run:
            options["num_gpus"] = self.gpus_per_run
        return options

    def __enter__(self) -> RayExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._started:
            import ray

            ray.shutdown()
            self._started = False

    def _ray(self) -> ModuleType:
        try:
            import ray
        except ImportError:
            from clbench.errors import ConfigError

            raise ConfigError(
                "--executor", "ray", 'local (or install Ray: pip install -e ".[ray]")'
            ) from None
        if not ray.is_initialized():
            env = {"env_vars": {"OMP_NUM_THREADS": str(self.threads or 1)}}
            quiet = {"runtime_env": env, "log_to_driver": False, "configure_logging": False}
            if self.address:
                ray.init(address=self.address, **quiet)
            else:
                ray.init(num_cpus=self.jobs, include_dashboard=False, **quiet)
            self._started = True
            self._warn_if_too_few_gpus(ray)
        return ray

    def _warn_if_too_few_gpus(self, ray: ModuleType) -> None:
        """A task asking for more GPUs than the cluster has waits forever: say so (an
        autoscaling cluster may still add GPU nodes, so this is no error)."""
        if not self.gpus_per_run:
            return
        total = float(ray.cluster_resources().get("GPU", 0))
        if total < self.gpus_per_run:
            print(
                f"warning: the Ray cluster has {total:g} GPU(s) now; runs asking for "
                f"{self.gpus_per_run:g} each wait until it has enough",
                file=sys.stderr,
            )

    def run(self, tasks: Sequence[RunTask], on_result: OnResult) -> None:
        ray = self._ray()
        remote = ray.remote(**self.remote_options())(execute_run)
        pending = {remote.remote(task): task for task in tasks}
        try:
            while pending:
                done, _ = ray.wait(list(pending), num_returns=1)
                task = pending.pop(done[0])
                try:
                    result = ray.get(done[0])
                except Exception as exc:  # the task's worker died
                    result = RunResult(task.run_id, "failed", error=f"ray task failed: {exc!r}")
                on_result(result)
        except KeyboardInterrupt:
            for ref in pending:
                ray.cancel(ref)
            raise
