"""``clbench export``: finished runs to TensorBoard event files or offline W&B runs.

Only argparse and the standard library at import time: ``clbench --help`` stays fast.
"""

from __future__ import annotations

import argparse
from pathlib import Path

TARGETS = ("tensorboard", "wandb")
DEFAULT_OUT = "exports"


def add_command(sub: argparse._SubParsersAction) -> None:
    export = sub.add_parser(
        "export",
        help="export runs to TensorBoard or Weights & Biases (offline)",
        description="Export the finished runs under RUN_OR_RESULTS: per-task accuracy vs update "
        "(acc/task_<t>, acc_full/task_<t>), training loss (train/loss), final metrics "
        "(metric/<name>) and the config. --to tensorboard writes <out>/<run id>/ "
        "(tensorboard --logdir <out>); --to wandb writes offline runs under <out>/wandb/ "
        "(no network or API key needed; upload later with `wandb sync`). Needs the tracker's "
        "extra: pip install 'clbench[tensorboard]' or 'clbench[wandb]' ('clbench[loggers]': "
        "all). To follow runs live, set output.trackers instead (docs/tracking.md).",
    )
    export.add_argument("runs", nargs="+", metavar="RUN_OR_RESULTS", help="run or results folders")
    export.add_argument("--to", required=True, choices=TARGETS, help="tracker to export to")
    export.add_argument(
        "--out", help=f"output folder (default: {DEFAULT_OUT}/tensorboard or {DEFAULT_OUT}/wandb)"
    )
    export.add_argument("--project", help="W&B project (default: clbench)")
    export.add_argument(
        "--force", action="store_true", help="re-export runs exported before (replacing them)"
    )
    export.set_defaults(handler=run_export)


def run_export(args: argparse.Namespace) -> int:
    import functools

    from clbench.errors import ClbenchError

    if args.project is not None and args.to != "wandb":
        raise ClbenchError("export: --project only applies to --to wandb")
    out = Path(args.out or Path(DEFAULT_OUT) / args.to)
    if args.to == "tensorboard":
        from clbench.export.tensorboard import (
            export_tensorboard,
            exported_tensorboard,
            require_tensorboard,
        )

        require_tensorboard()
        earlier, write = exported_tensorboard, export_tensorboard
    else:
        from clbench.export.wandb import (
            DEFAULT_PROJECT,
            export_wandb,
            exported_wandb,
            require_wandb,
        )

        require_wandb()
        earlier = exported_wandb
        write = functools.partial(export_wandb, project=args.project or DEFAULT_PROJECT)

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
        if earlier(out, log.run_id) and not args.force:
            print(f"{log.run_id}: exported before under {out} (--force re-exports)")
            continue
        path = write(log, out, replace=args.force)
        exported += 1
        print(f"{path}: {len(log.steps)} steps, {len(log.metrics)} metrics")
    if exported:
        hint = (
            f"tensorboard --logdir {out}"
            if args.to == "tensorboard"
            else f"wandb sync {out}/wandb/offline-run-*"
        )
        print(f"exported {exported} run(s); view with: {hint}")
    return 0
