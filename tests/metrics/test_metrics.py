"""Golden tests of clbench.metrics on hand-computed toy streams (Toy A, B, C), plus edge cases and
property tests against a literal reference implementation of the official update rules
(Mattdl/ContinualEvaluation@7ffa368:src/eval/continual_eval_metrics.py)."""

from __future__ import annotations

import json
import time
from collections import defaultdict, deque
from statistics import mean

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from clbench.metrics import (
    MetricOptions,
    accuracy_curve,
    accuracy_matrix,
    average_incremental_accuracy,
    backward_transfer,
    compute_metrics,
    curves,
    final_accuracy,
    forgetting,
    forward_transfer,
    gap_analysis,
    gap_depth,
    learning_curve_area,
    max_window_decrease,
    max_window_increase,
    min_acc,
    per_task_final_accuracy,
    per_task_minima,
    phase_end_steps,
    record_arrays,
    recovery_time,
    stability_curves,
    validate_records,
    wc_acc,
    windowed_forgetting,
    windowed_plasticity,
)
from tests.metrics.helpers import (
    TOY_A,
    TOY_B,
    plain_streams,
    row,
    synthetic_records,
    toy_a_with_preupdate,
    toy_records,
    with_rows,
)

approx = pytest.approx

# ---------------------------------------------------------------------------------------------
# Toy streams (the record builders are in tests/metrics/helpers.py)

TOY_OPTS = {"window_sizes": [3], "lca_beta": 2}


@pytest.fixture
def toy_a():
    return toy_records(TOY_A)


@pytest.fixture
def toy_b():
    return toy_records(TOY_B)


def assert_json_clean(value):
    """No NaN, no numpy scalars anywhere in a compute_metrics result."""
    json.dumps(value, allow_nan=False)
    if isinstance(value, dict):
        for v in value.values():
            assert_json_clean(v)
    elif isinstance(value, list):
        for v in value:
            assert_json_clean(v)
    else:
        assert value is None or type(value) in (int, float, str, bool), type(value)


# ---------------------------------------------------------------------------------------------
# Toy A


def test_toy_a_summary(toy_a):
    out = compute_metrics(toy_a, {**TOY_OPTS, "recovery_eps": 0.05})
    assert_json_clean(out)
    assert out["per_task_min_acc"] == approx([0.40], abs=1e-9)
    assert out["min_acc"] == approx(0.40, abs=1e-9)
    assert out["wc_acc"] == approx(0.665, abs=1e-9)
    assert out["wf_3"] == approx(0.275, abs=1e-9)
    assert out["wp_3"] == approx(0.55, abs=1e-9)
    assert out["lca"] == approx(0.5875, abs=1e-9)
    assert out["final_acc"] == approx(0.905, abs=1e-9)
    assert out["aia"] == approx(0.9275, abs=1e-9)
    assert out["forgetting"] == approx(0.07, abs=1e-9)
    assert out["bwt"] == approx(-0.07, abs=1e-9)
    assert out["fwt"] is None  # no init rows
    assert out["per_task_final_acc"] == approx([0.88, 0.93], abs=1e-9)
    assert out["accuracy_matrix"][0][1] is None
    assert out["accuracy_matrix"][1] == approx([0.88, 0.93], abs=1e-9)
    assert out["gap_depth_mean"] == approx(0.55, abs=1e-9)
    assert out["recovery_time_mean"] is None  # threshold 0.90 never reached
    assert out["recovered_fraction"] == 0.0
    assert (out["gap_pairs"], out["forgotten_pairs"], out["recovered_pairs"]) == (1, 0, 0)
    [gap] = out["gaps"]
    assert gap == {
        "task": 0,
        "phase": 1,
        "reference": approx(0.95, abs=1e-9),
        "minimum": approx(0.40, abs=1e-9),
        "depth": approx(0.55, abs=1e-9),
        "min_step": 5,
        "recovery_time": None,
        "chance": 0.0,  # unknown without the run's plan
        "forgotten": False,
    }


def test_toy_a_options(toy_a):
    assert forgetting(toy_a, "max") == approx(0.07, abs=1e-9)
    assert windowed_forgetting(toy_a, 3, "previous") == approx(0.55, abs=1e-9)
    assert windowed_forgetting(toy_a, 3, "all") == approx(0.275, abs=1e-9)
    out = compute_metrics(toy_a, {**TOY_OPTS, "wf_tasks": "previous", "recovery_eps": 0.08})
    assert out["wf_3"] == approx(0.55, abs=1e-9)
    assert out["gaps"][0]["recovery_time"] == 3  # arg-min at step 5; 0.88 >= 0.87 at step 8
    assert out["recovery_time_mean"] == approx(3.0, abs=1e-9)
    assert out["recovered_fraction"] == approx(1.0, abs=1e-9)
    assert recovery_time(toy_a, 0, 1, recovery_eps=0.05) is None
    assert recovery_time(toy_a, 0, 1, recovery_eps=0.08) == 3
    assert gap_depth(toy_a, 0, 1) == approx(0.55, abs=1e-9)
    assert gap_depth(toy_a, 1, 1) is None  # task 1 is current in phase 1: no gap


