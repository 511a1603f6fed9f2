"""`clbench report`: mean ± std tables over run folders (heavy imports inside the handler)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

# the renderers' names (clbench.reporting.formats.RENDERERS, not imported here: it loads pandas)
FORMAT_CHOICES = ("md", "latex", "csv", "html")
FORMAT_BY_SUFFIX = {".md": "md", ".tex": "latex", ".csv": "csv", ".html": "html", ".htm": "html"}


class _ExtendSplitting(argparse.Action):
    """``--group-by a b`` and ``--group-by a,b`` (and repeating the option) all give [a, b]."""

    def __call__(self, parser, namespace, values, option_string=None):  # type: ignore[override]
        items = list(getattr(namespace, self.dest) or [])
        items += [part for value in values for part in value.split(",") if part]
        setattr(namespace, self.dest, items)


def add_command(sub: argparse._SubParsersAction) -> None:
    """Register ``clbench report``."""
    report = sub.add_parser(
        "report",
        help="mean ± std tables over run folders (Markdown, LaTeX, CSV, HTML)",
        description="Load finished run folders under RESULTS and print one row per setting: "
        "mean ± std over seeds and n, the best value per column in bold, rows that are not "
        "comparable (other data, scenario, evaluation protocol, metric options or epochs) "
        "flagged with a footnote. Runs tagged tags.phase (GTEP tuning/evaluation) get one table "
        "per phase. Put RESULTS before options that take several values.",
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
        help="metric and budget columns, e.g. final_acc forgetting train_time_s; 'all' for "
        "every one (default: final_acc aia forgetting min_acc wc_acc wf_10 gap_depth_mean "
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
    report.add_argument("--out", metavar="FILE", help="write to FILE instead of stdout")
    report.add_argument(
        "--baseline",
        metavar="LABEL_OR_KEY=VALUE",
        help="row for ablation deltas: a row label as printed, or KEY=VALUE[,KEY=VALUE], "
        "e.g. strategy.name=naive",
    )
    report.add_argument(
        "--include-partial",
        action="store_true",
        help="also count unfinished runs (their config; they have no metrics yet)",
    )
    report.add_argument(
        "--strict", action="store_true", help="a corrupted run folder is an error (exit 2)"
    )
    report.set_defaults(handler=_cmd_report)


def _cmd_report(args: argparse.Namespace) -> int:
    from clbench.reporting import render_report
    from clbench.results.run_dir import write_text

    out = Path(args.out) if args.out else None
    fmt = args.format or (FORMAT_BY_SUFFIX.get(out.suffix.lower(), "md") if out else "md")
    result = render_report(
        args.results,
        group_by=args.group_by,
        split_by=args.split_by,
        metrics=args.metrics,
        fmt=fmt,
        baseline=args.baseline,
        include_partial=args.include_partial,
        strict=args.strict,
        sort_by=args.sort,
    )
    if result.skipped:
        print(f"clbench report: {result.skipped}", file=sys.stderr)
    if out is None:
        sys.stdout.write(result.text)
        return 0
    write_text(out, result.text)
    rows = sum(len(table.rows) for table in result.tables)
    print(
        f"{out}: {fmt}, {len(result.tables)} table(s), {rows} row(s) "
        f"from {len(result.runs.frame)} run(s)",
        file=sys.stderr,
    )
    return 0
