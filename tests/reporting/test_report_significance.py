"""`clbench.reporting.significance`: intervals, t-tests and Holm against hand-computed values.

Expected numbers come from closed forms, not from the functions under test: the Student t
distribution with 2 degrees of freedom has the quantile t_p = (2p - 1) / sqrt(2p(1 - p)) and the
two-sided p-value 1 - t / sqrt(2 + t²); Welch's statistic and degrees of freedom are written out
(Welch-Satterthwaite); Holm's adjustment is done by hand.
"""

from __future__ import annotations

import math
import statistics

import numpy as np
import pytest
from scipy import stats

from clbench.reporting.significance import (
    Stat,
    bootstrap_interval,
    compare,
    holm,
    is_paired,
    summarize,
    t_interval,
)


def t_quantile_df2(p: float) -> float:
    """Closed form of the Student t quantile with 2 degrees of freedom."""
    return (2 * p - 1) / math.sqrt(2 * p * (1 - p))


def two_sided_p_df2(t: float) -> float:
    """Closed form of the two-sided p-value of |t| with 2 degrees of freedom."""
    return 1 - abs(t) / math.sqrt(2 + t * t)


def stat(values: list[float], seeds: list[int] | None = None) -> Stat:
    return summarize(values, seeds or list(range(100, 100 + len(values))))


# --- intervals of a mean -------------------------------------------------------------------------


def test_t_quantile_closed_form_matches_the_printed_table():
    # Student t tables: t_{0.975, 2} = 4.303, t_{0.95, 2} = 2.920
    assert t_quantile_df2(0.975) == pytest.approx(4.303, abs=5e-4)
    assert t_quantile_df2(0.95) == pytest.approx(2.920, abs=5e-4)


@pytest.mark.parametrize("confidence", [0.95, 0.90])
def test_t_interval_is_mean_pm_t_quantile_times_standard_error(confidence):
    values = [0.80, 0.85, 0.90]  # mean 0.85, s = 0.05
    half = t_quantile_df2((1 + confidence) / 2) * 0.05 / math.sqrt(3)
    low, high = t_interval(values, confidence)
    assert (low, high) == pytest.approx((0.85 - half, 0.85 + half), abs=1e-12)
    if confidence == 0.95:
        assert (low, high) == pytest.approx((0.7258, 0.9742), abs=1e-4)


def test_no_interval_from_one_value_and_a_point_from_identical_values():
    assert t_interval([0.5], 0.95) is None
    assert bootstrap_interval([0.5], 0.95) is None
    assert t_interval([0.5, 0.5, 0.5], 0.95) == (0.5, 0.5)
    assert bootstrap_interval([0.5, 0.5, 0.5], 0.95) == (0.5, 0.5)


def test_bootstrap_interval_is_close_to_the_normal_one_for_a_symmetric_sample():
    values = np.linspace(0.0, 1.0, 21)  # symmetric around 0.5: BCa ~ percentile ~ normal
    half = 1.959964 * statistics.stdev(values) / math.sqrt(len(values))
    low, high = bootstrap_interval(values, 0.95)
    assert (low, high) == pytest.approx((0.5 - half, 0.5 + half), abs=0.02)
    assert bootstrap_interval(values, 0.95) == (low, high)  # fixed resampling seed
    narrower = bootstrap_interval(values, 0.80)
    assert low < narrower[0] < narrower[1] < high


def test_summarize_drops_undefined_values_with_their_seeds():
    result = summarize([0.8, math.nan, 0.85, None, 0.9], [0, 1, 2, 3, 4])  # type: ignore[list-item]
    assert result.n == 3 and result.values == (0.8, 0.85, 0.9) and result.seeds == (0, 2, 4)
    assert result.mean == pytest.approx(0.85)
    assert result.std == pytest.approx(0.05)  # ddof = 1
    assert (result.ci_low, result.ci_high) == pytest.approx(t_interval([0.8, 0.85, 0.9], 0.95))
    single = summarize([0.7], [0])
    assert single.std is None and single.ci_low is None and single.ci_high is None
    assert summarize([0.8, 0.9], ci="none").ci_low is None
    assert summarize([math.nan]) == Stat(None, None, 0)