def test_toy_a_curves(toy_a):
    c = curves(toy_a, TOY_OPTS)
    assert c["step"].tolist() == list(range(9))
    assert c["current_task"].tolist() == [0] * 5 + [1] * 4
    assert c["min_acc"].iloc[:5].isna().all()  # null during task 1, never 0
    assert c["min_acc"].iloc[5:].tolist() == approx([0.40] * 4, abs=1e-9)
    expected_wc = [0.10, 0.80, 0.90, 0.94, 0.95, 0.50, 0.625, 0.65, 0.665]
    assert c["wc_acc"].tolist() == approx(expected_wc, abs=1e-9)


# ---------------------------------------------------------------------------------------------
# Toy B


def test_toy_b_summary(toy_b):
    out = compute_metrics(toy_b, {**TOY_OPTS, "recovery_eps": 0.05})
    assert_json_clean(out)
    assert per_task_minima(toy_b) == {0: approx(0.50, abs=1e-9), 1: approx(0.30, abs=1e-9)}
    assert out["per_task_min_acc"] == approx([0.50, 0.30], abs=1e-9)
    assert out["min_acc"] == approx(0.40, abs=1e-9)
    assert out["wc_acc"] == approx((0.90 + 0.50 + 0.30) / 3, abs=1e-9)
    assert out["final_acc"] == approx((0.88 + 0.87 + 0.90) / 3, abs=1e-9)
    assert out["aia"] == approx((0.95 + 0.935 + (0.88 + 0.87 + 0.90) / 3) / 3, abs=1e-9)
    assert out["aia"] == approx(0.922778, abs=1e-6)  # the hand-computed value, rounded
    assert out["forgetting"] == approx(0.05, abs=1e-9)
    assert out["bwt"] == approx(-0.05, abs=1e-9)
    assert out["wf_3"] == approx(0.35, abs=1e-9)
    assert out["wp_3"] == approx(0.59, abs=1e-9)
    assert out["lca"] == approx(0.575, abs=1e-9)
    gaps = {(g["task"], g["phase"]): (g["depth"], g["recovery_time"]) for g in out["gaps"]}
    assert gaps == {
        (0, 1): (approx(0.45, abs=1e-9), 2),
        (0, 2): (approx(0.37, abs=1e-9), None),
        (1, 2): (approx(0.60, abs=1e-9), 2),
    }
    assert out["gap_depth_mean"] == approx((0.45 + 0.37 + 0.60) / 3, abs=1e-9)
    assert out["recovery_time_mean"] == approx(2.0, abs=1e-9)
    assert out["recovered_fraction"] == approx(2 / 3, abs=1e-9)
    assert (out["gap_pairs"], out["forgotten_pairs"], out["recovered_pairs"]) == (3, 0, 2)


def test_toy_b_options(toy_b):
    max_ref = compute_metrics(toy_b, {**TOY_OPTS, "forgetting_reference": "max"})
    assert max_ref["forgetting"] == approx(0.06, abs=1e-9)
    assert max_ref["bwt"] == approx(-0.05, abs=1e-9)  # BWT always uses the end-of-task reference
    prev = compute_metrics(toy_b, {**TOY_OPTS, "wf_tasks": "previous"})
    assert prev["wf_3"] == approx(0.525, abs=1e-9)
    assert prev["wp_3"] == approx(0.59, abs=1e-9)  # WP always averages over all tasks


def test_toy_b_curves(toy_b):
    c = curves(toy_b)
    assert c["min_acc"].iloc[:4].isna().all()
    assert c["min_acc"].iloc[4:].tolist() == approx([0.50] * 3 + [0.40] * 3, abs=1e-9)
    expected_wc = [0.10, 0.70, 0.90, 0.95, 0.55, 0.65, 0.70, 1.3 / 3, 1.55 / 3, 1.7 / 3]
    assert c["wc_acc"].tolist() == approx(expected_wc, abs=1e-9)


# ---------------------------------------------------------------------------------------------
# Toy C and the windowed metrics


