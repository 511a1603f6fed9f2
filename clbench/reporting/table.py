"""Runs -> report tables: split, group, mean and interval, best values, baseline deltas,
comparability.

A *table* holds runs that may be compared: runs are first split by ``tags.phase`` (GTEP tuning and
evaluation runs never share a table, so they are never averaged together) and by any ``split_by``
keys. Within a table, runs are grouped into *rows* by ``group_by`` keys (default: the identifying
config keys that vary within the table, so the seeds of one setting form one row).

*Best* is a group, not a single maximum: per column, the row with the best mean among rows of two
or more runs is the top, and every other such row that a two-sided t-test (paired over shared
seeds, else Welch), Holm-corrected over the rows tested against the top, does not find worse at
level α = 1 - confidence joins it. Rows with one run cannot be tested and are never marked.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from clbench.reporting.baseline import BaselineSpec
from clbench.reporting.columns import ColumnSpec
from clbench.reporting.comparability import find_differences
from clbench.reporting.frame import RunFrame, value_sort_key
from clbench.reporting.significance import (
    DEFAULT_CI,
    DEFAULT_CONFIDENCE,
    CiMethod,
    Comparison,
    Stat,
    compare,
    holm,
    summarize,
)
from clbench.results.labels import (
    distinguishes_results,
    label_key_order,
    setting_labels,
    value_text,
)
from clbench.results.reader import varying_keys

__all__ = ["Row", "Stat", "Table", "build_tables"]

PHASE_KEY = "tags.phase"
PHASE_ORDER = ("tuning", "evaluation")  # GTEP: hyperparameters are chosen first, then evaluated


@dataclass
class Row:
    label: str
    keys: dict[str, Any]  # the group key values shared by the row's runs
    runs: list[int]  # frame rows
    stats: dict[str, Stat] = field(default_factory=dict)
    best: set[str] = field(default_factory=set)  # columns where the row is in the top group
    deltas: dict[str, float | None] = field(default_factory=dict)  # mean - baseline mean
    notes: list[str] = field(default_factory=list)  # footnotes of the whole row (on its label)
    cell_notes: dict[str, list[str]] = field(default_factory=dict)  # footnotes of one cell
    comparable: bool = True  # same protocol as the reference, but perhaps the eval schedule
    schedule_differs: bool = False  # another evaluation schedule: see `comparable_on`
    vs_best: dict[str, Comparison] = field(default_factory=dict)  # test against the column's top
    vs_baseline: dict[str, Comparison] = field(default_factory=dict)  # test against the baseline

    @property
    def n(self) -> int:
        return len(self.runs)

    def comparable_on(self, column: ColumnSpec) -> bool:
        """Whether this row's values of ``column`` may be compared with the reference rows'."""
        return self.comparable and not (self.schedule_differs and column.schedule_dependent)

    def add_cell_note(self, column: str, note: str) -> None:
        self.cell_notes.setdefault(column, []).append(note)


@dataclass
class Table:
    split: dict[str, Any]  # what every run of the table shares, e.g. {"tags.phase": "tuning"}
    group_by: list[str]
    columns: list[ColumnSpec]
    rows: list[Row]
    baseline: Row | None = None
    ci: CiMethod = DEFAULT_CI  # the interval shown in cells and deltas
    confidence: float = DEFAULT_CONFIDENCE  # of intervals; tests run at alpha = 1 - confidence
    notes: list[str] = field(default_factory=list)  # unnumbered notes under the table
    # keys varied on purpose (`clbench.reporting.treatment`): row keys, not comparability checked
    treatment: list[str] = field(default_factory=list)

    @property
    def alpha(self) -> float:
        return 1 - self.confidence

    @property
    def title(self) -> str | None:
        return split_title(self.split)

    def footnotes(self) -> list[str]:
        """Distinct row and cell notes in order of appearance (row by row, label first, then
        cells left to right); a note's number is its index + 1."""
        ordered = [
            note
            for row in self.rows
            for notes in (row.notes, *(row.cell_notes.get(c.name, []) for c in self.columns))
            for note in notes
        ]
        return list(dict.fromkeys(ordered))


