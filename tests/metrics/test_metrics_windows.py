"""Windows measured in updates or in evaluations: WF^w, WP^w and LCA_β (``window_unit``).

Hand-computed record sets and property tests against literal replays of the windows; builders
and the toy examples from tests/metrics/helpers.py.
"""

from __future__ import annotations

from collections import deque

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clbench.metrics import (
    compute_metrics,
    learning_curve_area,
    max_window_decrease,
    max_window_increase,
    windowed_forgetting,
    windowed_plasticity,
)
from tests.metrics.helpers import (
    TOY_A,
    plain_streams,
    synthetic_records,
    toy_a_with_preupdate,
    toy_records,
)

approx = pytest.approx

# ---------------------------------------------------------------------------------------------
# A curve evaluated after every update and its eval.every = 5 subsample
#
# Three phases of 50 updates (steps 0..150). Each task's accuracy is constant on the segments
# below (first step, last step, value). Every change happens inside one 5-update interval and
# changes in the same direction are at least 10 updates apart, so with w = 10 updates the
# largest drop and rise lie on steps that are multiples of 5. The LCA windows (β = 10 updates)
# are half one value, half the next, so their mean is that of the two sampled points.
SEGMENTS = {
    0: [(0, 4, 0.1), (5, 50, 0.9), (51, 55, 0.4), (56, 100, 0.8), (101, 105, 0.6), (106, 150, 0.8)],
    1: [(51, 55, 0.3), (56, 100, 0.7), (101, 105, 0.2), (106, 150, 0.6)],
    2: [(101, 105, 0.4), (106, 120, 0.8), (121, 135, 0.5), (136, 150, 0.3)],
}
PHASE_LENGTH = 50