def test_toy_c_wp_exact_vs_official():
    assert max_window_increase([0.5, 0.2, 0.9], 3) == approx(0.7, abs=1e-9)
    assert max_window_increase([0.5, 0.2, 0.9], 3, "official_pruned") == approx(0.4, abs=1e-9)
    single = toy_records([(0, 0, {0: 0.5}), (1, 0, {0: 0.2}), (2, 0, {0: 0.9})])
    assert windowed_plasticity(single, 3) == approx(0.7, abs=1e-9)
    assert windowed_plasticity(single, 3, "official_pruned") == approx(0.4, abs=1e-9)
    out = compute_metrics(single, {"window_sizes": [3], "wp_mode": "official_pruned"})
    assert out["wp_3"] == approx(0.4, abs=1e-9)
    assert out["wf_3"] == approx(0.3, abs=1e-9)


def test_window_edge_cases():
    assert max_window_decrease([0.9], 10) == 0.0  # window of length <= 1
    assert max_window_increase([0.1, 0.9], 1) == 0.0  # w = 1 holds a single evaluation
    assert max_window_decrease([0.1, 0.2, 0.3], 3) == 0.0  # never negative
    assert max_window_increase([0.3, 0.2, 0.1], 3) == 0.0
    # pairs further apart than w - 1 evaluations are never in one window
    assert max_window_decrease([0.9, 0.5, 0.5, 0.1], 3) == approx(0.4, abs=1e-9)
    assert max_window_decrease([0.9, 0.5, 0.5, 0.1], 4) == approx(0.8, abs=1e-9)
    with pytest.raises(ValueError, match="window size"):
        max_window_decrease([0.1], 0)


def brute_force_windows(seq, w, sign):
    """Official rule: append one value at a time, exact max-pair over each window, running max."""
    best, window = 0.0, deque(maxlen=w)
    for a in seq:
        window.append(a)
        for i in range(len(window)):
            for j in range(i + 1, len(window)):
                best = max(best, sign * (window[j] - window[i]))
    return best


def official_windows(seq, w, sign):
    """Literal replay of the official ``max_consec_delta_from_window`` over sliding windows."""
    best, window = 0.0, deque()
    for a in seq:
        window.append(a)
        if len(window) > w:
            window.popleft()
        value = 0.0
        if len(window) > 1:
            value, running_max = float("-inf"), float("-inf")
            for i, first in enumerate(window):
                if first < running_max:
                    continue
                running_max = first
                for j in range(i + 1, len(window)):
                    value = max(value, sign * (window[j] - first))
        best = max(best, value)
    return best


accuracy_seqs = st.lists(st.integers(0, 100).map(lambda c: c / 100), min_size=0, max_size=40)


@settings(max_examples=300, deadline=None)
@given(seq=accuracy_seqs, w=st.integers(1, 12))
def test_windowed_properties(seq, w):
    exact_wp = max_window_increase(seq, w)
    pruned_wp = max_window_increase(seq, w, "official_pruned")
    assert exact_wp >= pruned_wp
    assert exact_wp == approx(brute_force_windows(seq, w, +1), abs=1e-12)
    assert max_window_decrease(seq, w) == approx(brute_force_windows(seq, w, -1), abs=1e-12)
    # official_pruned is bit-faithful to the official scan; for decreases that scan is exact
    assert pruned_wp == official_windows(seq, w, +1)
    assert max_window_decrease(seq, w) == approx(official_windows(seq, w, -1), abs=1e-12)


def test_official_pruned_tail_effect():
    # [0.5, 0.2, 0.9] inside a longer stream: once 0.2 starts a window the pair is scored.
    assert max_window_increase([0.5, 0.2, 0.9, 0.9], 3, "official_pruned") == approx(0.7)
    # ... but not when 0.2 is among the last w - 1 evaluations.
    assert max_window_increase([0.1, 0.5, 0.2, 0.9], 3, "official_pruned") == approx(0.4)
    assert max_window_increase([0.1, 0.5, 0.2, 0.9], 3) == approx(0.7)


# ---------------------------------------------------------------------------------------------
# Hand-computed cases


def test_sample_pooled_vs_task_mean():
    records = pd.DataFrame(
        [
            row(0, 0, 0, 0.50),
            row(2, 0, 0, 0.90),
            row(2, 0, 0, 0.90, kind="full", n=200),
            row(4, 1, 0, 0.90),
            row(4, 1, 1, 0.50),
            row(4, 1, 0, 0.90, kind="full", n=200),  # 180 / 200
            row(4, 1, 1, 0.50, kind="full", n=50),  # 25 / 50
        ]
    )
    assert final_accuracy(records, "task_mean") == approx(0.70, abs=1e-9)
    assert final_accuracy(records, "sample_pooled") == approx(205 / 250, abs=1e-9)
    out = compute_metrics(records, {"avg_acc_weighting": "sample_pooled"})
    assert out["final_acc"] == approx(0.82, abs=1e-9)
    assert compute_metrics(records)["final_acc"] == approx(0.70, abs=1e-9)


