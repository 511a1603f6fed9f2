"""The statistics behind report cells: intervals of a mean, two-row tests, Holm's correction.

A cell summarises one metric over the runs (seeds) of a row as a `Stat`: mean, sample std, n and
an interval for the mean, Student t (``t``, the default) or a bootstrap interval (``bootstrap``,
scipy.stats.bootstrap, BCa). Two rows are compared with a two-sided t-test: paired
(scipy.stats.ttest_rel) when both rows hold exactly the same seeds once each, so that seed-level
noise shared by both (data order, initialisation) cancels, otherwise Welch's unequal-variance test
(scipy.stats.ttest_ind, equal_var=False). Several rows tested against one reference are corrected
with Holm's step-down method (Holm 1979, "A simple sequentially rejective multiple test
procedure"), which controls the family-wise error rate without assuming independent tests.

Fewer than two values give no interval and no test (``None``): one run says nothing about spread.
"""

from __future__ import annotations

import inspect
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from scipy import stats

CI_METHODS = ("t", "bootstrap", "none")
CiMethod = Literal["t", "bootstrap", "none"]
DEFAULT_CI: CiMethod = "t"
DEFAULT_CONFIDENCE = 0.95
# Fixed resampling seed: the same runs always give the same bootstrap interval.
BOOTSTRAP_SEED = 0
BOOTSTRAP_RESAMPLES = 9999
# Means closer than this are equal: rounding noise (0.1 + 0.2 vs 0.3) is no difference, even
# between rows without spread, where the t statistic would be infinite.
TIE_TOLERANCE = 1e-12
TestName = Literal["welch", "paired"]


@dataclass(frozen=True)
class Stat:
    """One metric over the runs of a row: mean, sample std (ddof=1), n and an interval.

    ``values`` and ``seeds`` are the defined values and their runs' seeds, in the same order (for
    paired tests); ``ci_low``/``ci_high`` are None with fewer than two values or ``--ci none``.
    """

    mean: float | None
    std: float | None
    n: int
    ci_low: float | None = None
    ci_high: float | None = None
    values: tuple[float, ...] = ()
    seeds: tuple[Any, ...] = ()


def summarize(
    values: Sequence[float],
    seeds: Sequence[Any] = (),
    ci: CiMethod = DEFAULT_CI,
    confidence: float = DEFAULT_CONFIDENCE,
) -> Stat:
    """`Stat` of the defined ``values`` (NaN and None dropped, with their seeds)."""
    seeds = list(seeds) if seeds else [None] * len(values)
    kept = [
        (float(v), s)
        for v, s in zip(values, seeds, strict=True)
        if v is not None and not math.isnan(v)
    ]
    data = tuple(v for v, _ in kept)
    n = len(data)
    if n == 0:
        return Stat(None, None, 0)
    mean = float(np.mean(data))
    std = float(np.std(data, ddof=1)) if n > 1 else None
    interval = None
    if ci == "t":
        interval = t_interval(data, confidence)
    elif ci == "bootstrap":
        interval = bootstrap_interval(data, confidence)
    low, high = interval if interval is not None else (None, None)
    return Stat(mean, std, n, low, high, data, tuple(s for _, s in kept))


def t_interval(values: Sequence[float], confidence: float) -> tuple[float, float] | None:
    """Student t interval of the mean: mean ± t_{(1+c)/2, n-1} · s/√n; None for n < 2."""
    n = len(values)
    if n < 2:
        return None
    mean = float(np.mean(values))
    sem = float(np.std(values, ddof=1)) / math.sqrt(n)
    if sem == 0:  # identical values: scipy rejects a zero scale; the interval is the point
        return (mean, mean)
    low, high = stats.t.interval(confidence, n - 1, loc=mean, scale=sem)
    return (float(low), float(high))


def _rng_keyword(seed: int) -> dict[str, Any]:
    """scipy >= 1.15 takes ``rng``; older releases only ``random_state``."""
    name = "rng" if "rng" in inspect.signature(stats.bootstrap).parameters else "random_state"
    return {name: np.random.default_rng(seed)}