# --- tests between two rows ----------------------------------------------------------------------


def test_welch_test_equals_the_hand_computed_statistic():
    a, b = [0.80, 0.85, 0.90], [0.60, 0.70]
    va, vb = 0.05**2 / 3, statistics.variance(b) / 2  # s²/n per row
    se = math.sqrt(va + vb)
    t = 0.20 / se
    df = (va + vb) ** 2 / (va**2 / 2 + vb**2 / 1)  # Welch-Satterthwaite
    assert t == pytest.approx(3.4641, abs=1e-4) and df == pytest.approx(1.6842, abs=1e-4)
    result = compare(stat(a), stat(b))
    assert result is not None and result.test == "welch"
    assert result.difference == pytest.approx(0.20)
    assert result.p == pytest.approx(2 * stats.t.sf(t, df), rel=1e-9)
    half = stats.t.ppf(0.975, df) * se
    assert (result.ci_low, result.ci_high) == pytest.approx((0.20 - half, 0.20 + half))


def test_paired_test_over_the_same_seeds_in_any_order():
    a = stat([0.80, 0.85, 0.90], [0, 1, 2])
    # the same seeds listed in another order: matched by seed, differences 0.1, 0.05, 0.15
    b = stat([0.75, 0.70, 0.80], [2, 0, 1])
    assert is_paired(a, b)
    result = compare(a, b)
    assert result is not None and result.test == "paired"
    t = 0.10 / (0.05 / math.sqrt(3))
    assert result.p == pytest.approx(two_sided_p_df2(t), abs=1e-12)
    assert result.p == pytest.approx(0.0742, abs=1e-4)  # between the table's 0.05 and 0.10
    half = t_quantile_df2(0.975) * 0.05 / math.sqrt(3)
    assert (result.ci_low, result.ci_high) == pytest.approx((0.10 - half, 0.10 + half))


def test_other_or_repeated_seeds_are_not_paired():
    assert not is_paired(stat([1, 2, 3], [0, 1, 2]), stat([1, 2, 3], [0, 1, 3]))
    assert not is_paired(stat([1, 2, 3], [0, 0, 1]), stat([1, 2, 3], [0, 0, 1]))
    assert not is_paired(stat([1, 2], [0, 1]), stat([1, 2, 3], [0, 1, 2]))


def test_fewer_than_two_values_give_no_test_and_no_spread_gives_a_clear_answer():
    assert compare(stat([0.5]), stat([0.4, 0.6])) is None
    assert compare(stat([0.4, 0.6]), stat([0.5])) is None
    same = compare(stat([0.5, 0.5]), stat([0.5, 0.5]))
    assert same is not None and same.p == 1.0 and (same.ci_low, same.ci_high) == (0.0, 0.0)
    rounding = compare(stat([0.1 + 0.2, 0.1 + 0.2]), stat([0.3, 0.3]))  # 0.30000000000000004
    assert rounding is not None and rounding.p == 1.0
    apart = compare(stat([0.9, 0.9]), stat([0.5, 0.5]))
    assert apart is not None and apart.p == 0.0
    assert apart.ci_low == pytest.approx(0.4) and apart.ci_high == pytest.approx(0.4)


def test_difference_interval_follows_the_ci_method():
    a, b = stat([0.80, 0.85, 0.90, 0.86]), stat([0.60, 0.70, 0.65])
    assert compare(a, b, ci="none").ci_low is None  # type: ignore[union-attr]
    boot = compare(a, b, ci="bootstrap")
    assert boot is not None and boot.ci_low is not None and boot.ci_high is not None
    assert boot.ci_low < boot.difference < boot.ci_high
    assert boot.p == compare(a, b).p  # type: ignore[union-attr]  # the test is the t-test


# --- Holm ----------------------------------------------------------------------------------------


def test_holm_step_down_by_hand():
    # sorted: 0.005 (x4 = 0.02), 0.01 (x3 = 0.03), 0.03 (x2 = 0.06), 0.04 (x1 = 0.04 -> max 0.06)
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([0.5, 0.6]) == [1.0, 1.0]  # capped at 1
    assert holm([0.2]) == [0.2]  # one test: nothing to correct
    assert holm([]) == []