def fwt_records():
    """Three tasks, two updates each; init rows and forward-tracking full rows of the next task."""
    rows = toy_records(
        [
            (0, 0, {0: 0.10}),
            (2, 0, {0: 0.90}),
            (4, 1, {0: 0.80, 1: 0.70}),
            (6, 2, {0: 0.60, 1: 0.60, 2: 0.80}),
        ]
    )
    return with_rows(
        rows,
        row(0, 0, 0, 0.10, kind="init"),
        row(0, 0, 1, 0.20, kind="init"),
        row(0, 0, 2, 0.05, kind="init"),
        row(2, 0, 1, 0.30, kind="full"),  # R[0, 1]: task 1 before it is trained
        row(4, 1, 2, 0.15, kind="full"),  # R[1, 2]
    )


def test_forward_transfer_with_init_rows():
    records = fwt_records()
    assert forward_transfer(records) == approx(((0.30 - 0.20) + (0.15 - 0.05)) / 2, abs=1e-9)
    # Forward rows of not-yet-trained tasks do not enter the seen-task averages.
    assert average_incremental_accuracy(records) == approx((0.90 + 0.75 + 2.0 / 3) / 3, abs=1e-9)
    assert per_task_final_accuracy(records) == approx([0.60, 0.60, 0.80], abs=1e-9)
    assert accuracy_matrix(records).loc[0, 1] == approx(0.30, abs=1e-9)
    assert compute_metrics(records)["fwt"] == approx(0.10, abs=1e-9)


def test_forward_transfer_null_when_a_value_is_missing():
    records = fwt_records()
    no_init_2 = records[~((records["kind"] == "init") & (records["task"] == 2))]
    assert forward_transfer(no_init_2) is None
    no_forward_1 = records[
        ~((records["kind"] == "full") & (records["task"] == 1) & (records["phase"] == 0))
    ]
    assert forward_transfer(no_forward_1) is None
    assert compute_metrics(no_forward_1)["fwt"] is None


def test_single_task_stream():
    records = toy_records(
        [(0, 0, {0: 0.20}), (1, 0, {0: 0.60}), (2, 0, {0: 0.50}), (3, 0, {0: 0.70})]
    )
    out = compute_metrics(records, {"window_sizes": [2, 3], "lca_beta": 3})
    assert_json_clean(out)
    assert out["final_acc"] == approx(0.70, abs=1e-9)
    assert out["aia"] == approx(0.70, abs=1e-9)
    for key in ("forgetting", "bwt", "fwt", "min_acc"):
        assert out[key] is None, key
    assert forgetting(records, "max") is None
    assert backward_transfer(records) is None
    assert out["wc_acc"] == approx(0.70, abs=1e-9)  # WC-ACC = current-task accuracy for K = 1
    assert out["per_task_min_acc"] == []
    assert out["wf_2"] == approx(0.10, abs=1e-9)
    assert out["wp_2"] == approx(0.40, abs=1e-9)
    assert out["wp_3"] == approx(0.40, abs=1e-9)
    assert windowed_forgetting(records, 3, "previous") is None
    assert out["lca"] == approx((0.20 + 0.60 + 0.50) / 3, abs=1e-9)
    assert out["gaps"] == []
    assert out["gap_depth_mean"] is None
    assert out["recovery_time_mean"] is None
    assert out["recovered_fraction"] is None
    assert curves(records)["min_acc"].isna().all()
    assert curves(records)["wc_acc"].tolist() == approx([0.20, 0.60, 0.50, 0.70], abs=1e-9)


def test_lca_null_without_a_full_window(toy_a):
    # task 0 has 5 evaluations while current, task 1 has 4: beta = 5 averages task 0 only
    assert learning_curve_area(toy_a, beta=5) == approx((0.10 + 0.80 + 0.90 + 0.94 + 0.95) / 5)
    assert learning_curve_area(toy_a, beta=6) is None
    assert learning_curve_area(toy_a, beta=4) == approx(
        ((0.10 + 0.80 + 0.90 + 0.94) / 4 + 0.82) / 2
    )
    assert compute_metrics(toy_a, {"lca_beta": 6})["lca"] is None
    with pytest.warns(UserWarning, match="pre-update"):
        assert learning_curve_area(toy_a, beta=5, mode="chaudhry") is None


