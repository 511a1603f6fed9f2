"""What each report column means: which direction is better, how many decimals, the defaults.

This is the one place that says whether higher or lower is better for a metric; tables, best-value
marking and every output format read it from here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

Direction = Literal["higher", "lower"]

# Summary metrics (clbench.metrics.compute_metrics) and budget entries (summary.json "budget").
HIGHER_IS_BETTER = frozenset(
    {"final_acc", "aia", "bwt", "fwt", "min_acc", "wc_acc", "lca", "recovered_fraction"}
)
# Configured amounts (updates, samples seen, buffer size, parameter counts) describe the setting
# rather than an outcome: they have no direction and are never marked best.
LOWER_IS_BETTER = frozenset({"forgetting", "gap_depth_mean", "recovery_time_mean", "buffer_bytes"})
# Names that carry a parameter or a unit: windowed metrics (wf_10, wp_100) and measured resources,
# wall-clock times (train_time_s, eval_time_s, checkpoint_time_s) and memory (peak_memory_mb).
PATTERN_DIRECTIONS: tuple[tuple[re.Pattern[str], Direction], ...] = (
    (re.compile(r"wf_\d+"), "lower"),
    (re.compile(r"wp_\d+"), "higher"),
    (re.compile(r".+_time_s"), "lower"),
    (re.compile(r".+_mb"), "lower"),
)

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

COUNTS = frozenset(
    {"updates", "samples_seen", "buffer_size", "buffer_bytes", "params_total", "params_trainable"}
)
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


def direction(name: str) -> Direction | None:
    """Whether a higher or lower value of a metric or budget column is better (None: neither)."""
    if name in HIGHER_IS_BETTER:
        return "higher"
    if name in LOWER_IS_BETTER:
        return "lower"
    return next((d for pattern, d in PATTERN_DIRECTIONS if pattern.fullmatch(name)), None)


def column_spec(name: str) -> ColumnSpec:
    """The spec of a metric or budget column; unknown columns get no direction."""
    if name in COUNTS:
        return ColumnSpec(name, direction(name), 0, is_count=True)
    decimals = next((d for p, d in PATTERN_DECIMALS if p.fullmatch(name)), DEFAULT_DECIMALS)
    return ColumnSpec(name, direction(name), decimals)