def treatment_note(treatment: Sequence[str]) -> str:
    """The note under a table with a treatment: what was compared on purpose, what still is
    checked."""
    return (
        f"treatment: {', '.join(treatment)}, varied on purpose: each value is its own row and "
        "competes for best values; every other data, scenario, evaluation, metric and epoch "
        "setting is still checked for comparability"
    )


def split_title(split: dict[str, Any]) -> str | None:
    """What every run of a table (or aggregate) shares, e.g. ``phase: tuning, data.name: digits``;
    None without a split."""
    if not split:
        return None
    return ", ".join(f"{k.removeprefix('tags.')}: {value_text(v)}" for k, v in split.items())


def build_tables(
    runs: RunFrame,
    columns: Sequence[ColumnSpec],
    group_by: Sequence[str] | None = None,
    split_by: Sequence[str] = (),
    baseline: BaselineSpec | None = None,
    sort_by: ColumnSpec | None = None,
    ci: CiMethod = DEFAULT_CI,
    confidence: float = DEFAULT_CONFIDENCE,
    treatment: Sequence[str] = (),
) -> list[Table]:
    """The report tables of ``runs``; ``group_by=None`` groups by the keys varying per table;
    ``sort_by``: rows ordered best first by that column's mean (undefined last), a leaderboard;
    ``ci``: the interval of cells and deltas (``t``, ``bootstrap`` or ``none``) at ``confidence``,
    which also sets the tests' level α = 1 - confidence; ``treatment``: keys varied on purpose
    (checked by `clbench.reporting.treatment.check_treatment`), each value its own row and left
    out of the comparability check."""
    phase = [PHASE_KEY] if PHASE_KEY in runs.tag_keys else []
    split_keys = list(dict.fromkeys([*phase, *split_by]))
    tables = []
    for split_values, members in partition(runs, range(len(runs.frame)), split_keys):
        if group_by is None:
            # settings that never change results (checkpointing) do not split seeds into rows
            varying = varying_keys([runs.configs[i] for i in members])
            chosen = [k for k in varying if distinguishes_results(k)]
            keys = label_key_order(list(dict.fromkeys([*chosen, *treatment])))
        else:
            keys = list(dict.fromkeys([*group_by, *treatment]))
            keys = [k for k in keys if k not in split_keys]
        rows = [
            Row(label="", keys=dict(zip(keys, values, strict=True)), runs=list(row_runs))
            for values, row_runs in partition(runs, members, keys)
        ]
        _label_rows(rows, runs, keys, show_all=group_by is not None)
        split = dict(zip(split_keys, split_values, strict=True))
        table = Table(
            split, keys, list(columns), rows, ci=ci, confidence=confidence, treatment=[*treatment]
        )
        if treatment:
            table.notes.append(treatment_note(treatment))
        for row in rows:
            row.stats = {c.name: _stat(runs, row.runs, c.name, ci, confidence) for c in columns}
        if sort_by is not None:
            rows.sort(key=lambda row: _rank_key(row.stats[sort_by.name].mean, sort_by))
        tables.append(table)

    if baseline is not None:
        _attach_baseline(tables, runs, baseline)
    for table in tables:
        _mark_incomparable(table, runs)
        _mark_partial(table, runs)
        _mark_best(table, runs)
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


def partition(
    runs: RunFrame, members: Sequence[int], keys: Sequence[str]
) -> list[tuple[tuple[Any, ...], list[int]]]:
    """Runs grouped by their values of ``keys``, groups sorted by those values (GTEP phases
    tuning first); tables, rows and aggregates all group this way."""
    groups: dict[tuple[Any, ...], list[int]] = {}
    for i in members:
        groups.setdefault(tuple(runs.key_value(i, k) for k in keys), []).append(i)
    return sorted(
        groups.items(),
        key=lambda item: [_value_order(k, v) for k, v in zip(keys, item[0], strict=True)],
    )


