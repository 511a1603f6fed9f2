"""Which direction is better for each summary metric and budget entry, and its readable name.

Reports (best values, ↑/↓ in headers) and figures (↑/↓ and names on metric bars) both read this
one table, so it sits below both packages (`clbench.reporting.columns` re-exports it).
"""

from __future__ import annotations

import re
from typing import Literal

Direction = Literal["higher", "lower"]

# Summary metrics (clbench.metrics.compute_metrics) and budget entries (summary.json "budget").
HIGHER_IS_BETTER = frozenset(
    {"final_acc", "aia", "bwt", "fwt", "min_acc", "wc_acc", "lca", "recovered_fraction"}
    | {"boundary_min_acc"}
    # boundary-free streams (clbench.metrics.boundary_free)
    | {"online_acc", "anytime_acc", "decline_min_acc", "decline_recovered_fraction"}
)
# Configured amounts (updates, samples seen, buffer size, parameter counts) describe the setting
# rather than an outcome: they have no direction and are never marked best.
LOWER_IS_BETTER = frozenset(
    {"forgetting", "gap_depth_mean", "recovery_time_mean", "buffer_bytes"}
    | {"decline_gap_depth_mean", "decline_recovery_time_mean"}
)
# Names that carry a parameter or a unit: windowed metrics (wf_10, wp_100) and measured resources,
# wall-clock times (train_time_s, eval_time_s, checkpoint_time_s) and memory (peak_memory_mb).
PATTERN_DIRECTIONS: tuple[tuple[re.Pattern[str], Direction], ...] = (
    (re.compile(r"wf_\d+"), "lower"),
    (re.compile(r"wp_\d+"), "higher"),
    (re.compile(r".+_time_s"), "lower"),
    (re.compile(r".+_mb"), "lower"),
)

# What a figure writes next to a metric's name (the name itself stays: it is what --metrics takes).
READABLE_NAMES = {
    "final_acc": "final accuracy",
    "aia": "average incremental accuracy",
    "forgetting": "forgetting",
    "bwt": "backward transfer",
    "fwt": "forward transfer",
    "min_acc": "minimum accuracy (min-ACC)",
    "wc_acc": "worst-case accuracy (WC-ACC)",
    "boundary_min_acc": "min-ACC at boundaries only",
    "hidden_gap": "min-ACC drop hidden at boundaries",
    "lca": "learning curve area",
    "gap_depth_mean": "stability-gap depth",
    "recovery_time_mean": "gap recovery time (updates)",
    "recovered_fraction": "gaps recovered (fraction)",
    "gap_pairs": "gap pairs",
    "recovered_pairs": "recovered gap pairs",
    "forgotten_pairs": "forgotten gap pairs",
    "online_acc": "online accuracy",
    "anytime_acc": "anytime accuracy",
    "decline_min_acc": "min-ACC after declines",
    "decline_gap_depth_mean": "gap depth after declines",
    "decline_recovery_time_mean": "recovery after declines (updates)",
    "decline_recovered_fraction": "declines recovered (fraction)",
    "updates": "updates",
    "samples_seen": "training samples seen",
    "train_time_s": "training time (s)",
    "eval_time_s": "evaluation time (s)",
    "checkpoint_time_s": "checkpoint time (s)",
    "peak_memory_mb": "peak device memory (MB)",
    "peak_rss_mb": "peak process memory (MB)",
    "buffer_size": "memory buffer (samples)",
    "buffer_bytes": "memory buffer (bytes)",
    "params_total": "parameters",
    "params_trainable": "trainable parameters",
}
PATTERN_NAMES = (
    (re.compile(r"wf_(\d+)"), "windowed forgetting, w={}"),
    (re.compile(r"wp_(\d+)"), "windowed plasticity, w={}"),
)


def direction(name: str) -> Direction | None:
    """Whether a higher or lower value of a metric or budget entry is better (None: neither)."""
    if name in HIGHER_IS_BETTER:
        return "higher"
    if name in LOWER_IS_BETTER:
        return "lower"
    return next((d for pattern, d in PATTERN_DIRECTIONS if pattern.fullmatch(name)), None)


def readable_name(name: str) -> str:
    """``final accuracy`` for ``final_acc``; an unknown name is returned as it is."""
    if name in READABLE_NAMES:
        return READABLE_NAMES[name]
    for pattern, text in PATTERN_NAMES:
        match = pattern.fullmatch(name)
        if match:
            return text.format(*match.groups())
    return name


def arrow(name: str) -> str:
    """``↑`` (higher is better), ``↓`` (lower is better) or nothing."""
    return {"higher": "↑", "lower": "↓"}.get(direction(name) or "", "")
