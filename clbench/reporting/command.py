"""`clbench report`: tables of means and confidence intervals over run folders (heavy imports
inside the handler)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from clbench.errors import ConfigError

if TYPE_CHECKING:
    from clbench.reporting.aggregate import AggregateOptions

# the renderers' names (clbench.reporting.formats.RENDERERS, not imported here: it loads pandas)
FORMAT_CHOICES = ("md", "latex", "csv", "html")
FORMAT_BY_SUFFIX = {".md": "md", ".tex": "latex", ".csv": "csv", ".html": "html", ".htm": "html"}
# clbench.reporting.significance.CI_METHODS (not imported here: it loads scipy)
CI_CHOICES = ("t", "bootstrap", "none")


class _ExtendSplitting(argparse.Action):
    """``--group-by a b`` and ``--group-by a,b`` (and repeating the option) all give [a, b]."""

    def __call__(self, parser, namespace, values, option_string=None):  # type: ignore[override]
        items = list(getattr(namespace, self.dest) or [])
        items += [part for value in values for part in value.split(",") if part]
        setattr(namespace, self.dest, items)


def _number(text: str) -> float:
    """A float for argparse; the range is checked by render_report, for the API too."""
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"got {text!r}; allowed: a number between 0 and 1 (not 0 or 1)"
        ) from None


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"got {text!r}; allowed: a whole number >= 1")
    return value


def add_command(sub: argparse._SubParsersAction) -> None:
    """Register ``clbench report``."""
    report = sub.add_parser(
        "report",
        help="mean [95%% CI] tables over run folders (Markdown, LaTeX, CSV, HTML)",
        description="Load finished run folders under RESULTS and print one row per setting: "
        "the mean and its 95% confidence interval over seeds and n; in bold, every row not "
        "significantly worse than the best (paired or Welch t-test, Holm-corrected); rows or "
        "cells that are not comparable (other data, scenario, evaluation protocol, metric "
        "options or epochs) flagged with a footnote, unless declared with --treatment. Runs "
        "tagged tags.phase (GTEP tuning/evaluation) get one table per phase. Put RESULTS before "
        "options that take several values.",
    )
    report.add_argument("results", nargs="+", metavar="RESULTS", help="run or results folders")
    report.add_argument(
        "--group-by",
        nargs="+",
        action=_ExtendSplitting,
        metavar="KEY",
        help="row keys, e.g. strategy.name data.name tags.sweep (default: the config keys that "
        "vary between runs, so the seeds of one setting form a row)",
    )
    report.add_argument(
        "--treatment",
        nargs="+",
        action=_ExtendSplitting,
        default=[],
        metavar="KEY",
        help="config keys the runs vary on purpose, e.g. scenario.kernel: each value is its own "
        "row and competes for best values instead of being footnoted as not comparable; every "
        "other data, scenario and evaluation setting is still checked",
    )
    report.add_argument(
        "--split-by",
        nargs="+",
        action=_ExtendSplitting,
        default=[],
        metavar="KEY",
        help="one table per value of these keys, e.g. scenario.name (tags.phase always splits)",
    )
    report.add_argument(
        "--metrics",
        nargs="+",
        action=_ExtendSplitting,
        metavar="M",
        help="metric and budget columns, e.g. final_acc forgetting train_time_s, or a "
        "strategy's own numbers, e.g. strategy_report.train_macs.total; 'all' for every metric "
        "and budget column (default: final_acc aia forgetting min_acc wc_acc wf_10 gap_depth_mean "
        "updates train_time_s eval_time_s buffer_size params_trainable)",
    )
    report.add_argument(
        "--format",
        choices=FORMAT_CHOICES,
        help="output format (default: from the --out suffix .md/.tex/.csv/.html, else md)",
    )
    report.add_argument(
        "--sort",
        metavar="M",
        help="order rows best first by this column (one of the table's), as a leaderboard",
    )
    report.add_argument(
        "--out",
        metavar="FILE_OR_DIR",
        help="write to FILE instead of stdout; with --format html and a folder (an existing one, "
        "a name without suffix, or ending in /): the results page DIR/index.html, with figures "
        "and every run's config (self-contained, opens offline)",
    )
    report.add_argument(
        "--window",
        type=_positive_int,
        metavar="W",
        help="results page: updates shown after each task boundary in the gap zoom (default 100)",
    )
    report.add_argument(
        "--baseline",
        metavar="LABEL_OR_KEY=VALUE",
        help="row for ablation deltas: a row label as printed, or KEY=VALUE[,KEY=VALUE], "
        "e.g. strategy.name=naive",
    )
    report.add_argument(
        "--ci",
        metavar="{" + ",".join(CI_CHOICES) + "}",  # checked by render_report: one message style
        help="interval shown with each mean and delta: t (Student t, default), bootstrap "
        "(BCa, scipy.stats.bootstrap; needs ~10+ runs per row to be trusted) or none (mean ± std)",
    )
    report.add_argument(
        "--confidence",
        type=_number,
        metavar="C",
        help="confidence of the intervals, strictly between 0 and 1 (default 0.95); tests mark "
        "best at alpha = 1 - C",
    )
    report.add_argument(
        "--include-partial",
        action="store_true",
        help="also count unfinished runs (their config; they have no metrics yet)",
    )
    report.add_argument(
        "--strict", action="store_true", help="a corrupted run folder is an error (exit 2)"
    )
    aggregate = report.add_argument_group(
        "aggregate over scenarios",
        "IQM per method and P(row > column) per pair, with stratified-bootstrap 95% CIs "
        "(Agarwal et al., NeurIPS 2021); every method needs runs on every scenario",
    )
    aggregate.add_argument(
        "--aggregate",
        action="store_true",
        help="instead of tables: per method (--group-by, default: strategy and the varying "
        "hyperparameters) the interquartile mean of each of --metrics (default: final_acc "
        "min_acc) over all runs of all scenarios, and P(row > column) averaged over scenarios",
    )
    aggregate.add_argument(
        "--aggregate-by",
        nargs="+",
        action=_ExtendSplitting,
        metavar="KEY",
        help="keys that tell scenarios apart, e.g. data.name scenario.name (default: the data, "
        "scenario, eval, metrics and train.epochs keys that vary between runs)",
    )
    aggregate.add_argument(
        "--bootstrap-reps",
        type=int,
        metavar="N",
        help="bootstrap resamples per interval (default: 2000)",
    )
    aggregate.add_argument(
        "--bootstrap-seed",
        "--seed",
        dest="bootstrap_seed",
        type=int,
        metavar="S",
        help="seed of the bootstrap resamples: the same seed, the same intervals (default: 0)",
    )
    report.set_defaults(handler=_cmd_report)


def _aggregate_options(args: argparse.Namespace) -> AggregateOptions | None:
    """`AggregateOptions` with --aggregate, else None (its options alone are an error)."""
    given = {
        "--aggregate-by": args.aggregate_by,
        "--bootstrap-reps": args.bootstrap_reps,
        "--bootstrap-seed": args.bootstrap_seed,
    }
    if not args.aggregate:
        for option, value in given.items():
            if value is not None:
                raise ConfigError(option, value, "only with --aggregate")
        return None
    from clbench.reporting.aggregate import AggregateOptions

    chosen = {"reps": args.bootstrap_reps, "seed": args.bootstrap_seed}  # else its defaults
    return AggregateOptions(
        scenario_keys=tuple(args.aggregate_by) if args.aggregate_by else None,
        **{k: v for k, v in chosen.items() if v is not None},
    )


def _cmd_report(args: argparse.Namespace) -> int:
    from clbench.engine.run_dir import write_text
    from clbench.reporting import render_report

    aggregate = _aggregate_options(args)
    out = Path(args.out) if args.out else None
    fmt = args.format or (FORMAT_BY_SUFFIX.get(out.suffix.lower(), "md") if out else "md")
    if fmt == "html" and args.format == "html" and _is_page_folder(args.out):
        if aggregate is not None:
            raise ConfigError("--out", args.out, "a file ending in .html with --aggregate")
        return _write_page(args)
    if args.window is not None:
        raise ConfigError("--window", args.window, "only with --format html --out DIR")
    if out is not None and (out.is_dir() or args.out.endswith(("/", "\\"))):
        raise ConfigError("--out", args.out, "a file (a folder only with --format html)")
    result = render_report(args.results, fmt=fmt, aggregate=aggregate, **_table_options(args))
    if result.skipped:
        print(f"clbench report: {result.skipped}", file=sys.stderr)
    if out is None:
        sys.stdout.write(result.text)
        return 0
    write_text(out, result.text)
    if aggregate is not None:
        methods = sum(len(a.methods) for a in result.aggregates)
        made = f"{len(result.aggregates)} aggregate(s) of {methods} method(s)"
    else:
        rows = sum(len(table.rows) for table in result.tables)
        made = f"{len(result.tables)} table(s), {rows} row(s)"
    print(f"{out}: {fmt}, {made} from {len(result.runs.frame)} run(s)", file=sys.stderr)
    return 0


def _table_options(args: argparse.Namespace) -> dict[str, Any]:
    """The options the tables take, shared by every format and the results page."""
    return {
        "group_by": args.group_by,
        "split_by": args.split_by,
        "treatment": args.treatment,
        "metrics": args.metrics,
        "baseline": args.baseline,
        "include_partial": args.include_partial,
        "strict": args.strict,
        "sort_by": args.sort,
        "ci": args.ci,
        "confidence": args.confidence,
    }


def _is_page_folder(out: str | None) -> bool:
    """Whether ``--out`` names a folder for the results page: an existing folder, a path ending
    in a slash, or a name without a suffix (``report.html`` stays the single-table page)."""
    if not out:
        return False
    path = Path(out)
    return path.is_dir() or out.endswith(("/", "\\")) or not path.suffix


def _write_page(args: argparse.Namespace) -> int:
    from clbench.reporting.html_page import write_results_page

    page = write_results_page(args.results, args.out, window=args.window, **_table_options(args))
    report = page.report
    if report.skipped:
        print(f"clbench report: {report.skipped}", file=sys.stderr)
    rows = sum(len(table.rows) for table in report.tables)
    kinds = f"{page.svg} SVG, {page.figures - page.svg} PNG" if page.figures else "none"
    print(
        f"{page.path}: results page, {len(report.tables)} table(s), {rows} setting(s), "
        f"{page.figures} figure(s) ({kinds}), {page.size / 1e6:.1f} MB, from "
        f"{len(report.runs.frame)} run(s)",
        file=sys.stderr,
    )
    return 0
