"""One `clbench run`: prepare, lock and check the run folder, write it atomically (with digests),
train, compute metrics."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import threading
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from clbench.config import RunConfig, config_hash, run_name
from clbench.engine.checkpoint import Checkpointer, Position, load_checkpoint
from clbench.engine.lock import LOCK_FILE, RunLock
from clbench.engine.manifest import build_manifest
from clbench.engine.memory import peak_memory, reset_peak_memory
from clbench.engine.observer import Observers, RunEnd, RunObserver, RunStart
from clbench.engine.progress import ProgressBar
from clbench.engine.progress_log import ProgressLog
from clbench.engine.run_dir import (
    CHECKPOINT_FILE,
    FINISHED,
    RunDir,
    check_existing_folder,
    finished_summary,
    remove_stale_temp_files,
)
from clbench.engine.runner import Experiment, Prepared, RunDiverged, RunInterrupted, prepare
from clbench.errors import ConfigError, CorruptedResultError, SetupConfigError
from clbench.metrics import chance_levels, compute_metrics

# draws a run's ``accuracy.png``: (records, phase end steps, path, title), e.g.
# `clbench.plotting.curves.plot_task_curves`; passed in by the caller so the engine never imports
# the plotting layer above it
RunFigure = Callable[[pd.DataFrame, Sequence[int], Path, str], object]


@dataclass
class RunOutcome:
    path: Path
    summary: dict[str, Any]
    skipped: bool = False
    status: str = FINISHED
    resumed_from: Position | None = None
    detail: str = ""


def run_job(
    config: RunConfig,
    progress: bool = True,
    force: bool = False,
    resume: bool = True,
    figure: RunFigure | None = None,
    observers: Sequence[RunObserver] = (),
) -> RunOutcome:
    """Run ``config`` into ``output.root/<run id>``; a finished run is returned, not redone.

    The folder is locked for the whole call (`RunLock`: a second process on it gets
    `RunLockedError`). Before anything is written, the folder is checked: a folder of another
    config is refused, a finished one (``status.json`` finished, or a ``summary.json`` present)
    is returned after its files match their digests, and a checkpoint must match its digest, its
    config and the plan. An unfinished folder with a checkpoint is continued from it
    (``resume``); ``force`` starts over. SIGTERM/SIGINT checkpoint and raise `RunInterrupted`; a
    non-finite loss ends the run as ``diverged`` (records kept, no summary). With
    ``output.plot``, ``figure`` draws the run's ``accuracy.png`` (`clbench run` and sweeps pass
    `clbench.plotting.curves.plot_task_curves`); without a ``figure`` no image is drawn.
    ``observers`` (`clbench.engine.observer`) follow the run live, e.g. the trackers of
    ``output.trackers`` (`clbench.export.live.build_trackers`); without a progress bar, a
    `ProgressLog` follows it too (logging lines). A skipped finished run calls none of them.
    """
    run = RunDir(Path(config.output.root) / run_name(config))
    if not force:  # a finished run is answered before its data loads (checked again, locked)
        summary = finished_summary(run, config_hash(config))
        if summary is not None:
            return RunOutcome(run.path, summary, skipped=True)
    prepared = prepare(config)  # raises before anything is written
    # the folders the lock is about to create (the run's, maybe the results root's)
    made = [d for d in (run.path, *run.path.parents) if not d.exists()]
    try:
        # signals from here on: a SIGTERM while the folder is checked or the run set up stops
        # the run, with a checkpoint, at its first update instead of killing it without one
        with RunLock(run.path), StopSignals() as signals:
            remove_stale_temp_files(run.path)  # a killed earlier writer's half-written files
            try:
                watchers = Observers([*observers, *([] if progress else [ProgressLog()])])
                return _run_locked(
                    run, prepared, progress, force, resume, signals, figure, watchers
                )
            finally:
                remove_stale_temp_files(run.path)
    except SetupConfigError:
        # bad input found only once the model exists (e.g. an FPF module pattern that matches
        # none of its modules): nothing was written but the lock, so leave no folder behind
        _remove_if_only_lock(made)
        raise


def _remove_if_only_lock(folders: list[Path]) -> None:
    """Remove ``folders`` (deepest first) while each holds nothing but a lock file."""
    for folder in folders:
        if not folder.is_dir() or {p.name for p in folder.iterdir()} - {LOCK_FILE}:
            return
        (folder / LOCK_FILE).unlink(missing_ok=True)
        folder.rmdir()


def _run_locked(
    run: RunDir,
    prepared: Prepared,
    progress: bool,
    force: bool,
    resume: bool,
    signals: StopSignals,
    figure: RunFigure | None,
    observers: Observers,
) -> RunOutcome:
    config = prepared.config
    checkpoint_path = run.file(CHECKPOINT_FILE)
    restored: tuple[Position, dict[str, Any]] | None = None
    if not force:
        summary = check_existing_folder(run, config_hash(config))
        if summary is not None:
            return RunOutcome(run.path, summary, skipped=True)
        if resume and checkpoint_path.is_file():
            restored = load_checkpoint(checkpoint_path)  # digest and structure checked
            if restored[1]["config_hash"] != config_hash(config):
                raise ConfigError(
                    "output.name",
                    prepared.run_id,
                    f"a folder of this config (its checkpoint belongs to config hash "
                    f"{restored[1]['config_hash']}, this config is {config_hash(config)}); "
                    "use --force to start over",
                )
    try:
        experiment = Experiment(prepared)
    except SetupConfigError:
        raise  # bad input (nothing written yet): the caller removes a folder it made
    except BaseException as exc:  # a run failure (e.g. unloadable weights), not bad input
        if force:  # never leave old results next to this config
            run.clear_results()
            checkpoint_path.unlink(missing_ok=True)
        _write_inputs(run, prepared)
        _record_failure(run, exc)
        raise
    if restored:
        try:  # the position must fit the plan and the states this model and strategy
            experiment.restore(*restored)
        except ConfigError:
            raise
        except ValueError as exc:
            raise CorruptedResultError(checkpoint_path, str(exc)) from None

    # ------------------------------------------------ all checks passed: now write
    if force:
        run.clear_results()
        checkpoint_path.unlink(missing_ok=True)
    _write_inputs(run, prepared)
    # last, so a folder that says "running" has its config (and `--resume` can read it)
    resumed_from = restored[0] if restored else None
    run.set_status(
        "running",
        pid=os.getpid(),
        host=socket.gethostname(),
        resumed_from=resumed_from.describe() if resumed_from else None,
    )
    try:
        # the trackers start first: their imports must not count in the run's peak memory
        experiment.observers = observers
        observers.start(_run_start(run, experiment, resumed_from is not None))
        memory_start = reset_peak_memory(experiment.device)
        checkpointer = None
        if experiment.strategy.resumable:
            ck = config.checkpoint
            checkpointer = Checkpointer(checkpoint_path, ck.every, ck.at_phase_end)
        total = experiment.total_updates()
        bar = ProgressBar(total, prepared.run_id, experiment.position.step) if progress else None
        with bar or contextlib.nullcontext():
            experiment.run(
                on_update=(lambda _s: bar.advance()) if bar else None,
                checkpointer=checkpointer,
                should_stop=signals.requested,
            )
        records = experiment.log.frame()
        summary = _summary(experiment, records, memory_start)
        _write_records(run, experiment, records)
        files: list[Path] = []
        if config.output.plot and figure is not None:
            figure(
                records,
                experiment.timing.phase_end_steps,
                run.file("accuracy.png"),
                prepared.run_id,
            )
            run.record_file("accuracy.png")
            files.append(run.file("accuracy.png"))
        run.write_json("summary.json", summary)
        # before the status says finished: a finished folder's tracker files are complete
        step = experiment.loop.step
        observers.end(RunEnd("finished", step, summary, (*files, run.file("summary.json"))))
    except RunDiverged as exc:
        _write_records(run, experiment, experiment.log.frame())
        run.set_status("diverged", step=exc.step, loss=str(exc.loss), error=str(exc))
        observers.end(RunEnd("diverged", exc.step, detail=str(exc)))
        return RunOutcome(run.path, {}, status="diverged", detail=str(exc))
    except RunInterrupted as exc:
        how = (
            f"resume with: clbench run --resume {run.path}"
            if exc.checkpointed
            else "this strategy cannot be checkpointed; run it again to start over"
        )
        run.set_status("interrupted", error=str(exc), resume=how)
        observers.end(RunEnd("interrupted", exc.position.step, detail=str(exc)))
        exc.run_dir = run.path
        raise
    except BaseException as exc:
        _record_failure(run, exc)
        status = "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed"
        observers.end(RunEnd(status, experiment.loop.step, detail=repr(exc)))
        raise
    run.set_status("finished", resumed_from=resumed_from.describe() if resumed_from else None)
    if not config.checkpoint.keep:
        checkpoint_path.unlink(missing_ok=True)
    return RunOutcome(run.path, summary, resumed_from=resumed_from)


def _run_start(run: RunDir, experiment: Experiment, resumed: bool) -> RunStart:
    """What the observers get before the first update: the plan, and what a resumed run's
    checkpoint holds (its records, losses and finished phases), for trackers to rebuild from."""
    losses = experiment.train_loss_frame()["loss"].tolist() if resumed else []
    return RunStart(
        run_id=experiment.prepared.run_id,
        path=run.path,
        config=experiment.prepared.config,
        num_tasks=experiment.prepared.plan.num_tasks,
        updates_per_phase=experiment.loop.plan.updates_per_phase,
        start_step=experiment.position.step,
        resumed=resumed,
        records=experiment.log.frame(),
        train_losses=tuple(losses),
        phase_end_steps=tuple(experiment.timing.phase_end_steps),
    )


def _write_inputs(run: RunDir, prepared: Prepared) -> None:
    """What the run was given: its config (what ``--resume`` reads), manifest and scenario."""
    config, plan = prepared.config, prepared.plan
    run.write_text("config.yaml", yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False))
    run.write_json(
        "manifest.json",
        build_manifest(
            prepared.device, config.seed, prepared.seeds, plan.content_hash, plan.dataset_checksum
        ),
    )
    run.write_text("scenario.txt", plan.describe() + "\n")


def _record_failure(run: RunDir, exc: BaseException) -> None:
    status = "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed"
    run.set_status(status, error=repr(exc), traceback=traceback.format_exc())


def _write_records(run: RunDir, experiment: Experiment, records: pd.DataFrame) -> None:
    run.write_parquet("records.parquet", records)
    run.write_parquet("train_loss.parquet", experiment.train_loss_frame())
    run.write_json("eval_subsets.json", [s.tolist() for s in experiment.evaluator.subset_indices])


class StopSignals:
    """While active (main thread only), SIGTERM and SIGINT ask the run to stop at the next
    update instead of killing it; a second SIGINT interrupts at once."""

    SIGNALS = (signal.SIGTERM, signal.SIGINT)

    def __init__(self) -> None:
        self.reason: str | None = None
        self._previous: dict[int, Any] = {}

    def requested(self) -> str | None:
        return self.reason

    def _handle(self, signum: int, _frame: Any) -> None:
        if self.reason is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.reason = signal.Signals(signum).name

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():
            for sig in self.SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()


def _summary(
    experiment: Experiment, records: pd.DataFrame, memory_start: float | None
) -> dict[str, Any]:
    cfg = experiment.prepared.config
    timing = experiment.timing
    # the plan knows each task's chance level (gap metrics exclude pairs already at chance)
    # and each phase's task mix (the decline gaps of boundary-free streams)
    plan = experiment.prepared.plan
    metrics = compute_metrics(records, cfg.metrics, chance_levels(plan), plan.mix_matrix())
    params, memories = experiment.budget_parts()
    return {
        "run_id": experiment.prepared.run_id,
        "strategy": cfg.strategy["name"],
        "plugins": list(cfg.plugins),
        "scenario": cfg.scenario["name"],
        "data": cfg.data["name"],
        "model": cfg.model["name"],
        "seed": cfg.seed,
        "scenario_hash": experiment.prepared.plan.content_hash,
        "eval_every": cfg.eval.every,
        "eval_schedule": cfg.eval.schedule,
        "tags": dict(cfg.output.tags),
        "metrics": metrics,
        "strategy_report": experiment.report(),
        "budget": {
            "updates": timing.updates,
            "samples_seen": timing.samples_seen,
            "train_time_s": round(timing.train_s, 3),
            "eval_time_s": round(timing.eval_s, 3),
            "checkpoint_time_s": round(timing.checkpoint_s, 3),
            **peak_memory(experiment.device, memory_start),
            "data_storage": experiment.storage,
            "phase_end_steps": timing.phase_end_steps,
            "buffer_size": sum(len(m) for m in memories),
            "buffer_bytes": sum(m.nbytes for m in memories),
            "params_total": sum(p.numel() for p in params),
            "params_trainable": sum(p.numel() for p in params if p.requires_grad),
        },
    }