def _stat(
    runs: RunFrame, members: Sequence[int], column: str, ci: CiMethod, confidence: float
) -> Stat:
    values = runs.frame.loc[list(members), column].tolist()
    seeds = [runs.key_value(i, "seed") for i in members]
    return summarize(values, seeds, ci, confidence)


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
    rows = [row.runs for row in table.rows]
    differences = find_differences(runs, rows, reference, table.treatment)
    dependent = [c.name for c in table.columns if c.schedule_dependent]
    for row, found in zip(table.rows, differences, strict=True):
        details = "; ".join(d.describe() for d in found)
        if any(not d.schedule for d in found):
            row.comparable = False
            row.notes.append(f"not comparable: {details}; left out of best values")
        elif found and dependent:
            # only the continual curve was evaluated otherwise: boundary metrics still compare
            row.schedule_differs = True
            note = (
                f"other evaluation schedule: {details}; this column depends on it, so the value "
                "is not comparable and left out of best values"
            )
            for name in dependent:
                row.add_cell_note(name, note)


def _mark_partial(table: Table, runs: RunFrame) -> None:
    for row in table.rows:
        statuses = [runs.frame.at[i, "status"] for i in row.runs]
        partial = [s for s in statuses if s != "finished"]
        if partial:
            kinds = ", ".join(sorted(set(partial)))
            row.notes.append(f"includes {len(partial)} unfinished run(s) ({kinds})")


def _mark_best(table: Table, runs: RunFrame) -> None:
    """Per directional column: the top row (best mean among comparable rows of 2+ runs) and
    every such row a Holm-corrected two-sided t-test does not find worse than it."""
    untested: list[str] = []
    for column in table.columns:
        if column.direction is None:
            continue
        candidates = [
            row
            for row in table.rows
            if row.comparable_on(column) and row.stats[column.name].mean is not None
        ]
        if len(candidates) < 2:
            continue  # nothing to compare
        testable = [row for row in candidates if row.stats[column.name].n >= 2]
        if len(testable) < len(candidates):
            untested.append(column.name)
        if len(testable) < 2:
            continue  # no test possible: marking one row would claim what nobody tested
        top = min(testable, key=lambda row: _rank_key(row.stats[column.name].mean, column))
        reference = top.stats[column.name]
        tested = [
            (row, test)
            for row in testable
            if row is not top and (test := compare(row.stats[column.name], reference)) is not None
        ]
        adjusted = holm([test.p for _, test in tested])
        top.best.add(column.name)
        for (row, test), p in zip(tested, adjusted, strict=True):
            row.vs_best[column.name] = replace(test, p_holm=p)
            if p > table.alpha:
                row.best.add(column.name)
        _note_fewer_pairs(runs, column, candidates)
    if untested:
        table.notes.append(
            "a cell over one run (n=1) cannot be tested and is never bold ("
            + ", ".join(untested)
            + ")"
        )


def _note_fewer_pairs(runs: RunFrame, column: ColumnSpec, candidates: Sequence[Row]) -> None:
    """A best gap mean over fewer (task, phase) pairs than another compared row's says so."""
    pairs = column.pairs
    if pairs is None or pairs not in runs.frame.columns:
        return  # older runs do not record pair counts
    counts = {id(row): runs.frame.loc[row.runs, pairs].dropna() for row in candidates}
    means = {k: float(v.mean()) for k, v in counts.items() if len(v)}
    if not means:
        return
    most = max(means.values())
    for row in candidates:
        count = means.get(id(row))
        if column.name in row.best and count is not None and count < most:
            row.add_cell_note(
                column.name,
                f"{column.name} over {_count_text(count)} of up to {_count_text(most)} pairs "
                f"({pairs}) among the compared rows",
            )


def _count_text(value: float) -> str:
    return str(int(value)) if value.is_integer() else f"{value:.1f}"


def _compute_deltas(table: Table) -> None:
    """Each row's mean minus the baseline's, with the two-sided test of the difference (paired
    over shared seeds, else Welch) and its Holm correction over the table's rows per column."""
    baseline = table.baseline
    if baseline is None:
        return
    for column in table.columns:
        reference = baseline.stats[column.name]
        tested: list[tuple[Row, Comparison]] = []
        for row in table.rows:
            stat = row.stats[column.name]
            row.deltas[column.name] = (
                None if stat.mean is None or reference.mean is None else stat.mean - reference.mean
            )
            if row is baseline:
                continue
            test = compare(stat, reference, table.confidence, table.ci)
            if test is not None:
                tested.append((row, test))
        adjusted = holm([test.p for _, test in tested])
        for (row, test), p in zip(tested, adjusted, strict=True):
            row.vs_baseline[column.name] = replace(test, p_holm=p)