def test_lca_chaudhry_with_preupdate_rows(toy_a):
    records = toy_a_with_preupdate()
    # b = 0..β: task 0 (0.10, 0.80, 0.90), task 1 (0.05, 0.60, 0.85)
    expected = ((0.10 + 0.80 + 0.90) / 3 + (0.05 + 0.60 + 0.85) / 3) / 2
    assert learning_curve_area(records, beta=2, mode="chaudhry") == approx(expected, abs=1e-9)
    out = compute_metrics(records, {**TOY_OPTS, "lca_mode": "chaudhry"})
    assert out["lca"] == approx(0.55, abs=1e-9)
    # official mode ignores the later pre-update point: b = 1..β for task 1
    assert learning_curve_area(records, beta=2) == approx(0.5875, abs=1e-9)
    # without the pre-update row task 1 has no chaudhry window: only task 0 counts, with a warning
    with pytest.warns(UserWarning, match=r"tasks \[1\]"):
        assert learning_curve_area(toy_a, beta=2, mode="chaudhry") == approx(0.6, abs=1e-9)


def test_preupdate_rows_change_no_other_metric(toy_a):
    plain = compute_metrics(toy_a, {**TOY_OPTS, "recovery_eps": 0.08})
    with_pre = compute_metrics(toy_a_with_preupdate(), {**TOY_OPTS, "recovery_eps": 0.08})
    assert with_pre == plain
    assert len(curves(toy_a_with_preupdate())) == len(TOY_A)


def test_preupdate_row_excluded_from_gap_minimum(toy_a):
    # An (artificially) low pre-update value of task 0 in phase 1 must not become the gap minimum.
    records = toy_a_with_preupdate(task0=0.30)
    [gap] = gap_analysis(records, recovery_eps=0.08)
    assert gap.reference == approx(0.95, abs=1e-9)  # last evaluation of phase 0, not the pre row
    assert gap.minimum == approx(0.40, abs=1e-9)
    assert gap.min_step == 5
    assert gap.depth == approx(0.55, abs=1e-9)
    assert gap.recovery_time == 3
    assert per_task_minima(records) == {0: approx(0.40, abs=1e-9)}
    assert min_acc(records) == approx(0.40, abs=1e-9)


def test_recovery_threshold_is_inclusive():
    # reference 0.80, eps 0.10: 0.70 counts as recovered although 0.80 - 0.10 > 0.70 in floats
    assert 0.80 - 0.10 > 0.70
    records = toy_records(
        [(0, 0, {0: 0.50}), (1, 0, {0: 0.80}), (2, 1, {0: 0.30, 1: 0.5}), (3, 1, {0: 0.70, 1: 0.6})]
    )
    assert recovery_time(records, 0, 1, recovery_eps=0.10) == 1
    assert recovery_time(records, 0, 1, recovery_eps=0.09) is None
    # a minimum already within eps of the reference recovers at once
    assert recovery_time(records, 0, 1, recovery_eps=0.50) == 0
    assert gap_depth(records, 0, 1) == approx(0.50, abs=1e-9)


def test_recovery_ties_use_first_argmin():
    records = toy_records(
        [
            (0, 0, {0: 0.5}),
            (1, 0, {0: 0.9}),
            (2, 1, {0: 0.3, 1: 0.1}),
            (3, 1, {0: 0.5, 1: 0.2}),
            (4, 1, {0: 0.3, 1: 0.3}),
            (5, 1, {0: 0.9, 1: 0.4}),
        ]
    )
    [gap] = gap_analysis(records, recovery_eps=0.0)
    assert (gap.min_step, gap.recovery_time) == (2, 3)


def test_eval_every_gives_recovery_in_updates():
    records = toy_records(
        [(0, 0, {0: 0.2}), (10, 0, {0: 0.8}), (15, 1, {0: 0.3, 1: 0.4}), (25, 1, {0: 0.8, 1: 0.7})]
    )
    assert phase_end_steps(records) == {0: 10, 1: 25}
    assert recovery_time(records, 0, 1, recovery_eps=0.0) == 10
    assert curves(records)["step"].tolist() == [0, 10, 15, 25]


def test_recurring_task_stream():
    # phase 2 revisits task 0: it is current again, so it has no gap there and no forgetting term
    records = toy_records(
        [
            (0, 0, {0: 0.1}),
            (2, 0, {0: 0.9}),
            (4, 1, {0: 0.5, 1: 0.8}),
            (6, 2, {0: 0.9, 1: 0.6}),
        ]
    )
    records.loc[records["phase"] == 2, "current_task"] = 0
    assert forgetting(records) == approx(0.8 - 0.6, abs=1e-9)
    assert {(g.task, g.phase) for g in gap_analysis(records)} == {(0, 1), (1, 2)}
    assert per_task_minima(records) == {0: approx(0.5), 1: approx(0.6)}
    # WC-ACC at the end: current task 0 (0.9) with the minimum of task 1 only
    assert wc_acc(records) == approx((0.9 + 0.6) / 2, abs=1e-9)
    assert min_acc(records) == approx((0.5 + 0.6) / 2, abs=1e-9)


