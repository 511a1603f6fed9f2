"""The summary metrics a console shows first (`clbench run`, `clbench info`); how values print."""

from __future__ import annotations

from typing import Any

# The summary metrics shown first (the console table of `clbench run`, `clbench info`), with
# what each means.
HEADLINE: tuple[tuple[str, str], ...] = (
    ("final_acc", "final accuracy (full test sets, task mean)"),
    ("aia", "average incremental accuracy"),
    ("forgetting", "average forgetting"),
    ("bwt", "backward transfer"),
    ("fwt", "forward transfer (vs initial model)"),
    ("min_acc", "min-ACC (worst accuracy of old tasks)"),
    ("wc_acc", "WC-ACC (worst-case accuracy)"),
    ("wf_10", "windowed forgetting WF^10"),
    ("wf_100", "windowed forgetting WF^100"),
    ("wp_10", "windowed plasticity WP^10"),
    ("wp_100", "windowed plasticity WP^100"),
    ("lca", "learning curve area LCA"),
    ("gap_depth_mean", "stability-gap depth (mean over boundaries)"),
    ("recovery_time_mean", "gap recovery time, updates (mean of recovered)"),
)


def format_value(value: Any) -> str:
    """A summary value as shown in plain text: ``null`` for None, floats to 4 decimals."""
    if value is None:
        return "null"
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)
