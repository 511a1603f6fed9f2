"""Runs -> report tables: split, group, mean ± std, best values, baseline deltas, comparability.

A *table* holds runs that may be compared: runs are first split by ``tags.phase`` (GTEP tuning and
evaluation runs never share a table, so they are never averaged together) and by any ``split_by``
keys. Within a table, runs are grouped into *rows* by ``group_by`` keys (default: the identifying
config keys that vary within the table, so the seeds of one setting form one row).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from clbench.reporting.baseline import BaselineSpec
from clbench.reporting.columns import ColumnSpec
from clbench.reporting.comparability import find_differences
from clbench.reporting.frame import RunFrame, value_sort_key
from clbench.results.labels import label_key_order, setting_labels, value_text
from clbench.results.reader import varying_keys

PHASE_KEY = "tags.phase"
PHASE_ORDER = ("tuning", "evaluation")  # GTEP: hyperparameters are chosen first, then evaluated
# Two means closer than this are a tie (both marked best).
TIE_TOLERANCE = 1e-12


@dataclass(frozen=True)
class Stat:
    """Mean, sample standard deviation (ddof=1; None for one value) and count of defined values."""

    mean: float | None
    std: float | None
    n: int


@dataclass
class Row:
    label: str
    keys: dict[str, Any]  # the group key values shared by the row's runs
    runs: list[int]  # frame rows
    stats: dict[str, Stat] = field(default_factory=dict)
    best: set[str] = field(default_factory=set)  # columns where this row holds the best mean
    deltas: dict[str, float | None] = field(default_factory=dict)  # mean - baseline mean
    notes: list[str] = field(default_factory=list)  # footnotes
    comparable: bool = True

    @property
    def n(self) -> int:
        return len(self.runs)


@dataclass
class Table:
    split: dict[str, Any]  # what every run of the table shares, e.g. {"tags.phase": "tuning"}
    group_by: list[str]
    columns: list[ColumnSpec]
    rows: list[Row]
    baseline: Row | None = None

    @property
    def title(self) -> str | None:
        if not self.split:
            return None
        return ", ".join(
            f"{k.removeprefix('tags.')}: {value_text(v)}" for k, v in self.split.items()
        )

    def footnotes(self) -> list[str]:
        """Distinct row notes in order of appearance; a note's number is its index + 1."""
        return list(dict.fromkeys(note for row in self.rows for note in row.notes))


def build_tables(
    runs: RunFrame,
    columns: Sequence[ColumnSpec],
    group_by: Sequence[str] | None = None,
    split_by: Sequence[str] = (),
    baseline: BaselineSpec | None = None,
    sort_by: ColumnSpec | None = None,
) -> list[Table]:
    """The report tables of ``runs``; ``group_by=None`` groups by the keys varying per table;
    ``sort_by``: rows ordered best first by that column's mean (undefined last), a leaderboard."""
    phase = [PHASE_KEY] if PHASE_KEY in runs.tag_keys else []
    split_keys = list(dict.fromkeys([*phase, *split_by]))
    tables = []
    for split_values, members in _partition(runs, range(len(runs.frame)), split_keys):
        if group_by is None:
            keys = label_key_order(varying_keys([runs.configs[i] for i in members]))
        else:
            keys = [k for k in group_by if k not in split_keys]
        rows = [
            Row(label="", keys=dict(zip(keys, values, strict=True)), runs=list(row_runs))
            for values, row_runs in _partition(runs, members, keys)
        ]
        _label_rows(rows, runs, keys, show_all=group_by is not None)
        table = Table(dict(zip(split_keys, split_values, strict=True)), keys, list(columns), rows)
        for row in rows:
            row.stats = {c.name: _stat(runs, row.runs, c.name) for c in columns}
        if sort_by is not None:
            rows.sort(key=lambda row: _rank_key(row.stats[sort_by.name].mean, sort_by))
        tables.append(table)

    if baseline is not None:
        _attach_baseline(tables, runs, baseline)
    for table in tables:
        _mark_incomparable(table, runs)
        _mark_partial(table, runs)
        _mark_best(table)
        _compute_deltas(table)
    return tables


def _rank_key(mean: float | None, column: ColumnSpec) -> tuple[bool, float]:
    """Best first in the column's direction (higher first without one); undefined last."""
    if mean is None:
        return (True, 0.0)
    return (False, mean if column.direction == "lower" else -mean)


