"""Metrics without boundaries (clbench/metrics/boundary_free.py) on hand-made record sets:
online accuracy, anytime average accuracy and the gaps after a task's share starts to fall."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings

from clbench.metrics import compute_metrics, per_task_minima, validate_records
from clbench.metrics.boundary_free import (
    Decline,
    anytime_average_accuracy,
    decline_gaps,
    decline_minima,
    declines,
    online_accuracy,
)
from tests.metrics.helpers import TOY_B, plain_streams, row, toy_records, with_rows

approx = pytest.approx

# Two tasks over five phases (two evaluations each, after one update each). Task 0 is in focus
# in phases 0-1 (share >= half its peak 1.0) and again in phase 4; task 1 in phases 2-3.
MIX = np.array(
    [
        [1.0, 0.0],
        [0.8, 0.2],
        [0.4, 0.6],
        [0.1, 0.9],
        [0.6, 0.4],
    ]
)
#        step: phase, {task: accuracy}
CURVES = [
    (0, 0, {0: 0.10}),
    (1, 0, {0: 0.60}),
    (2, 0, {0: 0.80}),  # task 0's onset: the end of phase 0, its top share
    (3, 1, {0: 0.50, 1: 0.05}),
    (4, 1, {0: 0.70, 1: 0.20}),
    (5, 2, {0: 0.40, 1: 0.40}),  # task 0's lowest point in its window (phases 1-3)
    (6, 2, {0: 0.60, 1: 0.60}),
    (7, 3, {0: 0.78, 1: 0.75}),  # task 0 back within 0.02 of 0.80: recovered after 2 updates
    (8, 3, {0: 0.90, 1: 0.85}),  # task 1's onset: the end of phase 3, its top share
    (9, 4, {0: 0.30, 1: 0.50}),  # task 0 in focus again: outside its window
    (10, 4, {0: 0.50, 1: 0.84}),  # task 1 back within 0.02 of 0.85 after 1 update
]


CURRENT = [0, 0, 1, 1, 0]  # each phase's current task: its focus


@pytest.fixture
def drifting() -> pd.DataFrame:
    return pd.DataFrame(
        [
            row(step, k, task, acc, current=CURRENT[k])
            for step, k, accs in CURVES
            for task, acc in accs.items()
        ]
    )


def test_declines_start_at_the_top_of_each_focus_episode():
    assert declines(MIX) == [Decline(task=0, onset_phase=0, end_phase=3), Decline(1, 3, 4)]
    # a plateau at the top: the onset is its last phase; an episode at the end has no window
    plateau = np.array([[0.5], [1.0], [1.0], [0.7], [0.2], [0.9]])
    assert declines(plateau) == [Decline(0, 2, 4)]
    # below half the peak a task is out of focus: 0.45 ends the first episode, 0.55 starts one
    dip = np.array([[1.0], [0.45], [0.55], [0.2]])
    assert declines(dip) == [Decline(0, 0, 1), Decline(0, 2, 3)]


def test_decline_gaps_hand_computed(drifting):
    gaps = {g.task: g for g in decline_gaps(drifting, MIX, recovery_eps=0.02)}
    assert gaps[0].onset_step == 2 and gaps[0].end_step == 8
    assert (gaps[0].reference, gaps[0].minimum, gaps[0].min_step) == approx((0.80, 0.40, 5))
    assert gaps[0].depth == approx(0.40) and gaps[0].recovery_time == 2
    assert gaps[1].onset_step == 8 and gaps[1].end_step == 10
    assert (gaps[1].reference, gaps[1].minimum, gaps[1].min_step) == approx((0.85, 0.50, 9))
    assert gaps[1].depth == approx(0.35) and gaps[1].recovery_time == 1
    # task 0's 0.30 at step 9 lies in its next focus episode, not in the window
    assert decline_minima(drifting, MIX) == {0: approx(0.40), 1: approx(0.50)}


def test_summary_reports_the_decline_metrics(drifting):
    out = compute_metrics(drifting, {"recovery_eps": 0.02}, chance=0.1, mix=MIX)
    assert out["decline_min_acc"] == approx((0.40 + 0.50) / 2)
    assert out["decline_gap_depth_mean"] == approx((0.40 + 0.35) / 2)
    assert out["decline_recovery_time_mean"] == approx((2 + 1) / 2)
    assert out["decline_recovered_fraction"] == 1.0
    counts = ("decline_pairs", "decline_forgotten_pairs", "decline_recovered_pairs")
    assert tuple(out[k] for k in counts) == (2, 0, 2)
    assert [d["task"] for d in out["declines"]] == [0, 1]
    # a reference at or below chance has nothing left to lose: listed, left out of the means
    lost = compute_metrics(drifting, chance=0.9, mix=MIX)
    assert tuple(lost[k] for k in counts) == (0, 2, 0)
    assert lost["decline_gap_depth_mean"] is None
    assert all(d["forgotten"] and d["recovery_time"] is None for d in lost["declines"])
    # without the stream's mix the decline metrics are undefined, not 0
    bare = compute_metrics(drifting)
    assert bare["decline_min_acc"] is None and bare["decline_pairs"] is None


def test_mix_must_have_a_row_per_phase(drifting):
    with pytest.raises(ValueError, match="one row per phase"):
        decline_gaps(drifting, MIX[:4])


def test_anytime_average_accuracy_weights_each_evaluation_by_the_updates_it_stands_for():
    # evaluations at steps 0, 2, 5, 6; the pre-update row of phase 1 (step 2) is left out
    records = with_rows(
        toy_records([(0, 0, {0: 0.10}), (2, 0, {0: 0.50}), (5, 1, {0: 0.80}), (6, 1, {0: 0.60})]),
        row(2, 1, 0, 0.0),
    )
    assert anytime_average_accuracy(records) == approx((0.50 * 2 + 0.80 * 3 + 0.60 * 1) / 6)


def test_anytime_average_accuracy_averages_the_seen_tasks(drifting):
    means = [0.60, 0.80, 0.275, 0.45, 0.40, 0.60, 0.765, 0.875, 0.40, 0.67]
    assert anytime_average_accuracy(drifting) == approx(sum(means) / 10)
    assert compute_metrics(drifting)["anytime_acc"] == approx(sum(means) / 10)


def online_rows() -> list[dict]:
    """Incoming batches of updates 1 and 2 (steps 0 and 1): 3/6 + 4/4, then 2/5 right."""
    return [
        row(0, 0, 0, 0.5, kind="online", n=6),
        row(0, 0, 1, 1.0, kind="online", n=4, current=0),
        row(1, 0, 0, 0.4, kind="online", n=5),
    ]


def test_online_accuracy_pools_the_incoming_samples():
    records = with_rows(toy_records(TOY_B), *online_rows())
    validate_records(records)
    assert online_accuracy(records) == approx((3 + 4 + 2) / 15)  # pooled, not (0.7 + 0.4) / 2
    assert online_accuracy(toy_records(TOY_B)) is None


def test_online_rows_change_no_other_metric():
    plain = toy_records(TOY_B)
    with_online = with_rows(plain, *online_rows())
    a, b = compute_metrics(plain), compute_metrics(with_online)
    assert b["online_acc"] == approx(0.6) and a["online_acc"] is None
    assert {k: v for k, v in a.items() if k != "online_acc"} == {
        k: v for k, v in b.items() if k != "online_acc"
    }


def test_on_a_sequential_stream_decline_min_acc_is_min_acc():
    records = toy_records(TOY_B)
    out = compute_metrics(records, mix=np.eye(3))  # phase k trains task k alone
    assert out["decline_min_acc"] == approx(out["min_acc"])


@settings(max_examples=40, deadline=None)
@given(plain_streams())
def test_decline_minima_are_the_official_minima_on_plain_streams(rows):
    records = toy_records(rows)
    n_tasks = max(k for _, k, _ in rows) + 1
    assert decline_minima(records, np.eye(n_tasks)) == approx(per_task_minima(records))