def curve_records(every: int) -> pd.DataFrame:
    values = {}
    for task, segments in SEGMENTS.items():
        for lo, hi, acc in segments:
            for step in range(lo, hi + 1):
                values[(step, task)] = acc
    rows = []
    for step in range(0, 3 * PHASE_LENGTH + 1, every):
        phase = max(0, (step - 1) // PHASE_LENGTH)
        rows.append((step, phase, {t: values[(step, t)] for t in SEGMENTS if (step, t) in values}))
    return toy_records(rows)


# Per task (0, 1, 2), by hand. Update unit, dense or sampled: largest drop within 9 updates
# 0.9 -> 0.4, 0.7 -> 0.2, 0.8 -> 0.5; largest rise 0.1 -> 0.9, 0.3 -> 0.7, 0.4 -> 0.8.
WF_UPDATES = (0.5 + 0.5 + 0.3) / 3
WP_UPDATES = (0.8 + 0.4 + 0.4) / 3
# LCA_10, official: task 0 over steps 0..9, tasks 1 and 2 over the 10 updates of their phase.
LCA_UPDATES = ((0.1 + 0.9) / 2 + (0.3 + 0.7) / 2 + (0.4 + 0.8) / 2) / 3
# Evaluation unit on the subsample: 10 evaluations span 45 updates, so task 2's two drops
# (0.8 -> 0.5 -> 0.3) fall in one window, and LCA averages the first 10 evaluations.
WF_EVALS_SPARSE = (0.5 + 0.5 + 0.5) / 3
LCA_EVALS_SPARSE = (
    (0.1 + 9 * 0.9) / 10 + (0.3 + 9 * 0.7) / 10 + (0.4 + 3 * 0.8 + 3 * 0.5 + 3 * 0.3) / 10
) / 3
OPTS = {"window_sizes": [10], "lca_beta": 10}


def test_update_unit_is_invariant_to_the_evaluation_rate():
    dense, sparse = curve_records(1), curve_records(5)
    assert sorted(sparse["step"].unique()) == list(range(0, 151, 5))
    for records in (dense, sparse):
        out = compute_metrics(records, {**OPTS, "window_unit": "updates"})
        assert out["wf_10"] == approx(WF_UPDATES, abs=1e-12)
        assert out["wp_10"] == approx(WP_UPDATES, abs=1e-12)
        assert out["lca"] == approx(LCA_UPDATES, abs=1e-12)
    assert windowed_forgetting(sparse, 10) == approx(WF_UPDATES, abs=1e-12)  # default: updates
    assert learning_curve_area(sparse, 10) == approx(LCA_UPDATES, abs=1e-12)


def test_evaluation_unit_depends_on_the_evaluation_rate():
    dense, sparse = curve_records(1), curve_records(5)
    out_dense = compute_metrics(dense, {**OPTS, "window_unit": "evaluations"})
    out_sparse = compute_metrics(sparse, {**OPTS, "window_unit": "evaluations"})
    # every update evaluated: the two units agree
    assert out_dense["wf_10"] == approx(WF_UPDATES, abs=1e-12)
    assert out_dense["lca"] == approx(LCA_UPDATES, abs=1e-12)
    # every 5th: w and β span 5 times as many updates
    assert out_sparse["wf_10"] == approx(WF_EVALS_SPARSE, abs=1e-12)
    assert out_sparse["lca"] == approx(LCA_EVALS_SPARSE, abs=1e-12)
    assert out_sparse["wf_10"] != approx(WF_UPDATES)
    assert out_sparse["lca"] != approx(LCA_UPDATES)
    # w = 2: consecutive evaluations (5 updates apart) vs no pair at all (none < 2 updates
    # apart): the schedule is too sparse for the window, so the value is undefined, never 0
    assert windowed_forgetting(sparse, 2, unit="evaluations") == approx((0.5 + 0.5 + 0.3) / 3)
    assert windowed_forgetting(sparse, 2, unit="updates") is None
    assert windowed_plasticity(sparse, 2, unit="updates") is None
    assert compute_metrics(sparse, {**OPTS, "window_sizes": [2]})["wf_2"] is None


@pytest.mark.parametrize(
    "records",
    [
        pytest.param(lambda: toy_records(TOY_A), id="toy_a"),
        pytest.param(toy_a_with_preupdate, id="preupdate"),
        pytest.param(lambda: synthetic_records(n_tasks=3, steps_per_task=400), id="synthetic"),
        pytest.param(lambda: curve_records(1), id="curve"),
    ],
)
def test_units_agree_with_an_evaluation_after_every_update(records):
    frame = records()
    opts = {"window_sizes": [1, 3, 10, 100], "lca_beta": 2, "wp_mode": "official_pruned"}
    by_updates = compute_metrics(frame, {**opts, "window_unit": "updates"})
    by_evals = compute_metrics(frame, {**opts, "window_unit": "evaluations"})
    assert by_updates == by_evals


@settings(max_examples=60, deadline=None)
@given(rows=plain_streams(), w=st.integers(1, 6), beta=st.integers(1, 4))
def test_units_agree_on_plain_streams(rows, w, beta):
    records = toy_records(rows)
    for mode in ("exact", "official_pruned"):
        opts = {"window_sizes": [w], "lca_beta": beta, "wp_mode": mode}
        assert compute_metrics(records, {**opts, "window_unit": "updates"}) == compute_metrics(
            records, {**opts, "window_unit": "evaluations"}
        )


def test_recurring_task_lca_counts_updates_while_current():
    # Task 0 is current in phases 0 (2 updates) and 2 (4 updates), evaluated every 2 updates.
    # Its b counts on in phase 2: steps 8 and 10 are b = 4 and 6.
    records = toy_records(
        [
            (0, 0, {0: 0.1}),
            (2, 0, {0: 0.5}),
            (4, 1, {0: 0.3, 1: 0.6}),
            (6, 1, {0: 0.2, 1: 0.8}),
            (8, 2, {0: 0.7, 1: 0.7}),
            (10, 2, {0: 0.9, 1: 0.6}),
        ]
    )
    records.loc[records["phase"] == 2, "current_task"] = 0
    # β = 5: task 0 b = 0..4 -> steps 0, 2, 8; task 1 b = 1..5 -> steps 4 (b = 2) only,
    # but it was current for 4 updates only: left out.
    assert learning_curve_area(records, 5) == approx((0.1 + 0.5 + 0.7) / 3, abs=1e-12)
    # β = 4: task 1's window b = 1..4 holds steps 4 and 6
    expected = ((0.1 + 0.5) / 2 + (0.6 + 0.8) / 2) / 2
    assert learning_curve_area(records, 4) == approx(expected, abs=1e-12)
    # β = 8: task 0 needs b = 7, it has 6 updates as current task
    assert learning_curve_area(records, 8) is None
    # evaluation unit: the first β evaluations while current
    assert learning_curve_area(records, 4, unit="evaluations") == approx(
        ((0.1 + 0.5 + 0.7 + 0.9) / 4), abs=1e-12
    )


def test_lca_chaudhry_in_updates():
    records = toy_a_with_preupdate()
    # b = 0 (pre-update) and b = 1..2: task 0 (0.10, 0.80, 0.90), task 1 (0.05, 0.60, 0.85)
    expected = ((0.10 + 0.80 + 0.90) / 3 + (0.05 + 0.60 + 0.85) / 3) / 2
    assert learning_curve_area(records, 2, "chaudhry") == approx(expected, abs=1e-12)
    sparse = records[records["step"].isin([0, 2, 4, 6, 8])]
    # every 2nd update: task 0 b = 0 and 2, task 1 pre-update and b = 2
    expected = ((0.10 + 0.90) / 2 + (0.05 + 0.85) / 2) / 2
    assert learning_curve_area(sparse, 2, "chaudhry") == approx(expected, abs=1e-12)


def test_window_unit_errors():
    with pytest.raises(ValueError, match="window_unit: got 'steps'"):
        windowed_forgetting(toy_records(TOY_A), 3, unit="steps")
    with pytest.raises(ValueError, match="window_unit"):
        learning_curve_area(toy_records(TOY_A), 3, unit="evaluation")
    with pytest.raises(ValueError, match="strictly increasing"):
        max_window_decrease([0.1, 0.2], 3, steps=[4, 4])
    with pytest.raises(ValueError, match="steps"):
        max_window_increase([0.1, 0.2], 3, steps=[1])


# ---------------------------------------------------------------------------------------------
# Any set of evaluation steps: literal replays of the update windows


def replay_update_windows(seq, steps, w, sign, pruned=False):
    """Append evaluations one at a time; the window holds those less than w updates before the
    newest; score every pair (or the official running-max pruned pairs); keep the maximum."""
    best, window = 0.0, deque()
    for a, s in zip(seq, steps, strict=True):
        window.append((s, a))
        while window[0][0] <= s - w:
            window.popleft()
        vals = [v for _, v in window]
        running_max = float("-inf")
        for i, first in enumerate(vals):
            if pruned:
                if first < running_max:
                    continue
                running_max = first
            for j in range(i + 1, len(vals)):
                best = max(best, sign * (vals[j] - first))
    return best


@st.composite
def schedules(draw):
    """Accuracies on a 0.01 grid at strictly increasing, irregularly spaced steps."""
    n = draw(st.integers(0, 30))
    gaps = draw(st.lists(st.integers(1, 7), min_size=n, max_size=n))
    accs = draw(st.lists(st.integers(0, 100).map(lambda c: c / 100), min_size=n, max_size=n))
    return accs, np.cumsum(gaps).tolist()


@settings(max_examples=300, deadline=None)
@given(schedule=schedules(), w=st.integers(1, 15))
def test_update_windows_match_a_replay(schedule, w):
    accs, steps = schedule
    assert max_window_decrease(accs, w, steps) == replay_update_windows(accs, steps, w, -1)
    assert max_window_increase(accs, w, "exact", steps) == replay_update_windows(accs, steps, w, 1)
    assert max_window_increase(accs, w, "official_pruned", steps) == replay_update_windows(
        accs, steps, w, 1, pruned=True
    )


# ---------------------------------------------------------------------------------------------
# The evaluation unit is the earlier implementation, bit for bit


def legacy_decrease(seq, w):
    a = np.asarray(seq, dtype=float)
    best = 0.0
    for d in range(1, min(w, a.size)):
        best = max(best, float((a[:-d] - a[d:]).max()))
    return best


def legacy_increase(seq, w, pruned):
    a = np.asarray(seq, dtype=float)
    starts = None
    if pruned:
        starts = np.ones(a.size, dtype=bool)
        lo = max(0, a.size - w)
        tail = a[lo:]
        if tail.size:
            before = np.concatenate(([-np.inf], np.maximum.accumulate(tail)[:-1]))
            starts[lo:] = tail >= before
    best = 0.0
    for d in range(1, min(w, a.size)):
        diff = a[d:] - a[:-d]
        if starts is not None:
            diff = diff[starts[:-d]]
        if diff.size:
            best = max(best, float(diff.max()))
    return best


@settings(max_examples=200, deadline=None)
@given(schedule=schedules(), w=st.integers(1, 15))
def test_evaluation_unit_is_the_legacy_computation(schedule, w):
    accs, _ = schedule
    assert max_window_decrease(accs, w) == legacy_decrease(accs, w)
    assert max_window_increase(accs, w) == legacy_increase(accs, w, False)
    assert max_window_increase(accs, w, "official_pruned") == legacy_increase(accs, w, True)


def test_evaluation_unit_on_sparse_records_matches_legacy_per_task():
    sparse = curve_records(5)
    per_task = {t: sparse[(sparse.kind == "subset") & (sparse.task == t)] for t in SEGMENTS}
    seqs = {t: f.sort_values("step")["correct"].to_numpy() / 100 for t, f in per_task.items()}
    for w in (2, 3, 10):
        wf = np.mean([legacy_decrease(s, w) for s in seqs.values()])
        wp = np.mean([legacy_increase(s, w, True) for s in seqs.values()])
        assert windowed_forgetting(sparse, w, unit="evaluations") == wf
        assert windowed_plasticity(sparse, w, "official_pruned", unit="evaluations") == wp
