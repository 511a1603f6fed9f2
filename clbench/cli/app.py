"""The `clbench` command line: ``run``, ``list``, ``plot`` and ``pretrain`` (heavy imports happen
inside commands)."""

from __future__ import annotations

import argparse
import contextlib
import gc
import signal
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from clbench.arguments import add_config_arguments, config_and_overrides
from clbench.export.command import add_command as add_export_command
from clbench.plotting.command import add_command as add_plot_command
from clbench.reporting.command import add_command as add_report_command
from clbench.sweeps.command import add_command as add_sweep_command

if TYPE_CHECKING:
    from clbench.config import RunConfig

EXIT_BAD_INPUT = 2


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    # overrides may follow options (`clbench run cfg.yaml --quiet a.b=1`): collect the leftovers
    args, extra = parser.parse_known_args(argv)
    if extra:
        # commands taking `overrides` (run, plot) collect them wherever they appear
        if not hasattr(args, "overrides") or any(e.startswith("-") for e in extra):
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
        args.overrides.extend(extra)
    if not getattr(args, "command", None):
        parser.print_help()
        return 0
    from clbench.errors import ClbenchError

    try:
        return args.handler(args)
    except ClbenchError as exc:
        print(f"clbench: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt as exc:
        # a second Ctrl-C (the first asks a run to checkpoint and stop), or one outside a run:
        # the run folder already says `interrupted`; no traceback
        signum = int(getattr(exc, "signum", signal.SIGINT))
        print(f"clbench: interrupted ({signal.Signals(signum).name})", file=sys.stderr)
        return 128 + signum
    except BrokenPipeError:  # `clbench list | head`: the reader left; not an error
        sys.stderr.close()
        return 0


def console_main() -> int:
    """The ``clbench`` console script (and ``python -m clbench``): `main`, then a quicker exit.

    The process ends right after. Freezing moves every live object out of the garbage
    collector's reach, so the interpreter's final collections skip the million objects that
    importing torch made: about 1 s on 2 cores (benchmarks/startup.py). Exit handlers and module
    clean-up still run; every result file is closed before `main` returns. Not in `main`, which
    tests and scripts call in a process that goes on."""
    code = main()
    gc.freeze()
    return code


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="clbench",
        description="Continual-learning benchmark harness with per-update continual evaluation.",
    )
    sub = parser.add_subparsers(dest="command")

    run = sub.add_parser(
        "run",
        help="run one experiment (no arguments: the embedded default)",
        description="Run one experiment. Settings come from CONFIG (YAML; default: the embedded "
        "Split-digits ER experiment) and `key.sub=value` overrides, e.g. strategy.name=naive "
        "train.epochs=5 eval.every=10.",
    )
    add_config_arguments(run)
    run.add_argument("--out", help="results root (same as output.root=...)")
    run.add_argument(
        "--force", action="store_true", help="re-run even if the run folder is finished"
    )
    run.add_argument(
        "--resume",
        metavar="RUN_DIR",
        help="continue an interrupted run folder from its last checkpoint (its own config)",
    )
    run.add_argument(
        "--quiet",
        action="store_true",
        help="no progress bar (nor, off a terminal, progress log lines)",
    )
    run.add_argument(
        "--print-config", action="store_true", help="print the resolved config and exit"
    )
    run.add_argument(
        "--dry-run",
        action="store_true",
        help="validate, list missing data and weight files, and describe the plan (tasks, "
        "updates, evaluations, memory) without training or writing anything; exit 2 if a file "
        "is missing",
    )
    run.set_defaults(handler=_cmd_run)

    lst = sub.add_parser(
        "list", help="list registered datasets, scenarios, models, strategies and plugins"
    )
    lst.add_argument(
        "kind", nargs="?", choices=["data", "scenarios", "models", "strategies", "plugins"]
    )
    lst.add_argument(
        "name", nargs="?", help="one component of KIND, e.g. `clbench list strategies er`"
    )
    lst.set_defaults(handler=_cmd_list)

    add_plot_command(sub)

    pre = sub.add_parser(
        "pretrain",
        help="supervised pretraining of a timm backbone; saves a local weights file",
        description="Train CONFIG (model timm, e.g. one class_incremental experience over the "
        "source classes) with `key.sub=value` overrides and save the backbone to --out, "
        "loadable as model.pretrained=<out> (e.g. for slca).",
    )
    add_config_arguments(pre)
    pre.add_argument("--out", required=True, help="backbone file (.pth, .pt, .bin or .safetensors)")
    pre.set_defaults(handler=_cmd_pretrain)
    add_sweep_command(sub)
    add_report_command(sub)
    add_export_command(sub)

    info = sub.add_parser(
        "info",
        help="show a run folder's status, config, versions, checkpoint and metrics",
        description="Show what RUN_DIR holds: status (with the error, divergence step or how "
        "to resume), components, seed and hash, package versions, checkpoint position, and "
        "metrics and budget once finished. A damaged file is named (exit 2).",
    )
    info.add_argument("run_dir", metavar="RUN_DIR", help="a run folder")
    info.set_defaults(handler=_cmd_info)
    return parser