def test_record_helpers(toy_b):
    curve = accuracy_curve(toy_b)
    assert list(curve.columns) == [0, 1, 2]
    assert curve.index.names == ["phase", "step"]
    assert curve.loc[(1, 5), 1] == approx(0.80)
    assert np.isnan(curve.loc[(0, 3), 1])
    assert phase_end_steps(toy_b) == {0: 3, 1: 6, 2: 9}
    matrix = accuracy_matrix(toy_b)
    assert matrix.loc[1, 0] == approx(0.97)
    assert np.isnan(matrix.loc[0, 2])


# ---------------------------------------------------------------------------------------------
# Property test against a reference implementation of the official update rules


def reference_metrics(records, w, beta, wf_tasks, eps):
    """Reference implementation of the official update rules; changes: formatting, ``None``
    instead of an error for an empty WF average, and each gap also returns its minimum and
    reference."""

    def max_pair_delta(window, sign):
        best = 0.0
        for a in range(len(window)):
            for b in range(a + 1, len(window)):
                best = max(best, sign * (window[b] - window[a]))
        return best

    min_acc_, lca_vals, curve = {}, defaultdict(list), []
    win = {s: defaultdict(deque) for s in (+1, -1)}
    wmax = {s: defaultdict(float) for s in (+1, -1)}
    series, task_end = defaultdict(dict), {}
    for step, k, accs in records:
        task_end[k] = step
        for i, a in accs.items():
            series[i][step] = a
            if i != k:
                min_acc_[i] = min(min_acc_.get(i, float("inf")), a)
            for s in (+1, -1):
                dq = win[s][i]
                dq.append(a)
                if len(dq) > w:
                    dq.popleft()
                wmax[s][i] = max(wmax[s][i], max_pair_delta(list(dq), s))
            if i == k and len(lca_vals[k]) < beta:
                lca_vals[k].append(a)
        prev = [min_acc_[i] for i in range(k) if i in min_acc_]
        curve.append((step, mean(prev) if prev else None, mean([accs[k], *prev])))
    K = len(task_end)
    final = {i: series[i][task_end[K - 1]] for i in range(K)}
    forg = {i: series[i][task_end[i]] - final[i] for i in range(K - 1)}
    fmax = {
        i: max(series[i][task_end[m]] for m in range(i, K - 1)) - final[i] for i in range(K - 1)
    }
    gaps = {}
    for k in range(1, K):
        start, end = task_end[k - 1], task_end[k]
        for i in range(k):
            ref = series[i][start]
            seg = [(n, a) for n, a in sorted(series[i].items()) if start < n <= end]
            n_min, a_min = min(seg, key=lambda p: (p[1], p[0]))
            rec = next((n - n_min for n, a in seg if n > n_min and a >= ref - eps), None)
            gaps[(i, k)] = (ref - a_min, rec, a_min, ref)
    wf_keys = list(wmax[-1]) if wf_tasks == "all" else [i for i in wmax[-1] if i != K - 1]
    full = [v for v in lca_vals.values() if len(v) == beta]
    return {
        "avg_acc": mean(final.values()),
        "aia": mean(mean(series[i][task_end[j]] for i in range(j + 1)) for j in range(K)),
        "forg": mean(forg.values()) if forg else None,
        "forg_max": mean(fmax.values()) if fmax else None,
        "min_acc_per_task": dict(min_acc_),
        "min_acc": curve[-1][1],
        "wc_acc": curve[-1][2],
        "wf": mean(wmax[-1][i] for i in wf_keys) if wf_keys else None,
        "wp": mean(wmax[+1].values()),
        "lca": mean(mean(v) for v in full) if full else None,
        "gaps": gaps,
        "curve": curve,
    }


def maybe(x):
    return approx(x, abs=1e-9) if x is not None else None


