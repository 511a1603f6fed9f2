"""``clbench export``: finished runs to TensorBoard event files, offline W&B runs, an MLflow file
store or CSV files.

Each target replays a run folder's `RunLog` into the sink live tracking uses
(`clbench.export.sink.replay`), so an export holds the tags and values a live tracker of the
same run holds. Only argparse and the standard library at import time: ``clbench --help`` stays
fast.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

TARGETS = ("tensorboard", "wandb", "mlflow", "csv")
DEFAULT_OUT = "exports"
# the options that name where a tracker groups its runs, each for one target
TARGET_OF_OPTION = {"project": "wandb", "experiment": "mlflow"}


def add_command(sub: argparse._SubParsersAction) -> None:
    export = sub.add_parser(
        "export",
        help="export runs to TensorBoard, Weights & Biases (offline), MLflow or CSV",
        description="Export the finished runs under RUN_OR_RESULTS: per-task accuracy vs update "
        "(acc/task_<t>, acc_full/task_<t>), training loss (train/loss), final metrics "
        "(metric/<name>) and the config. --to tensorboard writes <out>/<run id>/ "
        "(tensorboard --logdir <out>); --to wandb writes offline runs under <out>/wandb/ "
        "(no network or API key needed; upload later with `wandb sync`); --to mlflow writes "
        "one MLflow run per run to the file store <out> (mlflow ui --backend-store-uri <out>); "
        "--to csv writes <out>/<run id>/metrics.csv, the columns of the live csv tracker. "
        "Needs the tracker's extra: pip install 'clbench[tensorboard]', 'clbench[wandb]' or "
        "'clbench[mlflow]' ('clbench[loggers]': all; csv needs none). To follow runs live, set "
        "output.trackers instead (docs/tracking.md).",
    )
    export.add_argument("runs", nargs="+", metavar="RUN_OR_RESULTS", help="run or results folders")
    export.add_argument("--to", required=True, choices=TARGETS, help="tracker to export to")
    export.add_argument("--out", help=f"output folder (default: {DEFAULT_OUT}/<tracker>)")
    export.add_argument("--project", help="--to wandb: W&B project (default: clbench)")
    export.add_argument("--experiment", help="--to mlflow: MLflow experiment (default: clbench)")
    export.add_argument(
        "--force", action="store_true", help="re-export runs exported before (replacing them)"
    )
    export.set_defaults(handler=run_export)


@dataclass(frozen=True)
class Target:
    """How one tracker exports: ``earlier(out, run_id)`` finds an earlier export of a run,
    ``write(log, out, replace=...)`` exports one and returns where, ``hint`` says how to look
    at the exports (the end of the last line printed); ``keeps_metrics``: whether the final
    metrics are exported too (the CSV holds per-step values only, as live)."""

    earlier: Callable[[Path, str], Sequence[object]]
    write: Callable[..., Path]
    hint: str
    keeps_metrics: bool = True


def target(args: argparse.Namespace, out: Path) -> Target:
    """The target of ``--to``, its package checked before any run is read (exit 2, naming the
    pip extra, when it is missing)."""
    import functools

    if args.to == "tensorboard":
        from clbench.export.tensorboard import (
            export_tensorboard,
            exported_tensorboard,
            require_tensorboard,
        )

        require_tensorboard()
        return Target(
            exported_tensorboard, export_tensorboard, f"view with: tensorboard --logdir {out}"
        )
    if args.to == "wandb":
        from clbench.export.wandb import (
            DEFAULT_PROJECT,
            export_wandb,
            exported_wandb,
            require_wandb,
        )

        require_wandb()
        write = functools.partial(export_wandb, project=args.project or DEFAULT_PROJECT)
        return Target(exported_wandb, write, f"view with: wandb sync {out}/wandb/offline-run-*")
    if args.to == "mlflow":
        from clbench.export.mlflow import (
            DEFAULT_EXPERIMENT,
            export_mlflow,
            exported_mlflow,
            require_mlflow,
        )

        require_mlflow()
        experiment = args.experiment or DEFAULT_EXPERIMENT
        return Target(
            functools.partial(exported_mlflow, experiment=experiment),
            functools.partial(export_mlflow, experiment=experiment),
            # MLflow 3 opens a file store only with MLFLOW_ALLOW_FILE_STORE set
            f"view with: MLFLOW_ALLOW_FILE_STORE=true mlflow ui --backend-store-uri {out}",
        )
    from clbench.export.csv_log import export_csv, exported_csv

    hint = f"read with: pandas.read_csv('{out}/<run id>/metrics.csv')"
    return Target(exported_csv, export_csv, hint, keeps_metrics=False)


def run_export(args: argparse.Namespace) -> int:
    from clbench.errors import ClbenchError

    for option, only in TARGET_OF_OPTION.items():
        if getattr(args, option) is not None and args.to != only:
            instead = [f"--{o}" for o, t in TARGET_OF_OPTION.items() if t == args.to]
            note = f" (--to {args.to} takes {instead[0]})" if instead else ""
            raise ClbenchError(f"export: --{option} only applies to --to {only}{note}")
    out = Path(args.out or Path(DEFAULT_OUT) / args.to)
    chosen = target(args, out)

    from clbench.export.run_log import run_log
    from clbench.results.reader import load_runs

    loaded = load_runs(args.runs)
    skipped = loaded.describe_skipped()
    if skipped:
        print(skipped)
    if not loaded.finished:
        raise ClbenchError(f"export: no finished run under {', '.join(args.runs)}")
    exported = 0
    for run in loaded.finished:
        log = run_log(run)
        if chosen.earlier(out, log.run_id) and not args.force:
            print(f"{log.run_id}: exported before under {out} (--force re-exports)")
            continue
        path = chosen.write(log, out, replace=args.force)
        exported += 1
        metrics = f", {len(log.metrics)} metrics" if chosen.keeps_metrics else ""
        print(f"{path}: {len(log.steps)} steps{metrics}")
    if exported:
        print(f"exported {exported} run(s); {chosen.hint}")
    return 0
