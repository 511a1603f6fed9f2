"""Gap metrics that cannot reward forgetting, and where the WC-ACC identity holds.

Hand-computed record sets; builders from tests/metrics/helpers.py.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings

from clbench.metrics import (
    boundary_min_acc,
    chance_levels,
    compute_metrics,
    curves,
    gap_analysis,
    gap_depth,
    min_acc,
    per_task_minima,
    recovery_time,
    wc_acc,
)
from tests.metrics.helpers import TOY_A, TOY_B, plain_streams, toy_records

approx = pytest.approx

# Naive-like: every old task is at 0 soon after a switch and stays there. Pairs (0, 1) and
# (1, 2) start from a learned task; pair (0, 2) starts at 0 and has nothing left to lose.
NAIVE = [
    (0, 0, {0: 0.10}),
    (1, 0, {0: 0.60}),
    (2, 0, {0: 0.90}),
    (3, 1, {0: 0.20, 1: 0.50}),
    (4, 1, {0: 0.00, 1: 0.80}),
    (5, 1, {0: 0.00, 1: 0.95}),
    (6, 2, {0: 0.00, 1: 0.10, 2: 0.50}),
    (7, 2, {0: 0.00, 1: 0.00, 2: 0.85}),
    (8, 2, {0: 0.00, 1: 0.00, 2: 0.90}),
]


def test_naive_like_excludes_pairs_with_nothing_to_lose():
    records = toy_records(NAIVE)
    out = compute_metrics(records, {"recovery_eps": 0.02}, chance=0.1)
    gaps = {(g["task"], g["phase"]): g for g in out["gaps"]}
    assert set(gaps) == {(0, 1), (0, 2), (1, 2)}  # excluded pairs stay listed, marked
    assert [gaps[k]["forgotten"] for k in sorted(gaps)] == [False, True, False]
    assert gaps[(0, 2)]["reference"] == 0.0
    assert gaps[(0, 2)]["recovery_time"] is None  # not "recovered in 0 updates"
    assert gaps[(0, 2)]["chance"] == approx(0.1)
    assert (out["gap_pairs"], out["forgotten_pairs"], out["recovered_pairs"]) == (2, 1, 0)
    assert out["gap_depth_mean"] == approx((0.90 + 0.95) / 2, abs=1e-9)
    assert out["recovered_fraction"] == 0.0
    assert out["recovery_time_mean"] is None
    # Counting the forgotten pair, as before, would give recovery_time_mean 0.0,
    # recovered_fraction 1/3 and a shallower mean depth (0.90 + 0 + 0.95) / 3.
    assert gap_depth(records, 0, 2) is None
    assert recovery_time(records, 0, 2) is None
    assert gap_depth(records, 1, 2) == approx(0.95, abs=1e-9)


def test_naive_like_ranks_below_er_like():
    naive = compute_metrics(toy_records(NAIVE), {"recovery_eps": 0.05}, chance=0.1)
    er = compute_metrics(toy_records(TOY_B), {"recovery_eps": 0.05}, chance=0.1)
    assert naive["gap_depth_mean"] > er["gap_depth_mean"]  # lower is better: naive is worse
    assert naive["recovered_fraction"] < er["recovered_fraction"]


def test_er_like_unchanged_by_chance():
    # References well above chance: the summary is the one without a chance level, and the
    # hand-computed Toy B values.
    records = toy_records(TOY_B)
    opts = {"recovery_eps": 0.05}
    with_chance = compute_metrics(records, opts, chance=[0.1, 0.1, 0.1])
    without = compute_metrics(records, opts)
    for g in with_chance["gaps"]:
        g["chance"] = 0.0
    assert with_chance == without
    assert with_chance["gap_depth_mean"] == approx((0.45 + 0.37 + 0.60) / 3, abs=1e-9)
    assert with_chance["recovery_time_mean"] == approx(2.0, abs=1e-9)
    assert with_chance["recovered_fraction"] == approx(2 / 3, abs=1e-9)
    assert (with_chance["gap_pairs"], with_chance["forgotten_pairs"]) == (3, 0)
    assert with_chance["recovered_pairs"] == 2


def test_null_when_no_pair_is_left():
    # Task 0 never gets above chance (0.1): its only pair is excluded and every gap mean is null.
    records = toy_records(
        [(0, 0, {0: 0.10}), (1, 0, {0: 0.10}), (2, 1, {0: 0.00, 1: 0.5}), (3, 1, {0: 0.10, 1: 0.9})]
    )
    out = compute_metrics(records, chance=0.1)
    assert (out["gap_pairs"], out["forgotten_pairs"], out["recovered_pairs"]) == (0, 1, 0)
    for key in ("gap_depth_mean", "recovery_time_mean", "recovered_fraction"):
        assert out[key] is None, key
    [gap] = out["gaps"]
    assert gap["forgotten"] and gap["depth"] == approx(0.10, abs=1e-9)  # measured, not counted
    # Without the chance level the reference 0.10 is above 0: the pair counts and recovers.
    plain = compute_metrics(records)
    assert (plain["gap_pairs"], plain["forgotten_pairs"], plain["recovered_pairs"]) == (1, 0, 1)
    assert plain["gap_depth_mean"] == approx(0.10, abs=1e-9)
    assert plain["recovery_time_mean"] == 1.0


def test_chance_threshold_is_inclusive_and_per_task():
    records = toy_records(
        [
            (0, 0, {0: 0.30}),
            (1, 0, {0: 0.25}),
            (2, 1, {0: 0.05, 1: 0.30}),
            (3, 1, {0: 0.20, 1: 0.12}),
            (4, 2, {0: 0.00, 1: 0.05, 2: 0.40}),
        ]
    )
    # pairs: (0, 1) reference 0.25; (0, 2) reference 0.20; (1, 2) reference 0.12
    flags = {(g.task, g.phase): g.forgotten for g in gap_analysis(records, chance=[0.25, 0.1])}
    assert flags == {(0, 1): True, (0, 2): True, (1, 2): False}  # 0.25 <= 0.25; 0.12 > 0.10
    flags = {(g.task, g.phase): g.forgotten for g in gap_analysis(records, chance=0.125)}
    assert flags == {(0, 1): False, (0, 2): False, (1, 2): True}
    one_sixth = toy_records(
        [(0, 0, {0: 0.5}), (1, 0, {0: 1 / 6}), (2, 1, {0: 0.0, 1: 0.5})], n=600
    )  # 100 / 600 against 1 / 6 computed elsewhere
    [gap] = gap_analysis(one_sixth, chance=[1 / 6])
    assert gap.forgotten


def test_chance_levels_from_the_plan():
    tasks = [SimpleNamespace(output_ids=(0, 1)), SimpleNamespace(output_ids=(2, 3, 4))]
    class_il = SimpleNamespace(task_ids_at_test=False, num_outputs=10, num_tasks=2, tasks=tasks)
    assert chance_levels(class_il) == [0.1, 0.1]
    task_il = SimpleNamespace(task_ids_at_test=True, num_outputs=5, num_tasks=2, tasks=tasks)
    assert chance_levels(task_il) == approx([1 / 2, 1 / 3])


# ---------------------------------------------------------------------------------------------
# WC-ACC = (1/k)·a(c, t) + (1 - 1/k)·min-ACC_t, k = number of tasks seen


def paper_form(curve: pd.DataFrame, seen: list[int], acc_current: list[float]) -> list[float]:
    out = []
    for k, a, m in zip(seen, acc_current, curve["min_acc"], strict=True):
        out.append(a if k == 1 else a / k + (1 - 1 / k) * m)
    return out


@settings(max_examples=60, deadline=None)
@given(rows=plain_streams())
def test_wc_acc_identity_holds_on_plain_streams(rows):
    curve = curves(toy_records(rows))
    seen = [len(accs) for _, _, accs in rows]
    current = [accs[k] for _, k, accs in rows]
    assert curve["wc_acc"].tolist() == approx(paper_form(curve, seen, current), abs=1e-12)


def test_wc_acc_identity_fails_on_a_recurrence_stream():
    # Phase 2 trains task 0 again: it already has a minimum (0.5, from phase 1).
    records = toy_records(
        [(0, 0, {0: 0.1}), (2, 0, {0: 0.9}), (4, 1, {0: 0.5, 1: 0.8}), (6, 2, {0: 0.9, 1: 0.6})]
    )
    records.loc[records["phase"] == 2, "current_task"] = 0
    a_current, k = 0.9, 2
    m = per_task_minima(records)
    assert m == {0: approx(0.5), 1: approx(0.6)}
    assert min_acc(records) == approx(0.55, abs=1e-12)
    assert wc_acc(records) == approx(0.75, abs=1e-12)  # mean of a(0, t) and m_1
    paper = a_current / k + (1 - 1 / k) * min_acc(records)
    assert paper == approx(0.725, abs=1e-12)
    assert not np.isclose(wc_acc(records), paper)
    # what holds instead when the current task has a minimum m_c: min-ACC + (a(c, t) - m_c) / k
    assert wc_acc(records) == approx(min_acc(records) + (a_current - m[0]) / k, abs=1e-12)


# min-ACC from the boundary evaluations only: the last point of each phase (steps 4, 8 in Toy A;
# 3, 6, 9 in Toy B), same "old task" rule.
def test_boundary_min_acc_toy_a_sees_only_the_recovered_value():
    records = toy_records(TOY_A)
    assert boundary_min_acc(records) == approx(0.88, abs=1e-12)  # task 0 at step 8
    out = compute_metrics(records)
    assert out["min_acc"] == approx(0.40, abs=1e-12)  # the dip at step 5
    assert out["hidden_gap"] == approx(0.48, abs=1e-12)


def test_boundary_min_acc_toy_b_averages_old_tasks_at_later_boundaries():
    records = toy_records(TOY_B)
    # task 0: min(0.97 at step 6, 0.88 at step 9); task 1: 0.87 at step 9
    assert boundary_min_acc(records) == approx((0.88 + 0.87) / 2, abs=1e-12)
    assert compute_metrics(records)["hidden_gap"] == approx(0.875 - 0.40, abs=1e-12)


def test_boundary_min_acc_is_none_for_one_task():
    records = toy_records([(0, 0, {0: 0.1}), (1, 0, {0: 0.9})])
    assert boundary_min_acc(records) is None
    assert compute_metrics(records)["hidden_gap"] is None


@settings(max_examples=60, deadline=None)
@given(plain_streams())
def test_boundary_min_acc_never_below_min_acc(rows):
    records = toy_records(rows)
    boundary, every = boundary_min_acc(records), min_acc(records)
    assert (boundary is None) == (every is None)
    if every is not None:
        assert boundary >= every - 1e-12
