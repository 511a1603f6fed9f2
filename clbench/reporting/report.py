"""`render_report`: run folders -> one rendered report (the API behind `clbench report`).

Heavy imports (pandas via the reader and the frame) happen inside the function so that importing
`clbench.reporting` stays cheap for the command line.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, cast

from clbench.errors import ClbenchError, ConfigError

if TYPE_CHECKING:
    from clbench.reporting.aggregate import Aggregate, AggregateOptions
    from clbench.reporting.columns import ColumnSpec
    from clbench.reporting.frame import RunFrame
    from clbench.reporting.significance import CiMethod
    from clbench.reporting.table import Table
    from clbench.results.reader import RunFolder


@dataclass
class ReportResult:
    """What `render_report` made: the text plus the structures behind it."""

    text: str  # the rendered report
    skipped: str | None  # what was left out and why (LoadedRuns.describe_skipped), or None
    tables: list[Table]
    runs: RunFrame  # the per-run frame the tables were built from (``runs.frame``)
    aggregates: list[Aggregate] = field(default_factory=list)  # with ``aggregate``, not tables
    # the run folders behind ``runs.frame``, in its row order (figures of the results page)
    folders: list[RunFolder] = field(default_factory=list)


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
    ci: str | None = None,
    confidence: float | None = None,
    aggregate: AggregateOptions | None = None,
    treatment: Sequence[str] = (),
) -> ReportResult:
    """Load the run folders under ``paths`` and render tables in ``fmt``.

    Cells are the mean with a ``confidence`` (default 0.95) interval of the mean, ``ci``: ``t``
    (Student t, the default), ``bootstrap`` (BCa) or ``none`` (mean ± std instead); bold marks
    the rows not significantly worse than the best (tests at α = 1 - confidence).

    ``group_by``: row keys (default: the config keys that vary, so seeds of a setting form a row);
    ``split_by``: keys that get a table each (runs tagged ``tags.phase`` are always split by it);
    ``metrics``: metric and budget columns (default `DEFAULT_COLUMNS`, ``["all"]``: every one);
    ``baseline``: a row label or ``KEY=VALUE`` for ablation deltas; ``strict``: a corrupted run
    folder is an error instead of being skipped; ``sort_by``: a column (among ``metrics``) that
    orders the rows best first, as a leaderboard; ``aggregate``: instead of tables, IQM and
    P(X > Y) over scenarios with stratified-bootstrap intervals (`clbench.reporting.aggregate`);
    ``treatment``: config keys the runs vary on purpose (``scenario.kernel``): each value is its
    own row (with ``aggregate``: its own method) and is left out of the comparability check,
    while every other data, scenario and evaluation setting is still checked
    (`clbench.reporting.treatment`).
    """
    from clbench.reporting.baseline import BaselineSpec
    from clbench.reporting.formats import RENDERERS
    from clbench.reporting.frame import build_frame
    from clbench.reporting.table import build_tables
    from clbench.reporting.treatment import check_treatment
    from clbench.results.reader import load_runs

    if isinstance(paths, str | Path):  # one folder given bare, not as a list of characters
        paths = [paths]
    if fmt not in RENDERERS:
        raise ConfigError("--format", fmt, RENDERERS)
    ci_method, level = _check_ci(ci, confidence, aggregate is not None)
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
    treatment = check_treatment(treatment, runs.configs, row_split=split_by)
    if aggregate is not None:
        for option, value in (("--baseline", baseline), ("--sort", sort_by)):
            if value is not None:  # table options: silently ignoring them would mislead
                raise ConfigError(option, value, "nothing with --aggregate (tables only)")
        result = _render_aggregate(
            runs, skipped, aggregate, group_by, split_by, metrics, fmt, treatment
        )
        result.folders = list(loaded.finished)
        return result
    columns = _select_columns(metrics, runs)
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
        ci=ci_method,
        confidence=level,
        treatment=treatment,
    )
    return ReportResult(
        RENDERERS[fmt](tables), skipped, tables, runs, folders=list(loaded.finished)
    )


def _render_aggregate(
    runs: RunFrame,
    skipped: str | None,
    options: AggregateOptions,
    group_by: Sequence[str] | None,
    split_by: Sequence[str],
    metrics: Sequence[str] | None,
    fmt: str,
    treatment: Sequence[str],
) -> ReportResult:
    from clbench.reporting.aggregate import AGGREGATE_RENDERERS, build_aggregates, select_metrics

    for key in options.scenario_keys or ():
        _check_key("--aggregate-by", key, runs.key_columns)
        if key in treatment:  # a treatment is what the methods differ in, not a scenario
            raise ConfigError("--aggregate-by", key, "a key that is not a --treatment key")
    columns = select_metrics(metrics, runs.value_columns)
    aggregates = build_aggregates(
        runs,
        columns,
        options,
        group_by=list(group_by) if group_by else None,
        split_by=split_by,
        treatment=treatment,
    )
    return ReportResult(AGGREGATE_RENDERERS[fmt](aggregates), skipped, [], runs, aggregates)


def _check_key(option: str, key: str, known: Sequence[str]) -> None:
    if key in known:
        return
    close = difflib.get_close_matches(key, known, n=5)
    hint = f"close matches: {', '.join(close)}" if close else f"one of: {', '.join(known)}"
    raise ConfigError(option, key, f"a config key, tags.<name> or seed of the runs; {hint}")


def _check_ci(ci: str | None, confidence: float | None, aggregate: bool) -> tuple[CiMethod, float]:
    """The interval method and confidence, validated (None: the defaults)."""
    from clbench.reporting.significance import CI_METHODS, DEFAULT_CI, DEFAULT_CONFIDENCE

    if aggregate:
        for option, value in (("--ci", ci), ("--confidence", confidence)):
            if value is not None:  # the aggregate has its own bootstrap intervals
                raise ConfigError(option, value, "nothing with --aggregate (tables only)")
    if ci is not None and ci not in CI_METHODS:
        raise ConfigError("--ci", ci, CI_METHODS)
    level = DEFAULT_CONFIDENCE if confidence is None else confidence
    if isinstance(level, bool) or not isinstance(level, int | float) or not 0 < level < 1:
        raise ConfigError("--confidence", confidence, "a number between 0 and 1 (not 0 or 1)")
    return cast("CiMethod", ci or DEFAULT_CI), float(level)


def _select_columns(metrics: Sequence[str] | None, runs: RunFrame) -> list[ColumnSpec]:
    """The columns asked for: defaults, ``all`` (metrics and budget) or names, which may also
    be strategy-report facts (``strategy_report.<key>``, only when named)."""
    from clbench.reporting.columns import ALL_METRICS, DEFAULT_COLUMNS, column_spec

    available = runs.value_columns
    if not metrics:
        names = [m for m in DEFAULT_COLUMNS if m in available]
    elif list(metrics) == [ALL_METRICS]:
        names = list(available)
    else:
        known = [*available, *runs.strategy_columns]
        for name in metrics:
            if name not in known:
                raise ConfigError("--metrics", name, [*known, ALL_METRICS])
        names = list(dict.fromkeys(metrics))
    return [column_spec(name, integral=_integral(runs, name)) for name in names]


def _integral(runs: RunFrame, name: str) -> bool:
    values = runs.frame[name].dropna()
    return bool(len(values)) and bool((values == values.round()).all())
