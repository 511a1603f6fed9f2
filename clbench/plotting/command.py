"""``clbench plot``: figures of run folders, or ``--schedule`` for a scenario plan.

Only argparse and the standard library at import time: ``clbench --help`` stays fast.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

KINDS = ("curves", "gap", "bars", "matrix")
FORMATS = ("png", "pdf")
DEFAULT_OUT = "plots"
DEFAULT_SCHEDULE_OUT = "schedule.png"
OTHER_IMAGE_SUFFIXES = ("jpg", "jpeg", "svg", "eps", "ps", "tif", "tiff", "webp", "gif")
# options of run figures; None means "not given" so --schedule can refuse them
RUN_OPTIONS = ("kind", "metrics", "group_by", "format", "window", "include_partial")

DESCRIPTION = """\
Draw figures of the finished runs under RUN_OR_RESULTS (run folders or results folders).
Seeds of one setting are averaged (mean with a ±1 std band or error bar); settings are
labelled by the config keys that differ between them.

  curves  per-task accuracy vs update, task boundaries dashed
  gap     the first --window updates after each task boundary, per old task
  bars    summary metrics per setting
  matrix  the phase-end accuracy matrix R[i, j]

Figures never grow wider than 16 in: many settings get rows of panels, and past a limit per kind
(curves 32, gap 8, bars 40, matrix 16) the settings with the best final_acc, with a note saying
how to choose others (fewer run folders, or --group-by).

--schedule instead builds the scenario plan of CONFIG (YAML; default: the embedded default)
with key.sub=value overrides, without training or writing a run folder, and draws its
task x phase heatmap of training-sample counts.
"""

EXAMPLES = """\
examples:
  clbench plot results/                        # all four figures of every finished run, in plots/
  clbench plot results/ --kind curves --out curves.pdf
  clbench plot results/ --kind bars --metrics final_acc min_acc --group-by strategy.name
  clbench plot results/ --kind gap --window 50
  clbench plot --schedule configs/recurrence/scole_digits.yaml --out schedule.png --log