def _value_order(key: str, value: Any) -> tuple[int, Any]:
    if key == PHASE_KEY and value in PHASE_ORDER:
        return (0, PHASE_ORDER.index(value))
    return value_sort_key(value)


def _partition(
    runs: RunFrame, members: Sequence[int], keys: Sequence[str]
) -> list[tuple[tuple[Any, ...], list[int]]]:
    """Runs grouped by their values of ``keys``, groups sorted by those values."""
    groups: dict[tuple[Any, ...], list[int]] = {}
    for i in members:
        groups.setdefault(tuple(runs.key_value(i, k) for k in keys), []).append(i)
    return sorted(
        groups.items(),
        key=lambda item: [_value_order(k, v) for k, v in zip(keys, item[0], strict=True)],
    )


def _stat(runs: RunFrame, members: Sequence[int], column: str) -> Stat:
    values = runs.frame.loc[list(members), column].dropna()
    n = len(values)
    return Stat(
        mean=float(values.mean()) if n else None,
        std=float(values.std(ddof=1)) if n > 1 else None,
        n=n,
    )


# --- labels ------------------------------------------------------------------------------------


def _label_rows(rows: list[Row], runs: RunFrame, keys: list[str], show_all: bool) -> None:
    """Unique readable labels (`clbench.results.labels`); rows the keys cannot tell apart are
    named by their strategies."""
    labels = setting_labels([row.keys for row in rows], keys, show_all)
    for row, label in zip(rows, labels, strict=True):
        if not label:
            names = (value_text(runs.key_value(i, "strategy.name")) for i in row.runs)
            label = (
                " / ".join(dict.fromkeys(names))
                if "strategy.name" in runs.config_keys
                else "all runs"
            )
        row.label = label


# --- baseline, comparability, best, deltas --------------------------------------------------


def _attach_baseline(tables: list[Table], runs: RunFrame, spec: BaselineSpec) -> None:
    labels = [row.label for table in tables for row in table.rows]
    found = False
    for table in tables:
        matched = [row for row in table.rows if spec.matches(row.label, row.runs, runs)]
        if len(matched) > 1:
            raise spec.error(labels, f"it matches {len(matched)} rows of one table")
        table.baseline = matched[0] if matched else None
        found = found or bool(matched)
    if not found:
        raise spec.error(labels, "it matches no row")


def _mark_incomparable(table: Table, runs: RunFrame) -> None:
    reference = table.rows.index(table.baseline) if table.baseline is not None else None
    reference_name = "baseline" if reference is not None else "most runs"
    differences = find_differences(runs, [row.runs for row in table.rows], reference)
    for row, found in zip(table.rows, differences, strict=True):
        if found:
            row.comparable = False
            details = "; ".join(d.describe(reference_name) for d in found)
            row.notes.append(f"not comparable: {details}; left out of best values")


def _mark_partial(table: Table, runs: RunFrame) -> None:
    for row in table.rows:
        statuses = [runs.frame.at[i, "status"] for i in row.runs]
        partial = [s for s in statuses if s != "finished"]
        if partial:
            kinds = ", ".join(sorted(set(partial)))
            row.notes.append(f"includes {len(partial)} unfinished run(s) ({kinds})")


def _mark_best(table: Table) -> None:
    for column in table.columns:
        if column.direction is None:
            continue
        means = {
            id(row): row.stats[column.name].mean
            for row in table.rows
            if row.comparable and row.stats[column.name].mean is not None
        }
        if len(means) < 2 or max(means.values()) - min(means.values()) <= TIE_TOLERANCE:
            continue  # nothing to compare, or every row ties
        best = max(means.values()) if column.direction == "higher" else min(means.values())
        for row in table.rows:
            mean = means.get(id(row))
            if mean is not None and math.isclose(mean, best, rel_tol=0, abs_tol=TIE_TOLERANCE):
                row.best.add(column.name)


def _compute_deltas(table: Table) -> None:
    if table.baseline is None:
        return
    for row in table.rows:
        for column in table.columns:
            mean = row.stats[column.name].mean
            reference = table.baseline.stats[column.name].mean
            row.deltas[column.name] = (
                None if mean is None or reference is None else mean - reference
            )
