"""One `clbench run`: prepare, write the run folder atomically, train, compute metrics."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import threading
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from clbench.config import RunConfig, config_hash
from clbench.engine.checkpoint import CHECKPOINT_FILE, Checkpointer, Position, load_checkpoint
from clbench.engine.memory import peak_memory, reset_peak_memory
from clbench.engine.runner import Experiment, RunDiverged, RunInterrupted, prepare
from clbench.errors import ConfigError
from clbench.metrics import chance_levels, compute_metrics
from clbench.progress import ProgressBar
from clbench.results.manifest import build_manifest
from clbench.results.run_dir import FINISHED, RunDir, write_json, write_parquet, write_text


@dataclass
class RunOutcome:
    path: Path
    summary: dict[str, Any]
    skipped: bool = False
    status: str = FINISHED
    resumed_from: Position | None = None
    detail: str = ""


def read_summary(run: RunDir) -> dict[str, Any]:
    return json.loads(run.file("summary.json").read_text())


def run_job(
    config: RunConfig, progress: bool = True, force: bool = False, resume: bool = True
) -> RunOutcome:
    """Run ``config`` into ``output.root/<run id>``; a finished run is returned, not redone.

    An unfinished folder with a checkpoint is continued from it (``resume``); ``force`` starts
    over. SIGTERM/SIGINT checkpoint and raise `RunInterrupted`; a non-finite loss ends the run
    as ``diverged`` (records kept, no summary).
    """
    prepared = prepare(config)  # raises before anything is written
    run = RunDir(Path(config.output.root) / prepared.run_id)
    if run.finished and not force:
        return RunOutcome(run.path, read_summary(run), skipped=True)
    checkpoint_path = run.file(CHECKPOINT_FILE)
    restored: tuple[Position, dict[str, Any]] | None = None
    if resume and not force and checkpoint_path.is_file():
        restored = load_checkpoint(checkpoint_path)  # a bad file is reported before any write
        if restored[1]["config_hash"] != config_hash(config):
            raise ConfigError(
                "output.name",
                prepared.run_id,
                f"a folder of this config (its checkpoint belongs to config hash "
                f"{restored[1]['config_hash']}, this config is {config_hash(config)}); "
                "use --force to start over",
            )

    run.path.mkdir(parents=True, exist_ok=True)
    if force:
        checkpoint_path.unlink(missing_ok=True)
        run.file("summary.json").unlink(missing_ok=True)
    resumed_from = restored[0] if restored else None
    run.set_status(
        "running",
        pid=os.getpid(),
        host=socket.gethostname(),
        resumed_from=resumed_from.describe() if resumed_from else None,
    )
    write_text(
        run.file("config.yaml"), yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)
    )
    plan = prepared.plan
    write_json(
        run.file("manifest.json"),
        build_manifest(
            prepared.device, config.seed, prepared.seeds, plan.content_hash, plan.dataset_checksum
        ),
    )
    write_text(run.file("scenario.txt"), plan.describe() + "\n")
    try:
        experiment = Experiment(prepared)
        memory_start = reset_peak_memory(experiment.device)
        if restored:
            experiment.restore(*restored)
        checkpointer = None
        if experiment.strategy.resumable:
            ck = config.checkpoint
            checkpointer = Checkpointer(checkpoint_path, ck.every, ck.at_phase_end)
        total = experiment.total_updates()
        bar = ProgressBar(total, prepared.run_id, experiment.position.step) if progress else None
        with bar or contextlib.nullcontext(), StopSignals() as signals:
            experiment.run(
                on_update=(lambda _s: bar.advance()) if bar else None,
                checkpointer=checkpointer,
                should_stop=signals.requested,
            )
        records = experiment.log.frame()
        summary = _summary(experiment, records, memory_start)
        _write_records(run, experiment, records)
        if config.output.plot:
            from clbench.plotting.curves import plot_task_curves

            plot_task_curves(
                records,
                experiment.timing.phase_end_steps,
                run.file("accuracy.png"),
                prepared.run_id,
            )
        write_json(run.file("summary.json"), summary)
    except RunDiverged as exc:
        _write_records(run, experiment, experiment.log.frame())
        run.set_status("diverged", step=exc.step, loss=str(exc.loss), error=str(exc))
        return RunOutcome(run.path, {}, status="diverged", detail=str(exc))
    except RunInterrupted as exc:
        how = (
            f"resume with: clbench run --resume {run.path}"
            if exc.checkpointed
            else "this strategy cannot be checkpointed; run it again to start over"
        )
        run.set_status("interrupted", error=str(exc), resume=how)
        exc.run_dir = run.path
        raise
    except BaseException as exc:
        status = "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed"
        run.set_status(status, error=repr(exc), traceback=traceback.format_exc())
        raise
    run.set_status("finished", resumed_from=resumed_from.describe() if resumed_from else None)
    if not config.checkpoint.keep:
        checkpoint_path.unlink(missing_ok=True)
    return RunOutcome(run.path, summary, resumed_from=resumed_from)


def _write_records(run: RunDir, experiment: Experiment, records: pd.DataFrame) -> None:
    write_parquet(run.file("records.parquet"), records)
    write_parquet(run.file("train_loss.parquet"), experiment.train_loss_frame())
    write_json(
        run.file("eval_subsets.json"), [s.tolist() for s in experiment.evaluator.subset_indices]
    )


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
    # the plan knows each task's chance level; gap metrics exclude pairs already at chance
    metrics = compute_metrics(records, cfg.metrics, chance_levels(experiment.prepared.plan))
    params = list(experiment.model.parameters())
    buffer = getattr(experiment.strategy, "buffer", None)
    return {
        "run_id": experiment.prepared.run_id,
        "strategy": cfg.strategy["name"],
        "scenario": cfg.scenario["name"],
        "data": cfg.data["name"],
        "model": cfg.model["name"],
        "seed": cfg.seed,
        "scenario_hash": experiment.prepared.plan.content_hash,
        "eval_every": cfg.eval.every,
        "tags": dict(cfg.output.tags),
        "metrics": metrics,
        "strategy_report": experiment.strategy.report(),
        "budget": {
            "updates": timing.updates,
            "samples_seen": timing.samples_seen,
            "train_time_s": round(timing.train_s, 3),
            "eval_time_s": round(timing.eval_s, 3),
            "checkpoint_time_s": round(timing.checkpoint_s, 3),
            **peak_memory(experiment.device, memory_start),
            "phase_end_steps": timing.phase_end_steps,
            "buffer_size": len(buffer) if buffer is not None else 0,
            "buffer_bytes": buffer.nbytes if buffer is not None else 0,
            "params_total": sum(p.numel() for p in params),
            "params_trainable": sum(p.numel() for p in params if p.requires_grad),
        },
    }