"""


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def add_command(sub: argparse._SubParsersAction) -> None:
    plot = sub.add_parser(
        "plot",
        help="draw figures of runs (curves, gap, bars, matrix) or a scenario's --schedule",
        description=DESCRIPTION,
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    # named `overrides` so main() collects positionals that follow options into it
    plot.add_argument(
        "overrides",
        nargs="*",
        metavar="RUN_OR_RESULTS",
        help="run folders or results folders (with --schedule: [CONFIG] key.sub=value ...)",
    )
    plot.add_argument(
        "--schedule", action="store_true", help="heatmap of a scenario plan's sample counts"
    )
    plot.add_argument("--kind", choices=[*KINDS, "all"], help="figure to draw (default: all)")
    plot.add_argument(
        "--metrics",
        nargs="+",
        metavar="M",
        help="summary metrics for bars (default: final_acc aia forgetting min_acc wc_acc "
        "gap_depth_mean)",
    )
    plot.add_argument("--format", choices=FORMATS, help="image format (default: png)")
    plot.add_argument(
        "--out",
        help=f"folder for the figures (default: {DEFAULT_OUT}/), or one .png/.pdf file with a "
        f"single --kind; with --schedule the image path (default: {DEFAULT_SCHEDULE_OUT})",
    )
    plot.add_argument(
        "--group-by",
        nargs="+",
        metavar="KEY",
        help="group runs by these flat config keys (e.g. strategy.name), averaging the rest "
        "(default: runs differing only in seed form one setting)",
    )
    plot.add_argument(
        "--window",
        type=_positive_int,
        help="gap: updates shown after each task boundary (default: 100)",
    )
    plot.add_argument(
        "--include-partial",
        action="store_true",
        default=None,
        help="also draw unfinished runs, with whatever records/summary they have",
    )
    plot.add_argument("--log", action="store_true", help="--schedule: logarithmic colour scale")
    plot.set_defaults(handler=run_plot)


def run_plot(args: argparse.Namespace) -> int:
    from clbench.errors import ClbenchError

    if args.schedule:
        given = [f"--{o.replace('_', '-')}" for o in RUN_OPTIONS if getattr(args, o) is not None]
        if given:
            raise ClbenchError(f"plot --schedule: {', '.join(given)} only apply to run figures")
        return _plot_schedule(args)
    if args.log:
        raise ClbenchError("plot: --log only applies to --schedule")
    if not args.overrides:
        raise ClbenchError(
            "plot: give one or more run folders or results folders, or --schedule [CONFIG]"
        )
    return _plot_runs(args)


def _plot_schedule(args: argparse.Namespace) -> int:
    from clbench.arguments import config_and_overrides
    from clbench.config import build_config
    from clbench.engine.runner import prepare
    from clbench.plotting.schedule import plot_schedule

    items = list(args.overrides)
    inputs = argparse.Namespace(config=items[0] if items else None, overrides=items[1:])
    config_path, overrides = config_and_overrides(inputs)
    # prepare validates everything and loads the data but writes nothing
    plan = prepare(build_config(config_path, overrides)).plan
    out = Path(args.out or DEFAULT_SCHEDULE_OUT)
    out.parent.mkdir(parents=True, exist_ok=True)
    plot_schedule(plan, out, log_scale=args.log)
    counts = plan.count_matrix()
    print(
        f"{out}: {plan.scenario} on {plan.dataset}, {plan.num_tasks} tasks x "
        f"{len(plan.phases)} phases, {int(counts.sum())} training samples"
    )
    return 0


def figure_paths(out: str | None, kinds: Sequence[str], fmt: str | None) -> dict[str, Path]:
    """Where each kind is written: ``<out>/<kind>.<fmt>``, or the single file ``out``."""
    from clbench.errors import ConfigError

    path = Path(out or DEFAULT_OUT)
    suffix = path.suffix.lower().lstrip(".")
    if suffix in FORMATS:
        if len(kinds) > 1:
            raise ConfigError(
                "--out", out, "a folder when several kinds are drawn, or a file with one --kind"
            )
        if fmt is not None and fmt != suffix:
            raise ConfigError("--format", fmt, f"{suffix}, the suffix of --out {out}")
        return {kinds[0]: path}
    if suffix in OTHER_IMAGE_SUFFIXES or path.is_file():
        raise ConfigError("--out", out, "a folder, or a file ending in .png or .pdf")
    return {kind: path / f"{kind}.{fmt or 'png'}" for kind in kinds}


def _plot_runs(args: argparse.Namespace) -> int:
    from clbench.errors import ClbenchError
    from clbench.plotting.bars import MAX_BARS, choose_metrics, draw_bars
    from clbench.plotting.curves import MAX_FACETS, draw_curves
    from clbench.plotting.figure import save_figure
    from clbench.plotting.gap import DEFAULT_WINDOW, MAX_ROWS, NoBoundaryError, draw_gap
    from clbench.plotting.matrix import MAX_PANELS, draw_matrix
    from clbench.plotting.run_data import has_records, has_summary
    from clbench.plotting.settings import check_group_keys, group_settings, keep_best
    from clbench.results.reader import load_runs

    kinds = list(KINDS) if args.kind in (None, "all") else [args.kind]
    for option, kind in (("metrics", "bars"), ("window", "gap")):
        if getattr(args, option) is not None and kind not in kinds:
            raise ClbenchError(f"plot: --{option} only applies to --kind {kind} (or all)")
    paths = figure_paths(args.out, kinds, args.format)
    loaded = load_runs(args.overrides, include_partial=bool(args.include_partial))
    skipped = loaded.describe_skipped()
    if skipped:
        print(skipped + ("" if args.include_partial else " (--include-partial draws partial runs)"))
    runs = loaded.finished
    if not runs:
        raise ClbenchError(f"plot: no finished run under {', '.join(args.overrides)}")
    group_by = args.group_by or []
    check_group_keys(runs, group_by)
    with_summary = [run for run in runs if has_summary(run)]
    metrics = choose_metrics(with_summary, args.metrics) if "bars" in kinds else []
    window = args.window or DEFAULT_WINDOW

    draw = {
        "curves": lambda settings: draw_curves(settings),
        "gap": lambda settings: draw_gap(settings, window),
        "bars": lambda settings: draw_bars(settings, metrics),
        "matrix": lambda settings: draw_matrix(settings),
    }
    # settings one figure can show readably; the figure keeps the best and this says so
    limits = {"curves": MAX_FACETS, "gap": MAX_ROWS, "bars": MAX_BARS, "matrix": MAX_PANELS}
    written = 0
    for kind, path in paths.items():
        needs, usable = (
            ("summary.json", with_summary)
            if kind == "bars"
            else ("records.parquet", [run for run in runs if has_records(run)])
        )
        if len(usable) < len(runs):
            print(f"{kind}: left out {len(runs) - len(usable)} run(s) without {needs}")
        if not usable:
            continue
        settings = group_settings(usable, group_by)
        _, note = keep_best(settings, limits[kind], kind)
        if note:
            print(note)
        try:
            fig = draw[kind](settings)
        except NoBoundaryError as exc:
            if len(kinds) == 1:
                raise
            print(f"{kind}: not drawn ({exc})")
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        save_figure(fig, path, path.suffix.lstrip("."))
        print(f"{path}: {kind}, {len(settings)} setting(s), {len(usable)} run(s)")
        written += 1
    if not written:
        raise ClbenchError("plot: no figure drawn: the runs have nothing the figures need")
    return 0
