"""`render_report`: run folders -> one rendered report (the API behind `clbench report`).

Heavy imports (pandas via the reader and the frame) happen inside the function so that importing
`clbench.reporting` stays cheap for the command line.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from clbench.errors import ClbenchError, ConfigError

if TYPE_CHECKING:
    from clbench.reporting.columns import ColumnSpec
    from clbench.reporting.frame import RunFrame
    from clbench.reporting.table import Table

ALL_METRICS = "all"


@dataclass
class ReportResult:
    """What `render_report` made: the text plus the structures behind it."""

    text: str  # the rendered report
    skipped: str | None  # what was left out and why (LoadedRuns.describe_skipped), or None
    tables: list[Table]
    runs: RunFrame  # the per-run frame the tables were built from (``runs.frame``)


def render_report(
    paths: Sequence[str | Path],
    *,
    group_by: Sequence[str] | None = None,
    metrics: Sequence[str] | None = None,
    fmt: str = "md",
    baseline: str | None = None,
    include_partial: bool = False,
    strict: bool = False,
    split_by: Sequence[str] = (),
    sort_by: str | None = None,
) -> ReportResult:
    """Load the run folders under ``paths`` and render mean ± std tables in ``fmt``.

    ``group_by``: row keys (default: the config keys that vary, so seeds of a setting form a row);
    ``split_by``: keys that get a table each (runs tagged ``tags.phase`` are always split by it);
    ``metrics``: metric and budget columns (default `DEFAULT_COLUMNS`, ``["all"]``: every one);
    ``baseline``: a row label or ``KEY=VALUE`` for ablation deltas; ``strict``: a corrupted run
    folder is an error instead of being skipped; ``sort_by``: a column (among ``metrics``) that
    orders the rows best first, as a leaderboard.
    """
    from clbench.reporting.baseline import BaselineSpec
    from clbench.reporting.formats import RENDERERS
    from clbench.reporting.frame import build_frame
    from clbench.reporting.table import build_tables
    from clbench.results.reader import load_runs

    if isinstance(paths, str | Path):  # one folder given bare, not as a list of characters
        paths = [paths]
    if fmt not in RENDERERS:
        raise ConfigError("--format", fmt, RENDERERS)
    if not paths:
        raise ConfigError("results", [], "at least one run folder or results folder")
    loaded = load_runs(paths, include_partial=include_partial)
    if strict and loaded.corrupted:
        _, reason = loaded.corrupted[0]
        more = len(loaded.corrupted) - 1
        raise ClbenchError(reason + (f" (and {more} more corrupted run folder(s))" if more else ""))
    skipped = loaded.describe_skipped()
    if not loaded.finished:
        where = ", ".join(str(p) for p in paths)
        raise ClbenchError(
            f"no finished runs to report under {where}" + (f" ({skipped})" if skipped else "")
        )

    runs = build_frame(loaded.finished)
    for option, keys in (("--group-by", group_by or ()), ("--split-by", split_by)):
        for key in keys:
            _check_key(option, key, runs.key_columns)
    columns = _select_columns(metrics, runs.value_columns)
    sort_column = None
    if sort_by is not None:
        sort_column = next((c for c in columns if c.name == sort_by), None)
        if sort_column is None:
            raise ConfigError("--sort", sort_by, [c.name for c in columns])
    tables = build_tables(
        runs,
        columns,
        group_by=list(group_by) if group_by else None,
        split_by=list(split_by),
        baseline=BaselineSpec(baseline) if baseline else None,
        sort_by=sort_column,
    )
    return ReportResult(RENDERERS[fmt](tables), skipped, tables, runs)


def _check_key(option: str, key: str, known: Sequence[str]) -> None:
    if key in known:
        return
    close = difflib.get_close_matches(key, known, n=5)
    hint = f"close matches: {', '.join(close)}" if close else f"one of: {', '.join(known)}"
    raise ConfigError(option, key, f"a config key, tags.<name> or seed of the runs; {hint}")


def _select_columns(metrics: Sequence[str] | None, available: Sequence[str]) -> list[ColumnSpec]:
    from clbench.reporting.columns import DEFAULT_COLUMNS, column_spec

    if not metrics:
        names = [m for m in DEFAULT_COLUMNS if m in available]
    elif list(metrics) == [ALL_METRICS]:
        names = list(available)
    else:
        for name in metrics:
            if name not in available:
                raise ConfigError("--metrics", name, [*available, ALL_METRICS])
        names = list(dict.fromkeys(metrics))
    return [column_spec(name) for name in names]