@settings(max_examples=80, deadline=None)
@given(
    rows=plain_streams(),
    w=st.integers(1, 5),
    beta=st.integers(1, 4),
    wf_tasks=st.sampled_from(["all", "previous"]),
    eps=st.sampled_from([0.0, 0.025, 0.055]),  # off the 0.01 grid: no float ties at the threshold
)
def test_matches_reference_implementation(rows, w, beta, wf_tasks, eps):
    ref = reference_metrics(rows, w, beta, wf_tasks, eps)
    opts = {"window_sizes": [w], "lca_beta": beta, "wf_tasks": wf_tasks, "recovery_eps": eps}
    out = compute_metrics(toy_records(rows), opts)
    assert_json_clean(out)
    records = record_arrays(toy_records(rows))  # validated once for the remaining calls
    assert out["final_acc"] == approx(ref["avg_acc"], abs=1e-9)
    assert out["aia"] == approx(ref["aia"], abs=1e-9)
    assert out["forgetting"] == maybe(ref["forg"])
    assert out["bwt"] == maybe(None if ref["forg"] is None else -ref["forg"])
    assert compute_metrics(records, {**opts, "forgetting_reference": "max"})["forgetting"] == (
        maybe(ref["forg_max"])
    )
    assert per_task_minima(records) == {
        i: approx(m, abs=1e-9) for i, m in ref["min_acc_per_task"].items()
    }
    assert out["min_acc"] == maybe(ref["min_acc"])
    assert out["wc_acc"] == approx(ref["wc_acc"], abs=1e-9)
    assert out[f"wf_{w}"] == maybe(ref["wf"])
    assert out[f"wp_{w}"] == approx(ref["wp"], abs=1e-9)
    assert out["lca"] == maybe(ref["lca"])
    c = curves(records)
    assert c["step"].tolist() == [s for s, _, _ in ref["curve"]]
    assert [None if pd.isna(v) else approx(v, abs=1e-9) for v in c["min_acc"]] == [
        m for _, m, _ in ref["curve"]
    ]
    assert c["wc_acc"].tolist() == approx([x for _, _, x in ref["curve"]], abs=1e-9)
    got = {(g["task"], g["phase"]): g for g in out["gaps"]}
    assert set(got) == set(ref["gaps"])
    for key, (depth, rec, a_min, reference) in ref["gaps"].items():
        assert got[key]["depth"] == approx(depth, abs=1e-9)
        # Without the run's chance level only a reference of 0 has nothing left to lose; such a
        # pair is marked and gets no recovery time.
        assert got[key]["forgotten"] == (reference == 0)
        if reference == 0:
            assert got[key]["recovery_time"] is None
            continue
        # clbench searches from the arg-min itself: a minimum already within eps recovers at 0
        # (the reference only looks strictly after it); otherwise they agree.
        assert got[key]["recovery_time"] == (0 if a_min >= reference - eps else rec)
    counted = [k for k, g in ref["gaps"].items() if g[3] > 0]
    assert out["gap_pairs"] == len(counted)
    assert out["forgotten_pairs"] == len(ref["gaps"]) - len(counted)
    depths = [ref["gaps"][k][0] for k in counted]
    assert out["gap_depth_mean"] == maybe(mean(depths) if depths else None)


# ---------------------------------------------------------------------------------------------
# Validation, options and performance


def test_validate_accepts_toys(toy_a, toy_b):
    validate_records(toy_a)
    validate_records(toy_b)
    validate_records(fwt_records())


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda df: df.drop(columns=["kind", "loss"]), "missing column\\(s\\): kind, loss"),
        (lambda df: df.iloc[:0], "no rows"),
        (
            lambda df: df.assign(kind="sub"),
            "'kind' must be one of subset, full, init, online, got 'sub'",
        ),
        (lambda df: df.assign(correct=df["n"] + 1), "'correct' must be <= 'n'"),
        (lambda df: df.assign(n=0, correct=0), "'n' must be >= 1"),
        (lambda df: df.assign(step=df["step"] - 1), "'step' must be >= 0, got -1"),
        (lambda df: df.assign(phase=df["phase"] + 0.5), "'phase' must hold integers"),
        (lambda df: df.assign(task=df["task"].astype(str)), "'task' must be integer"),
        (lambda df: df.assign(loss="x"), "'loss' must be numeric"),
        (lambda df: pd.concat([df, df.iloc[[3]]]), "duplicate rows .*'subset', 0, 3, 0"),
        (lambda df: df.assign(phase=df["phase"] * 2), "'phase' must cover 0..P-1"),
        (
            lambda df: df.assign(current_task=np.where(df["step"] == 7, 5, df["current_task"])),
            "'current_task' varies within phase\\(s\\) \\[1\\]",
        ),
        (
            lambda df: df.assign(step=np.where(df["step"] == 5, 1, df["step"])),
            "phase 1 starts at step 1 but phase 0 ends at step 4",
        ),
        (
            lambda df: df.assign(
                step=np.where((df["kind"] == "full") & (df["phase"] == 1), 7, df["step"])
            ),
            "'full' rows must be at the last step",
        ),
    ],
)
def test_validate_records_errors(toy_a, mutate, message):
    with pytest.raises(ValueError, match=message):
        validate_records(mutate(toy_a))
    with pytest.raises(ValueError, match=message):
        compute_metrics(mutate(toy_a))


