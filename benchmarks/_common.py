"""Helpers shared by the benchmark scripts (run as files: `python benchmarks/<name>.py`)."""

from __future__ import annotations

import statistics


def mean_std(values: list[float], fmt: str = "{:.3f}") -> str:
    """``mean ± sample std`` of ``values`` (std 0 for one value); ``null`` when empty."""
    if not values:
        return "null"
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{fmt.format(statistics.mean(values))} ± {fmt.format(sd)}"
