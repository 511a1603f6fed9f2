"""One `clbench run`: prepare, write the run folder atomically, train, compute metrics."""

from __future__ import annotations

import contextlib
import json
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from clbench.config import RunConfig
from clbench.engine.runner import Experiment, prepare
from clbench.metrics import compute_metrics
from clbench.results.manifest import build_manifest
from clbench.results.run_dir import RunDir, write_json, write_parquet, write_text


@dataclass
class RunOutcome:
    path: Path
    summary: dict[str, Any]
    skipped: bool = False


def read_summary(run: RunDir) -> dict[str, Any]:
    return json.loads(run.file("summary.json").read_text())


def run_job(config: RunConfig, progress: bool = True, force: bool = False) -> RunOutcome:
    """Run ``config`` into ``output.root/<run id>``; a finished run is returned, not redone."""
    prepared = prepare(config)  # raises before anything is written
    run = RunDir(Path(config.output.root) / prepared.run_id)
    if run.finished and not force:
        return RunOutcome(run.path, read_summary(run), skipped=True)

    run.path.mkdir(parents=True, exist_ok=True)
    run.set_status("running")
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
        bar = _progress_bar(experiment.total_updates(), prepared.run_id) if progress else None
        with bar or contextlib.nullcontext():
            experiment.run(on_update=(lambda _s: bar.advance()) if bar else None)
        records = experiment.log.frame()
        summary = _summary(experiment, records)
        write_parquet(run.file("records.parquet"), records)
        write_parquet(run.file("train_loss.parquet"), experiment.train_loss_frame())
        write_json(
            run.file("eval_subsets.json"), [s.tolist() for s in experiment.evaluator.subset_indices]
        )
        if config.output.plot:
            from clbench.plots import plot_task_curves

            plot_task_curves(
                records,
                experiment.timing.phase_end_steps,
                run.file("accuracy.png"),
                prepared.run_id,
            )
        write_json(run.file("summary.json"), summary)
    except BaseException as exc:
        status = "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed"
        run.set_status(status, error=repr(exc), traceback=traceback.format_exc())
        raise
    run.set_status("finished")
    return RunOutcome(run.path, summary)


def _summary(experiment: Experiment, records) -> dict[str, Any]:
    cfg = experiment.prepared.config
    timing = experiment.timing
    metrics = compute_metrics(records, cfg.metrics)
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
        "metrics": metrics,
        "strategy_report": experiment.strategy.report(),
        "budget": {
            "updates": timing.updates,
            "samples_seen": timing.samples_seen,
            "train_time_s": round(timing.train_s, 3),
            "eval_time_s": round(timing.eval_s, 3),
            "phase_end_steps": timing.phase_end_steps,
            "buffer_size": len(buffer) if buffer is not None else 0,
            "buffer_bytes": buffer.nbytes if buffer is not None else 0,
            "params_total": sum(p.numel() for p in params),
            "params_trainable": sum(p.numel() for p in params if p.requires_grad),
        },
    }


def _progress_bar(total: int, label: str):
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    class _Bar:
        def __init__(self) -> None:
            self.progress = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                transient=True,
            )
            self.task = self.progress.add_task(label[:40], total=total)

        def __enter__(self):
            self.progress.__enter__()
            return self

        def __exit__(self, *exc: object) -> None:
            self.progress.__exit__(*exc)

        def advance(self) -> None:
            self.progress.advance(self.task)

    return _Bar()
