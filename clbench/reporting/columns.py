"""What each report column means: which direction is better, how many decimals, the defaults,
whether the evaluation schedule can change it and which gap pair count it is averaged over.

Whether higher or lower is better comes from one table, `clbench.metrics.directions`, which the
figures read too; tables, best-value marking and every output format read it through here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# re-exported: reports (and the GTEP sweep) read the direction table through this module
from clbench.metrics.directions import HIGHER_IS_BETTER as HIGHER_IS_BETTER
from clbench.metrics.directions import LOWER_IS_BETTER as LOWER_IS_BETTER
from clbench.metrics.directions import PATTERN_DIRECTIONS as PATTERN_DIRECTIONS
from clbench.metrics.directions import Direction as Direction
from clbench.metrics.directions import direction as metric_direction

DEFAULT_METRICS = ("final_acc", "aia", "forgetting", "min_acc", "wc_acc", "wf_10", "gap_depth_mean")
DEFAULT_BUDGET = (
    "updates",
    "train_time_s",
    "eval_time_s",
    "peak_memory_mb",  # shown once runs record it
    "buffer_size",
    "params_trainable",
)
DEFAULT_COLUMNS = DEFAULT_METRICS + DEFAULT_BUDGET
ALL_METRICS = "all"  # ``--metrics all``: every metric and budget column

# Gap pair counts (how many (old task, phase) pairs a gap metric is defined over) are counts
# with no direction: more pairs is neither better nor worse, only a larger sample.
GAP_PAIR_COUNTS = ("gap_pairs", "recovered_pairs", "forgotten_pairs")
COUNTS = frozenset(
    {
        "updates",
        "samples_seen",
        "buffer_size",
        "buffer_bytes",
        "params_total",
        "params_trainable",
        *GAP_PAIR_COUNTS,
    }
)
# Which count each gap metric is averaged over: gap depth and the recovered fraction over every
# gap pair, recovery time over the recovered ones.
PAIRS_OF = {
    "gap_depth_mean": "gap_pairs",
    "recovered_fraction": "gap_pairs",
    "recovery_time_mean": "recovered_pairs",
}

# Columns the evaluation schedule (eval.every, eval.counter, eval.subset_size, ...) cannot
# change: boundary metrics read only the full test sets at phase ends (fwt also the untrained
# model's), and training never sees the schedule (evaluation draws no global random numbers and
# restores the training flags, clbench.engine.evaluator). Every other column, the continual-curve
# metrics (min_acc, wc_acc, wf_*, wp_*, lca, gap_*, recovery_*), eval_time_s, peak memory (the
# evaluation subsets live on the device) and any column not listed here, is schedule-dependent.
SCHEDULE_FREE = frozenset(
    {
        "final_acc",
        "aia",
        "forgetting",
        "bwt",
        "fwt",
        "updates",
        "samples_seen",
        "train_time_s",
        "checkpoint_time_s",
        "buffer_size",
        "buffer_bytes",
        "params_total",
        "params_trainable",
    }
)
# Facts a strategy records in summary.json "strategy_report" (FPF MACs and time, SLCA statistics
# bytes, View-Batch SSL terms), flattened to dotted names: they describe training, have no
# direction (each method reports its own) and are never marked best.
STRATEGY_REPORT_PREFIX = "strategy_report."
# Accuracies and other fractions; then coarser units by name pattern.
DEFAULT_DECIMALS = 3
PATTERN_DECIMALS = (
    (re.compile(r"recovery_time_mean"), 1),  # updates
    (re.compile(r".+_time_s"), 2),
    (re.compile(r".+_mb"), 1),
)


@dataclass(frozen=True)
class ColumnSpec:
    """How one metric column is judged and printed."""

    name: str
    direction: Direction | None
    decimals: int
    is_count: bool = False  # printed as an integer where the mean is one
    schedule_dependent: bool = True  # another evaluation schedule makes values incomparable

    @property
    def pairs(self) -> str | None:
        """The gap pair count this column's mean is taken over (None: not a gap metric)."""
        return PAIRS_OF.get(self.name)


def direction(name: str) -> Direction | None:
    """Whether a higher or lower value of a metric or budget column is better (None: neither)."""
    if name.startswith(STRATEGY_REPORT_PREFIX):
        return None
    return metric_direction(name)


def schedule_dependent(name: str) -> bool:
    """Whether another evaluation schedule can change the column's values (`SCHEDULE_FREE`)."""
    return name not in SCHEDULE_FREE and not name.startswith(STRATEGY_REPORT_PREFIX)


def column_spec(name: str, integral: bool = False) -> ColumnSpec:
    """The spec of a metric, budget or strategy-report column; unknown columns get no direction.

    ``integral``: every value is a whole number, so a strategy-report fact (MACs, bytes, terms)
    is printed as a count.
    """
    fact = name.startswith(STRATEGY_REPORT_PREFIX)
    dependent = schedule_dependent(name)
    if name in COUNTS or (fact and integral):
        return ColumnSpec(name, direction(name), 0, is_count=True, schedule_dependent=dependent)
    decimals = next((d for p, d in PATTERN_DECIMALS if p.fullmatch(name)), DEFAULT_DECIMALS)
    return ColumnSpec(name, direction(name), decimals, schedule_dependent=dependent)