def bootstrap_interval(
    values: Sequence[float], confidence: float, seed: int = BOOTSTRAP_SEED
) -> tuple[float, float] | None:
    """BCa bootstrap interval of the mean (scipy.stats.bootstrap); None for n < 2.

    With few runs the bootstrap distribution has few distinct values and the interval is too
    narrow; the t interval is the default for that reason.
    """
    data = np.asarray(values, dtype=float)
    if data.size < 2:
        return None
    if np.all(data == data[0]):  # no spread: BCa divides by zero; the interval is the point
        return (float(data[0]), float(data[0]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # degenerate resamples of tiny samples warn
        result = stats.bootstrap(
            (data,),
            np.mean,
            confidence_level=confidence,
            n_resamples=BOOTSTRAP_RESAMPLES,
            method="BCa",
            **_rng_keyword(seed),
        )
    low, high = result.confidence_interval
    if math.isnan(low) or math.isnan(high):
        return None
    return (float(low), float(high))


@dataclass(frozen=True)
class Comparison:
    """A two-sided test of row a against row b: difference of means (a - b), its interval,
    the p-value, and ``p_holm`` once the table corrects a family of such tests."""

    test: TestName
    difference: float
    p: float
    ci_low: float | None
    ci_high: float | None
    p_holm: float | None = None


def is_paired(a: Stat, b: Stat) -> bool:
    """Both rows hold the same seeds, each once: values can be matched seed by seed."""
    if None in a.seeds or None in b.seeds:
        return False
    once = len(set(a.seeds)) == len(a.seeds) and len(set(b.seeds)) == len(b.seeds)
    return once and set(a.seeds) == set(b.seeds)


def compare(
    a: Stat, b: Stat, confidence: float = DEFAULT_CONFIDENCE, ci: CiMethod = DEFAULT_CI
) -> Comparison | None:
    """Two-sided paired or Welch t-test of a against b; None when either has fewer than 2 values.

    The interval of the difference is the test's t interval (paired: of the per-seed
    differences; Welch: with Welch-Satterthwaite degrees of freedom), or a bootstrap interval with
    ``ci="bootstrap"`` (paired: resampling seeds; Welch: resampling each row), or none.
    """
    if a.n < 2 or b.n < 2:
        return None
    paired = is_paired(a, b)
    x = np.asarray(a.values, dtype=float)
    y = np.asarray(b.values, dtype=float)
    if paired:
        by_seed = dict(zip(b.seeds, b.values, strict=True))
        y = np.asarray([by_seed[s] for s in a.seeds], dtype=float)
    difference = float(x.mean() - y.mean())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # nearly identical values: scipy warns of precision loss
        result = stats.ttest_rel(x, y) if paired else stats.ttest_ind(x, y, equal_var=False)
        p = float(result.pvalue)
        if ci == "t":
            interval = result.confidence_interval(confidence_level=confidence)
            low, high = float(interval.low), float(interval.high)
        elif ci == "bootstrap":
            low, high = _bootstrap_difference(x, y, paired, confidence)
        else:
            low = high = math.nan
    if math.isnan(p) or abs(difference) <= TIE_TOLERANCE:  # equal means: nothing to show
        p = 1.0
    defined = not (math.isnan(low) or math.isnan(high))
    no_spread = _constant(x - y) if paired else _constant(x) and _constant(y)
    if not defined and no_spread:
        low = high = difference  # no spread at all: the interval is the point
        defined = True
    return Comparison(
        "paired" if paired else "welch",
        difference,
        p,
        low if defined else None,
        high if defined else None,
    )


def _constant(values: np.ndarray) -> bool:
    return bool(np.all(values == values[0]))


def _bootstrap_difference(
    x: np.ndarray, y: np.ndarray, paired: bool, confidence: float
) -> tuple[float, float]:
    if paired:
        interval = bootstrap_interval(x - y, confidence)
        return interval if interval is not None else (math.nan, math.nan)
    if _constant(x) and _constant(y):
        point = float(x[0] - y[0])
        return (point, point)
    result = stats.bootstrap(
        (x, y),
        lambda u, v, axis=-1: np.mean(u, axis=axis) - np.mean(v, axis=axis),
        confidence_level=confidence,
        n_resamples=BOOTSTRAP_RESAMPLES,
        method="BCa",
        **_rng_keyword(BOOTSTRAP_SEED),
    )
    return (float(result.confidence_interval.low), float(result.confidence_interval.high))


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm-adjusted p-values, in the input order (reject where adjusted p <= α).

    Sorted ascending, the i-th smallest (0-based) is multiplied by m - i; a running maximum keeps
    the adjusted values monotone, so rejection stops at the first test that fails.
    """
    m = len(pvalues)
    adjusted = [1.0] * m
    running = 0.0
    for rank, index in enumerate(sorted(range(m), key=lambda i: pvalues[i])):
        running = max(running, min(1.0, (m - rank) * pvalues[index]))
        adjusted[index] = running
    return adjusted
