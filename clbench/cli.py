"""The `clbench` command line: ``run`` and ``list`` (heavy imports happen inside commands)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

EXIT_BAD_INPUT = 2


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    # overrides may follow options (`clbench run cfg.yaml --quiet a.b=1`): collect the leftovers
    args, extra = parser.parse_known_args(argv)
    if extra:
        if getattr(args, "command", None) != "run" or any(e.startswith("-") for e in extra):
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
    run.add_argument("config", nargs="?", help="YAML config file (optional)")
    run.add_argument("overrides", nargs="*", help="key.sub=value overrides")
    run.add_argument("--out", help="results root (same as output.root=...)")
    run.add_argument(
        "--force", action="store_true", help="re-run even if the run folder is finished"
    )
    run.add_argument("--quiet", action="store_true", help="no progress bar")
    run.add_argument(
        "--print-config", action="store_true", help="print the resolved config and exit"
    )
    run.set_defaults(handler=_cmd_run)

    lst = sub.add_parser("list", help="list registered datasets, scenarios, models and strategies")
    lst.add_argument("kind", nargs="?", choices=["data", "scenarios", "models", "strategies"])
    lst.set_defaults(handler=_cmd_list)
    return parser


def _cmd_run(args: argparse.Namespace) -> int:
    from clbench.config import build_config

    config_path, overrides = args.config, list(args.overrides)
    if config_path is not None and "=" in config_path:  # `clbench run key=value ...`
        overrides.insert(0, config_path)
        config_path = None
    if args.out:
        overrides.append(f"output.root={args.out}")
    config = build_config(config_path, overrides)
    if args.print_config:
        import yaml

        print(yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False), end="")
        return 0

    from clbench.engine.job import run_job
    from clbench.report_console import print_summary

    outcome = run_job(config, progress=not args.quiet and sys.stderr.isatty(), force=args.force)
    print_summary(outcome.summary, outcome.path, skipped=outcome.skipped)
    return 0


def _cmd_list(args: argparse.Namespace) -> int:
    from clbench.registry import DATASETS, MODELS, SCENARIOS, STRATEGIES, describe_params

    sections = {
        "data": DATASETS,
        "scenarios": SCENARIOS,
        "models": MODELS,
        "strategies": STRATEGIES,
    }
    for title, registry in sections.items():
        if args.kind and args.kind != title:
            continue
        print(f"{title}:")
        for name, cls in registry:
            extra = ""
            caps = getattr(cls, "capabilities", None)
            if caps is not None:
                extra = f"  [{'/'.join(sorted(caps.settings))}-IL]"
            print(f"  {name}: {getattr(cls, 'summary', '')}{extra}")
            for pname, ptype, default, desc in describe_params(cls.Config):
                print(f"      {pname} ({ptype}, default {default!r}): {desc}")
        print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
