"""Which settings make two rows' numbers comparable, and which rows of a table break that.

Numbers are comparable when the runs saw the same data stream, were evaluated by the same protocol
and scored by the same metric definitions: the ``data`` section (but where the files live),
``scenario``, ``eval`` (but the evaluation batch size, which changes no number), ``metrics`` and
``train.epochs`` (the training budget per phase). Methods, their hyperparameters, the model and the
rest of ``train`` are what a table compares, so they may differ freely.

Each comparability key is checked against a reference value: the baseline row's when there is one,
otherwise the value most runs of the table share (ties: the first row's). A row whose runs have
another value, or a mix of values, is not comparable: it gets a footnote naming the setting and is
left out of best-value marking.

The evaluation *schedule* (`SCHEDULE_KEYS`: how often and on which subset the continual curve is
evaluated) is the one exception made per column: it changes only the continual-curve columns
(`clbench.reporting.columns.schedule_dependent`), so a row evaluated on another schedule stays
comparable on the boundary metrics (final_acc, forgetting, ...). Every other difference, metric
options included, makes the whole row incomparable.

A study may declare *treatment* keys that it varies on purpose (`clbench.reporting.treatment`,
e.g. ``scenario.kernel``): they are not checked, every other key still is.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from clbench.reporting.frame import RunFrame, value_sort_key
from clbench.reporting.treatment import stratum_key
from clbench.results.labels import value_text

COMPARABLE_SECTIONS = ("data", "scenario", "eval", "metrics")
COMPARABLE_KEYS = ("train.epochs",)
# eval.online_accuracy only adds the `online` rows and online_acc (training unchanged: tested in
# tests/engine/test_boundary_free_engine.py); a run without them shows no online_acc
NO_EFFECT_ON_NUMBERS = ("data.root", "data.download", "eval.batch_size", "eval.online_accuracy")
# When the continual curve is evaluated and on what (clbench.engine.runner: `eval.every` of the
# `eval.counter`, pre-update points; clbench.engine.evaluator: the fixed subsets). The full test
# sets at phase ends and training itself do not depend on them. `eval.boundary_full_eval` and
# `eval.track_forward` decide whether boundary metrics exist at all, so they stay whole-row.
SCHEDULE_KEYS = (
    "eval.schedule",
    "eval.every",
    "eval.dense",
    "eval.growth",
    "eval.max_every",
    "eval.counter",
    "eval.subset_size",
    "eval.subset_sampling",
    "eval.preupdate_every_task",
)


def is_comparability_key(key: str) -> bool:
    if key in NO_EFFECT_ON_NUMBERS:
        return False
    return key in COMPARABLE_KEYS or key.split(".", 1)[0] in COMPARABLE_SECTIONS


@dataclass(frozen=True)
class Difference:
    """A row's values of one comparability key that differ from the table's reference value."""

    key: str
    values: tuple[Any, ...]
    reference: Any
    from_baseline: bool = False  # the reference is the baseline row's value, not most runs'

    @property
    def schedule(self) -> bool:
        """A difference of evaluation schedule only (incomparable on schedule-dependent columns)."""
        return self.key in SCHEDULE_KEYS

    def describe(self) -> str:
        """``eval.every=5 (most runs: 1)``; ``mixes eval.every=1 / 5 (baseline: 1)``."""
        values = sorted(self.values, key=value_sort_key)
        shown = f"{self.key}={' / '.join(value_text(v) for v in values)}"
        mixed = "mixes " if len(self.values) > 1 else ""
        reference_name = "baseline" if self.from_baseline else "most runs"
        return f"{mixed}{shown} ({reference_name}: {value_text(self.reference)})"


def find_differences(
    runs: RunFrame,
    rows: Sequence[Sequence[int]],
    reference_row: int | None = None,
    treatment: Sequence[str] = (),
) -> list[list[Difference]]:
    """For each row (its run indices) the comparability keys where it departs from the reference.

    When a section's ``name`` differs (another dataset, another scenario), only the name is
    reported: the section's other keys then differ as a matter of course. ``treatment`` keys
    (row keys, one value per row) differ on purpose and are not checked; a section whose
    ``name`` is one has its other keys checked among the rows of each name
    (`clbench.reporting.treatment`).
    """
    keys = [k for k in runs.config_keys if is_comparability_key(k) and k not in treatment]
    found: list[list[Difference]] = [[] for _ in rows]
    for key in keys:
        per_row = [list(dict.fromkeys(runs.key_value(i, key) for i in row)) for row in rows]
        for stratum in _strata(runs, rows, stratum_key(key, treatment)):
            baseline = reference_row if reference_row in stratum else None
            reference, from_baseline = _reference(per_row, stratum, baseline)
            for index in stratum:
                if per_row[index] != [reference]:
                    values = tuple(per_row[index])
                    found[index].append(Difference(key, values, reference, from_baseline))
    return [_names_first(differences) for differences in found]


def _strata(runs: RunFrame, rows: Sequence[Sequence[int]], by: str | None) -> list[list[int]]:
    """Row indices grouped by their value of the treatment key ``by`` (None: one group)."""
    if by is None:
        return [list(range(len(rows)))]
    groups: dict[Any, list[int]] = {}
    for index, row in enumerate(rows):  # a treatment key is a row key: one value per row
        groups.setdefault(runs.key_value(row[0], by), []).append(index)
    return list(groups.values())


def _reference(
    per_row: list[list[Any]], indices: list[int], reference_row: int | None
) -> tuple[Any, bool]:
    """The reference value among the rows ``indices`` and whether it is the baseline's."""
    if reference_row is not None and len(per_row[reference_row]) == 1:
        return per_row[reference_row][0], True
    counts: Counter[Any] = Counter()
    for index in indices:
        counts.update(per_row[index])
    top = max(counts.values())
    # Counter keeps first-seen order, so a tie goes to the first row's value
    return next(v for v, n in counts.items() if n == top), False


def _names_first(differences: list[Difference]) -> list[Difference]:
    renamed = {d.key.rsplit(".", 1)[0] for d in differences if d.key.endswith(".name")}
    return [
        d for d in differences if d.key.endswith(".name") or d.key.rsplit(".", 1)[0] not in renamed
    ]
