"""Claims decided by intervals (clbench.reporting.claims) on hand-made run tables.

Hand-computed numbers: values 0.50, 0.52, 0.54 have mean 0.52, s = 0.02, t_{0.975,2} = 4.3027,
so the interval is 0.52 ± 4.3027 * 0.02 / sqrt(3) = [0.4703, 0.5697].
"""

from __future__ import annotations

import pandas as pd
import pytest

from clbench.errors import ConfigError
from clbench.reporting.claims import Claim, decide

approx = pytest.approx


def runs(**methods: list[float]) -> pd.DataFrame:
    rows = [
        {"seed": seed, "tags.method": method, "train.epochs": 5, "final_acc": value}
        for method, values in methods.items()
        for seed, value in enumerate(values)
    ]
    return pd.DataFrame(rows)


def claim(**fields) -> Claim:
    return Claim.from_dict({"text": "t", "metric": "final_acc", **fields})


def test_a_value_above_its_threshold_holds_with_the_t_interval():
    frame = runs(er=[0.50, 0.52, 0.54])
    verdict = decide(frame, claim(rows={"tags.method": "er"}, threshold=0.46))
    assert verdict.verdict == "holds"
    assert verdict.value.mean == approx(0.52)
    assert verdict.interval == approx((0.4703, 0.5697), abs=1e-4)
    assert decide(frame, claim(rows={"tags.method": "er"}, threshold=0.5)).verdict == (
        "inconclusive"
    )
    below = decide(frame, claim(rows={"tags.method": "er"}, threshold=0.6))
    assert below.verdict == "does not hold"
    lower = decide(frame, claim(rows={"tags.method": "er"}, expect="lower", threshold=0.6))
    assert lower.verdict == "holds"


def test_a_paired_difference_decides_where_the_rows_overlap():
    # per-seed differences 0.02, 0.03, 0.025: mean 0.025, s = 0.005, interval
    # 0.025 ± 4.3027 * 0.005 / sqrt(3) = [0.01258, 0.03742], above 0, although the rows' own
    # intervals overlap
    frame = runs(er=[0.50, 0.60, 0.55], vbm=[0.52, 0.63, 0.575])
    verdict = decide(frame, claim(rows={"tags.method": "vbm"}, against={"tags.method": "er"}))
    assert verdict.verdict == "holds"
    assert verdict.comparison.test == "paired"
    assert verdict.comparison.difference == approx(0.025)
    assert verdict.interval == approx((0.01258, 0.03742), abs=1e-4)
    reverse = decide(frame, claim(rows={"tags.method": "er"}, against={"tags.method": "vbm"}))
    assert reverse.verdict == "does not hold"


def test_non_inferiority_is_a_difference_above_a_negative_threshold():
    frame = runs(fpf=[0.70, 0.72, 0.71], kfpf=[0.695, 0.716, 0.706])  # 0.0043 below, tight
    close = claim(rows={"tags.method": "kfpf"}, against={"tags.method": "fpf"}, threshold=-0.01)
    assert decide(frame, close).verdict == "holds"
    strict = claim(rows={"tags.method": "kfpf"}, against={"tags.method": "fpf"})
    assert decide(frame, strict).verdict == "does not hold"  # significantly below, by little


def test_missing_runs_and_single_runs_are_named():
    frame = runs(er=[0.5])
    assert decide(frame, claim(rows={"tags.method": "der"})).verdict == "not run"
    single = decide(frame, claim(rows={"tags.method": "er"}))
    assert single.verdict == "inconclusive" and "no interval" in single.reason
    assert decide(frame, claim(rows={"no.such": 1})).verdict == "not run"
    assert decide(pd.DataFrame(), claim(rows={"tags.method": "er"})).verdict == "not run"


def test_numeric_selectors_match_numbers_and_strings_match_text():
    frame = runs(er=[0.50, 0.52, 0.54])
    assert decide(frame, claim(rows={"train.epochs": 5.0}, threshold=0.4)).value.n == 3
    assert decide(frame, claim(rows={"train.epochs": "5"}, threshold=0.4)).value.n == 3
    assert decide(frame, claim(rows={"train.epochs": 50}, threshold=0.4)).verdict == "not run"


@pytest.mark.parametrize(
    "raw, field",
    [
        ({"metric": "final_acc", "rows": {"a": 1}}, "claims[0].text"),
        ({"text": "t", "metric": "m", "rows": {"a": 1}, "expect": "more"}, "claims[0].expect"),
        ({"text": "t", "metric": "m", "rows": []}, "claims[0].rows"),
        ({"text": "t", "metric": "m", "rows": {"a": 1}, "colour": 1}, "claims[0].colour"),
    ],
)
def test_bad_claims_name_the_field(raw, field):
    with pytest.raises(ConfigError) as info:
        Claim.from_dict(raw, "claims[0]")
    assert info.value.field == field