def _cmd_run(args: argparse.Namespace) -> int:
    from clbench.config import build_config

    config_path, overrides = config_and_overrides(args)
    if args.resume:
        if config_path is not None or overrides or args.out:
            from clbench.errors import ConfigError

            raise ConfigError(
                "--resume", args.resume, "a run folder alone (it uses its own config)"
            )
        config = _resume_config(args.resume)
    else:
        if args.out:
            overrides.append(f"output.root={args.out}")
        config = build_config(config_path, overrides)
    if args.print_config:
        import yaml

        print(yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False), end="")
        return 0
    if args.dry_run:
        return _dry_run(config)

    from clbench.api.run import run_config
    from clbench.cli.console import print_summary
    from clbench.engine.progress_log import progress_logging
    from clbench.errors import RunInterrupted

    progress = not args.quiet and sys.stderr.isatty()
    # stderr is not a terminal (a cluster job's log): logging lines instead of the bar
    lines = progress_logging() if not args.quiet and not progress else contextlib.nullcontext()
    try:
        with lines:
            outcome = run_config(config, progress=progress, force=args.force)
    except RunInterrupted as exc:
        how = (
            f"resume with: clbench run --resume {exc.run_dir}"
            if exc.checkpointed
            else "this strategy cannot be checkpointed; run it again to start over"
        )
        print(f"clbench: interrupted by {exc}; {how}", file=sys.stderr)
        return 128 + int(getattr(signal, exc.reason, signal.SIGINT))
    if outcome.status == "diverged":
        print(f"clbench: {outcome.detail} ({outcome.path})", file=sys.stderr)
        return 1
    if outcome.resumed_from is not None:
        print(f"resumed from the checkpoint at {outcome.resumed_from.describe()}")
    print_summary(outcome.summary, outcome.path, skipped=outcome.skipped)
    return 0


def _dry_run(config: RunConfig) -> int:
    from clbench.engine.dry_run import dry_run

    report = dry_run(config)
    if report.missing:
        print(
            "clbench: the config is valid, but the run needs files that are missing:",
            file=sys.stderr,
        )
        for message in report.missing:
            print(f"  missing: {message}", file=sys.stderr)
        return EXIT_BAD_INPUT
    print("\n".join(report.lines))
    return 0


def _resume_config(run_dir: str) -> RunConfig:
    """The config of an existing run folder, pointed back at that folder."""
    from pathlib import Path

    from clbench.config import resolve_config
    from clbench.errors import ConfigError, CorruptedResultError
    from clbench.results.reader import RunFolder

    path = Path(run_dir)
    if not path.is_dir():
        raise ConfigError("--resume", run_dir, "an existing run folder")
    folder = RunFolder(path)
    _ = folder.status_info  # a damaged status.json is named here, not deep inside the run
    raw = folder.config  # names the file if missing or unreadable
    output = raw.get("output")
    raw["output"] = {**(output if isinstance(output, dict) else {})}
    raw["output"]["root"] = str(path.parent)
    raw["output"]["name"] = path.name
    try:
        return resolve_config(raw)
    except ConfigError as exc:  # a damaged or hand-edited config.yaml: say which file
        raise CorruptedResultError(path / "config.yaml", str(exc)) from None


def _cmd_info(args: argparse.Namespace) -> int:
    from pathlib import Path

    from clbench.errors import ConfigError
    from clbench.results.info import describe_run
    from clbench.results.reader import RunFolder

    path = Path(args.run_dir)
    if not path.is_dir():
        raise ConfigError("RUN_DIR", args.run_dir, "an existing run folder")
    print(describe_run(RunFolder(path)))
    return 0


def _cmd_list(args: argparse.Namespace) -> int:
    from clbench.errors import ConfigError
    from clbench.registry import DATASETS, MODELS, PLUGINS, SCENARIOS, STRATEGIES

    sections = {
        "data": DATASETS,
        "scenarios": SCENARIOS,
        "models": MODELS,
        "strategies": STRATEGIES,
        "plugins": PLUGINS,
    }
    if args.name is not None:
        if args.kind is None:
            raise ConfigError("NAME", args.name, "a KIND first: clbench list strategies er")
        registry = sections[args.kind]
        _print_component(args.name, registry.spec_of(args.name, field=args.kind))
        return 0
    for title, registry in sections.items():
        if args.kind and args.kind != title:
            continue
        print(f"{title}:")
        for name, spec in registry.specs():
            _print_component(name, spec)
        print()
    return 0


def _print_component(name: str, cls: type) -> None:
    """A component's line, then its parameters with type, default and description."""
    from clbench.registry import describe_params

    extra = ""
    caps = getattr(cls, "capabilities", None)
    if caps is not None:
        routes = ", ".join(sorted(caps.routes)) or "none"
        extra = f"  [{'/'.join(sorted(caps.settings))}-IL; plugin routes: {routes}]"
    print(f"  {name}: {getattr(cls, 'summary', '')}{extra}")
    for pname, ptype, default, desc in describe_params(cls.Config):
        print(f"      {pname} ({ptype}, default {default!r}): {desc}")


def _cmd_pretrain(args: argparse.Namespace) -> int:
    from clbench.config import build_config
    from clbench.engine.pretrain import pretrain
    from clbench.engine.progress_log import progress_logging

    config_path, overrides = config_and_overrides(args)
    config = build_config(config_path, overrides)
    bar = sys.stderr.isatty()  # a terminal gets the bar, a log file progress lines
    with contextlib.nullcontext() if bar else progress_logging():
        info = pretrain(config, args.out, progress=bar)
    acc = info["source_test_acc"]
    acc_text = "n/a" if acc is None else f"{acc:.4f}"
    print(
        f"{info['path']}: backbone saved after {info['updates']} updates "
        f"({info['train_s']:.1f} s training); source test accuracy {acc_text}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