def test_validate_records_more_errors(toy_a):
    with pytest.raises(TypeError, match="DataFrame"):
        validate_records(toy_a.to_dict("records"))
    bad_init = with_rows(toy_a, row(3, 0, 0, 0.1, kind="init"))
    with pytest.raises(ValueError, match="'init' rows must have step 0"):
        validate_records(bad_init)
    two_full = with_rows(toy_a, row(8, 1, 0, 0.5, kind="full", current=1) | {"step": 7})
    with pytest.raises(ValueError, match="more than one 'full' row"):
        validate_records(two_full)


def test_metric_options():
    opts = MetricOptions()
    assert opts.model_dump() == {
        "avg_acc_weighting": "task_mean",
        "forgetting_reference": "end_of_task",
        "window_sizes": [10, 100],
        "wf_tasks": "all",
        "wp_mode": "exact",
        "lca_beta": 10,
        "lca_mode": "official",
        "recovery_eps": 0.02,
        "window_unit": "updates",
    }
    assert all(f.description for f in MetricOptions.model_fields.values())
    for bad in (
        {"wf_taks": "all"},
        {"wp_mode": "pruned"},
        {"window_sizes": [10, 10]},
        {"window_sizes": [0]},
        {"lca_beta": 0},
        {"recovery_eps": -0.1},
        {"window_unit": "foo"},
        {"window_unit": "update"},
    ):
        with pytest.raises(ValidationError):
            MetricOptions(**bad)


def test_default_keys(toy_b):
    out = compute_metrics(toy_b)
    for key in ("wf_10", "wp_10", "wf_100", "wp_100"):
        assert key in out
    assert "wf_3" not in out
    # w = 10 covers the whole 10-evaluation stream: same as any w >= 10
    assert out["wf_10"] == approx(windowed_forgetting(toy_b, 100), abs=1e-12)
    assert out["wp_100"] == approx((0.87 + 0.57 + 0.40) / 3, abs=1e-9)
    assert out["lca"] is None  # no task has 10 evaluations while current


def test_compute_metrics_is_fast():
    records = synthetic_records()
    assert len(records) > 50_000
    compute_metrics(records)  # warm-up (imports, first-call overheads)
    start = time.perf_counter()
    out = compute_metrics(records, {"wp_mode": "official_pruned"})
    elapsed = time.perf_counter() - start
    assert elapsed < 1.0, f"compute_metrics took {elapsed:.2f} s on {len(records)} rows"
    assert_json_clean(out)
    assert len(out["gaps"]) == 10
    assert out["lca"] is not None


# --- phases that train several tasks (SCoLe, joint) --------------------------------------------


def test_tasks_trained_together_in_the_first_phase_are_not_old_there():
    # Phase 0 trains tasks 0 and 1 (current task: 1, the newest); phase 1 trains task 2.
    records = toy_records(
        [
            (0, 0, {0: 0.05, 1: 0.00}),
            (1, 0, {0: 0.50, 1: 0.40}),
            (2, 0, {0: 0.90, 1: 0.80}),
            (3, 1, {0: 0.60, 1: 0.70, 2: 0.50}),
            (4, 1, {0: 0.70, 1: 0.75, 2: 0.90}),
        ]
    )
    records["current_task"] = records["phase"].map({0: 1, 1: 2})
    curve = stability_curves(records)
    # no old task during phase 0: the untrained step-0 model sets no minimum
    assert curve.loc[curve["phase"] == 0, "min_acc"].isna().all()
    assert per_task_minima(records) == {0: pytest.approx(0.60), 1: pytest.approx(0.70)}
    assert min_acc(records) == pytest.approx(0.65, abs=1e-12)
    # step 0 evaluates the current task, so WC-ACC is defined from the first point on
    assert curve["wc_acc"].notna().all()


def test_a_one_phase_joint_run_has_no_old_task():
    records = toy_records([(0, 0, {0: 0.1, 1: 0.0, 2: 0.2}), (5, 0, {0: 0.9, 1: 0.8, 2: 0.9})])
    records["current_task"] = 2
    out = compute_metrics(records)
    assert out["min_acc"] is None
    assert out["wc_acc"] == pytest.approx(0.9)
    assert out["gap_pairs"] == 0 and out["gap_depth_mean"] is None
