"""``eval.schedule`` (clbench.engine.schedule): the adaptive schedule's steps as specified, a run
evaluating exactly there, training that does not depend on the schedule, the config hash, the
validation of the adaptive settings, and the metrics on a hand-made non-uniform record set."""

from __future__ import annotations

import itertools

import pandas as pd
import pytest
import torch

from clbench.config import build_config, config_hash
from clbench.engine.checkpoint import Checkpointer, load_checkpoint
from clbench.engine.run_dir import CHECKPOINT_FILE
from clbench.engine.runner import Experiment, RunInterrupted, prepare
from clbench.engine.schedule import EvalSchedule, adaptive_steps
from clbench.errors import ConfigError
from clbench.metrics.stability import gap_analysis, gap_depth, min_acc, recovery_time, wc_acc
from clbench.metrics.summary import compute_metrics
from clbench.metrics.windowed import windowed_forgetting
from tests.engine.helpers import run_with_stops
from tests.helpers import experiment, fast_overrides

approx = pytest.approx

# --------------------------------------------------------------------------- adaptive_steps


def spec_steps(n: int, dense: int, growth: float, max_every: int) -> list[int]:
    """The specification, written out independently: 1..min(dense, n), then the k-th spacing
    (k = 1, 2, ...) ``min(max_every, round(growth**k))`` while it stays inside the phase, and
    the phase's last update n."""
    steps = list(range(1, min(dense, n) + 1))
    at = len(steps)
    for k in range(1, n + 1):  # at most n spacings (each is >= 1)
        at += min(max_every, max(1, round(growth**k)))
        if at >= n:
            break
        steps.append(at)
    if n > 0 and n not in steps:
        steps.append(n)
    return steps


def test_adaptive_steps_dense_window_then_geometric_spacings():
    # dense 10, growth 1.5: spacings round(1.5^k) = 2, 2, 3, 5, 8, 11, 17, 26 (Python rounds
    # halves to even: round(1.5) = 2, round(2.25) = 2, round(3.375) = 3, round(5.0625) = 5,
    # round(7.59) = 8, round(11.39) = 11, round(17.09) = 17, round(25.63) = 26)
    assert adaptive_steps(100, 10, 1.5, 50) == [
        *range(1, 11),  # the dense window: every update
        12, 14, 17, 22, 30, 41, 58, 84,  # 10 + 2, +2, +3, +5, +8, +11, +17, +26
        100,  # next would be 84 + 38 = 122 > 100: the phase's last update closes it
    ]  # fmt: skip


def test_adaptive_steps_spacing_capped_at_max_every():
    # growth 2: spacings 2, 4, 8, then min(5, 16) = 5 for good
    assert adaptive_steps(40, 3, 2.0, 5) == [1, 2, 3, 5, 9, 14, 19, 24, 29, 34, 39, 40]
    # max_every = 1: every update, whatever growth says
    assert adaptive_steps(12, 2, 3.0, 1) == list(range(1, 13))


def test_adaptive_steps_last_update_always_included():
    # a spacing landing exactly on the last update, and one overshooting it
    assert adaptive_steps(14, 10, 1.5, 50) == [*range(1, 11), 12, 14]
    assert adaptive_steps(15, 10, 1.5, 50) == [*range(1, 11), 12, 14, 15]
    assert adaptive_steps(13, 10, 1.5, 50) == [*range(1, 11), 12, 13]
    for n in range(1, 300):
        steps = adaptive_steps(n, 50, 1.5, 50)
        assert steps[-1] == n
        assert steps == sorted(set(steps))


def test_adaptive_steps_dense_larger_than_the_phase_is_every_update():
    assert adaptive_steps(7, 50, 1.5, 50) == [1, 2, 3, 4, 5, 6, 7]
    assert adaptive_steps(50, 50, 1.5, 50) == list(range(1, 51))
    assert adaptive_steps(1, 50, 1.5, 50) == [1]


def test_adaptive_steps_dense_zero_starts_with_the_spacings():
    # no dense window: 0 + 2, +2, +3, +5, +8 = 2, 4, 7, 12, 20, then the end 25
    assert adaptive_steps(25, 0, 1.5, 50) == [2, 4, 7, 12, 20, 25]
    # growth 1: spacing round(1^k) = 1, i.e. every update
    assert adaptive_steps(6, 0, 1.0, 50) == [1, 2, 3, 4, 5, 6]


def test_adaptive_steps_empty_phase():
    assert adaptive_steps(0, 50, 1.5, 50) == []
    assert adaptive_steps(0, 0, 1.5, 50) == []


@pytest.mark.parametrize("growth", [1.0, 1.2, 1.5, 2.0, 3.7])
@pytest.mark.parametrize("dense", [0, 1, 5, 50])
@pytest.mark.parametrize("max_every", [1, 3, 50])
def test_adaptive_steps_match_the_specification(growth, dense, max_every):
    for n in (0, 1, 2, 3, 9, 10, 11, 49, 50, 51, 64, 200, 471):
        assert adaptive_steps(n, dense, growth, max_every) == spec_steps(
            n, dense, growth, max_every
        ), (n, dense, growth, max_every)


def test_adaptive_steps_long_phases_do_not_overflow():
    """Regression: growth**k was computed for every spacing, so a phase with more than ~1,700
    spacings (growth 1.5, e.g. 90,000 updates) or ~155 (growth 100) raised OverflowError."""
    steps = adaptive_steps(200_000, 50, 1.5, 50)
    assert steps[:50] == list(range(1, 51)) and steps[-1] == 200_000
    assert max(b - a for a, b in itertools.pairwise(steps)) == 50
    steps = adaptive_steps(10_000, 50, 100.0, 50)
    # dense 1..50, then spacing min(50, round(100^k)) = 50 throughout: 100, 150, ..., 10000
    assert steps == [*range(1, 51), *range(100, 10_001, 50)]


def walk(schedule: EvalSchedule, phases: tuple[int, ...], accuracy=None) -> list[list[int]]:
    """The phase steps a loop asking ``schedule`` evaluates, phase by phase; ``accuracy(phase,
    phase_step)`` gives the seen tasks' accuracies the loop reports after each evaluation."""
    due, step = [], 0
    for phase, n in enumerate(phases):
        due.append([])
        for s in range(1, n + 1):
            step += 1
            if schedule.due(phase, step, s, s, s == n):
                due[-1].append(s)
                acc = None if accuracy is None else torch.tensor(accuracy(phase, s))
                schedule.evaluated(s, acc)
    return due


def _schedule(*overrides: str) -> EvalSchedule:
    return EvalSchedule(build_config(None, ["eval.schedule=adaptive", *overrides]).eval)


def test_schedule_due_every_and_adaptive():
    schedule = _schedule("eval.dense=2", "eval.max_every=3")
    # phase 0: 1, 2, then +2 = 4, then the end 6; phase 1: 1, 2, 4, +2 = 6, +3 = 9
    assert walk(schedule, (6, 9)) == [[1, 2, 4, 6], [1, 2, 4, 6, 9]]
    every = EvalSchedule(build_config(None, ["eval.every=4"]).eval)
    # every 4 updates of the global counter, and at phase ends
    assert walk(every, (6, 9)) == [[4, 6], [2, 6, 9]]


@pytest.mark.parametrize(
    ("dense", "growth", "max_every"), [(0, 1.5, 50), (3, 2.0, 5), (50, 1.5, 50)]
)
def test_schedule_without_refine_is_adaptive_steps(dense, growth, max_every):
    phases = (1, 7, 64, 471, 2)
    schedule = _schedule(
        f"eval.dense={dense}", f"eval.growth={growth}", f"eval.max_every={max_every}"
    )
    assert walk(schedule, phases) == [adaptive_steps(n, dense, growth, max_every) for n in phases]


def test_refine_restarts_the_spacings_where_accuracy_moves():
    """dense 2, growth 2, max_every 8, refine 0.05; accuracy of task 0 (task 1 joins in phase 1)
    flat at 0.5 except a fall to 0.3 by update 11 of phase 0."""
    schedule = _schedule("eval.dense=2", "eval.growth=2", "eval.max_every=8", "eval.refine=0.05")

    def accuracy(phase: int, s: int) -> list[float]:
        old = 0.3 if phase == 0 and s >= 11 else 0.5
        return [old] if phase == 0 else [0.5, 0.9]

    # phase 0: dense 1, 2; spacings 2, 4 -> 4, 8; at 8 nothing moved: +8 -> 16; at 16 the fall
    # (0.5 -> 0.3) restarts the spacings: +1 -> 17, +2 -> 19 (flat again), +4 -> 23, +8 -> 31,
    # end 32. Phase 1: task 1 joins; refine compares the tasks both evaluations saw, so the
    # phase start (task 0 back at 0.5 from 0.3) is in the dense window and does not count.
    assert walk(schedule, (32, 20), accuracy) == [
        [1, 2, 4, 8, 16, 17, 19, 23, 31, 32],
        [1, 2, 4, 8, 16, 20],
    ]
    # unset, the same fall changes nothing: adaptive_steps
    plain = _schedule("eval.dense=2", "eval.growth=2", "eval.max_every=8")
    assert walk(plain, (32, 20), accuracy) == [adaptive_steps(n, 2, 2, 8) for n in (32, 20)]


def test_refine_counts_moves_past_the_dense_window_above_the_tolerance():
    # dense 3, growth 2, max_every 4; values exact in float32
    values = {1: 0.0, 2: 0.5, 3: 0.75, 5: 0.8125, 9: 0.9375}

    def accuracy(phase: int, s: int) -> list[float]:
        return [values.get(s, 0.9375)]

    def steps(refine: float) -> list[list[int]]:
        settings = ("eval.dense=3", "eval.growth=2", "eval.max_every=4", f"eval.refine={refine}")
        return walk(_schedule(*settings), (16,), accuracy)

    # the moves at 2 and 3 (0.5, 0.25) are inside the dense window and do not count; at 5 it
    # moved 0.0625 (spacings go on: +4 -> 9); at 9 by 0.125 > 0.1: +1 -> 10, +2 -> 12, +4 -> 16
    assert steps(0.1) == [[1, 2, 3, 5, 9, 10, 12, 16]]
    # a move of exactly the tolerance is not "more than" it: 9 + 4 = 13, end 16
    assert steps(0.125) == [[1, 2, 3, 5, 9, 13, 16]]


# --------------------------------------------------------------------------- runs

ADAPTIVE = {"eval.schedule": "adaptive", "eval.dense": 3, "eval.growth": 1.5, "eval.max_every": 4}
ER = {"strategy.name": "er", "strategy.buffer_size": 20}  # replay draws random numbers


def subset_steps(exp) -> list[int]:
    frame = exp.log.frame()
    return sorted(frame.loc[frame["kind"] == "subset", "step"].unique().tolist())


def test_adaptive_run_evaluates_exactly_at_the_scheduled_steps(tmp_path):
    exp = experiment(tmp_path, **ER, **ADAPTIVE)
    per_phase = exp.loop.plan.updates_per_phase
    # fast_overrides: 4 tasks x 120 samples / 16 per batch = 8 batches x 2 epochs per phase
    assert per_phase == (16, 16, 16, 16)
    # 1, 2, 3 (dense), +2 = 5, +2 = 7, +3 = 10, +min(4, 5) = 14, then the end 16
    assert adaptive_steps(16, 3, 1.5, 4) == [1, 2, 3, 5, 7, 10, 14, 16]
    expected = [0]
    for k in range(4):
        expected += [16 * k + s for s in (1, 2, 3, 5, 7, 10, 14, 16)]
    assert subset_steps(exp) == expected
    # at each evaluation every seen task is evaluated, in the phase that was training
    frame = exp.log.frame()
    subset = frame[(frame["kind"] == "subset") & (frame["step"] > 0)]
    assert (subset["phase"] == (subset["step"] - 1) // 16).all()
    tasks = subset.groupby("step")["task"]
    assert (tasks.nunique() == tasks.max() + 1).all() and (tasks.min() == 0).all()


def test_every_and_adaptive_train_identically(tmp_path):
    every = experiment(tmp_path / "every", **ER)
    adaptive = experiment(tmp_path / "adaptive", **ER, **ADAPTIVE)
    assert len(subset_steps(every)) == 65 and len(subset_steps(adaptive)) == 33
    assert torch.equal(torch.stack(every.train_losses), torch.stack(adaptive.train_losses))
    for (name, a), (_, b) in zip(
        every.model.named_parameters(), adaptive.model.named_parameters(), strict=True
    ):
        assert torch.equal(a, b), name
    # and the evaluations both made are the same numbers
    cols = ["step", "phase", "task", "kind", "n", "correct"]
    a, b = every.log.frame(), adaptive.log.frame()
    a = a[a["step"].isin(set(b["step"]))][cols].sort_values(cols[:4]).reset_index(drop=True)
    b = b[cols].sort_values(cols[:4]).reset_index(drop=True)
    pd.testing.assert_frame_equal(a, b)


# --------------------------------------------------------------------------- config hash


def _hash(tmp_path, **extra) -> str:
    return config_hash(build_config(None, fast_overrides(tmp_path, **extra)))


def test_every_run_hash_ignores_the_adaptive_settings(tmp_path):
    base = _hash(tmp_path)
    assert _hash(tmp_path, **{"eval.schedule": "every"}) == base
    tuned = {"eval.dense": 7, "eval.growth": 2.5, "eval.max_every": 9, "eval.refine": 0.02}
    assert _hash(tmp_path, **tuned) == base  # unused by `every`
    assert _hash(tmp_path, **{"eval.every": 2}) != base


def test_adaptive_run_hash_ignores_every_and_counter(tmp_path):
    adaptive = _hash(tmp_path, **ADAPTIVE)
    assert adaptive != _hash(tmp_path)
    assert _hash(tmp_path, **ADAPTIVE, **{"eval.every": 7}) == adaptive
    assert _hash(tmp_path, **ADAPTIVE, **{"eval.counter": "per_phase"}) == adaptive
    changed = (
        ("eval.dense", 4),
        ("eval.growth", 2.0),
        ("eval.max_every", 5),
        ("eval.refine", 0.02),
    )
    for key, value in changed:
        assert _hash(tmp_path, **{**ADAPTIVE, key: value}) != adaptive, key


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("eval.growth", 0.5),
        ("eval.max_every", 0),
        ("eval.dense", -1),
        ("eval.schedule", "sparse"),
        ("eval.refine", 0),
        ("eval.refine", 1.5),
    ],
)
def test_adaptive_settings_are_validated(tmp_path, field, value):
    with pytest.raises(ConfigError, match=field.replace(".", r"\.")) as info:
        build_config(None, fast_overrides(tmp_path, **{"eval.schedule": "adaptive", field: value}))
    assert info.value.field == field


# --------------------------------------------------------------------------- metrics


def _row(step, phase, task, acc, kind="subset"):
    n = 100
    correct = round(acc * n)
    assert correct / n == approx(acc, abs=1e-12)
    return {
        "step": step,
        "phase": phase,
        "current_task": phase,
        "task": task,
        "kind": kind,
        "n": n,
        "correct": correct,
        "loss": 1.0 - acc,
    }


# Three phases of a sparse, non-uniform schedule (phase 0: updates 1-4, phase 1: 5-20,
# phase 2: 21-36; as `adaptive` would evaluate: densely after each switch, then sparser).
# (step, phase, {task: subset accuracy})
NON_UNIFORM = [
    (0, 0, {0: 0.10}),
    (1, 0, {0: 0.50}),
    (2, 0, {0: 0.80}),
    (4, 0, {0: 0.90}),  # end of phase 0
    (5, 1, {0: 0.60, 1: 0.40}),
    (6, 1, {0: 0.50, 1: 0.60}),  # task 0's lowest point
    (7, 1, {0: 0.70, 1: 0.70}),
    (9, 1, {0: 0.85, 1: 0.80}),
    (13, 1, {0: 0.89, 1: 0.85}),
    (20, 1, {0: 0.88, 1: 0.90}),  # end of phase 1
    (21, 2, {0: 0.80, 1: 0.55, 2: 0.30}),  # task 1's lowest point
    (22, 2, {0: 0.70, 1: 0.60, 2: 0.50}),
    (24, 2, {0: 0.75, 1: 0.65, 2: 0.70}),
    (28, 2, {0: 0.86, 1: 0.70, 2: 0.80}),
    (36, 2, {0: 0.87, 1: 0.89, 2: 0.85}),  # end of phase 2
]


def non_uniform_records() -> pd.DataFrame:
    ends = {k: step for step, k, _ in NON_UNIFORM}
    rows = []
    for step, k, accs in NON_UNIFORM:
        for task, acc in accs.items():
            rows.append(_row(step, k, task, acc))
            if step == ends[k]:  # the full-test-set rows at phase ends: the same values
                rows.append(_row(step, k, task, acc, kind="full"))
    return pd.DataFrame(rows)


def test_metrics_on_a_non_uniform_record_set():
    records = non_uniform_records()
    # m_0: task 0 is old from phase 1 on: min(0.60, 0.50, 0.70, 0.85, 0.89, 0.88, 0.80, 0.70,
    #      0.75, 0.86, 0.87) = 0.50 (step 6); m_1: task 1 old in phase 2: min(0.55, 0.60, 0.65,
    #      0.70, 0.89) = 0.55 (step 21).
    # min-ACC = (0.50 + 0.55) / 2 = 0.525
    assert min_acc(records) == approx(0.525)
    # WC-ACC at step 36: current task 2 at 0.85 with the two minima: (0.85 + 0.50 + 0.55) / 3
    assert wc_acc(records) == approx(1.90 / 3)

    # gap (task 0, phase 1): reference 0.90 (step 4), minimum 0.50 (step 6): depth 0.40;
    #   recovered at the first evaluation >= 0.90 - 0.02 = 0.88 from step 6 on: step 13 (0.89),
    #   13 - 6 = 7 updates (the schedule has no point between 9 and 13).
    # gap (task 0, phase 2): reference 0.88 (step 20), minimum 0.70 (step 22): depth 0.18;
    #   >= 0.86 at step 28 (0.86, exactly the threshold): 28 - 22 = 6 updates.
    # gap (task 1, phase 2): reference 0.90 (step 20), minimum 0.55 (step 21): depth 0.35;
    #   >= 0.88 only at step 36 (0.89): 36 - 21 = 15 updates.
    assert gap_depth(records, 0, 1) == approx(0.40)
    assert gap_depth(records, 0, 2) == approx(0.18)
    assert gap_depth(records, 1, 2) == approx(0.35)
    assert recovery_time(records, 0, 1) == 7
    assert recovery_time(records, 0, 2) == 6
    assert recovery_time(records, 1, 2) == 15
    assert [(g.task, g.phase, g.min_step) for g in gap_analysis(records)] == [
        (0, 1, 6),
        (0, 2, 22),
        (1, 2, 21),
    ]
    # recovery with a tighter epsilon 0.01: task 0 phase 1 needs 0.89: step 13 again (7);
    # task 0 phase 2 needs 0.87: only step 36 (36 - 22 = 14)
    assert recovery_time(records, 0, 1, recovery_eps=0.01) == 7
    assert recovery_time(records, 0, 2, recovery_eps=0.01) == 14

    # WF^10 (window of 10 updates: pairs of evaluations less than 10 updates apart):
    #   task 0: 0.90 (step 4) -> 0.50 (step 6) = 0.40 (0.89 at 13 -> 0.70 at 22 is only 0.19)
    #   task 1: 0.90 (step 20) -> 0.55 (step 21) = 0.35;  task 2: only rises, 0
    #   WF^10 = (0.40 + 0.35 + 0) / 3 = 0.25
    assert windowed_forgetting(records, 10) == approx(0.25)
    # WF^2 (pairs 1 update apart): task 0: 0.90 -> 0.60 (4 -> 5, across the switch) = 0.30
    #   (0.60 -> 0.50 at 5 -> 6 and 0.80 -> 0.70 at 21 -> 22 are 0.10); task 1: 0.90 -> 0.55
    #   (20 -> 21) = 0.35; task 2: 0. WF^2 = 0.65 / 3. Step 4 -> 6 (0.40) is 2 updates apart.
    assert windowed_forgetting(records, 2) == approx(0.65 / 3)

    summary = compute_metrics(records)
    assert summary["min_acc"] == approx(0.525)
    assert summary["wc_acc"] == approx(1.90 / 3)
    assert summary["gap_depth_mean"] == approx((0.40 + 0.18 + 0.35) / 3)  # 0.31
    assert summary["recovery_time_mean"] == approx((7 + 6 + 15) / 3)
    assert summary["wf_10"] == approx(0.25)
    # final accuracy: the full rows of the last phase, (0.87 + 0.89 + 0.85) / 3
    assert summary["final_acc"] == approx(2.61 / 3)


# --------------------------------------------------------------------------- refine in a run


REFINE = {**ADAPTIVE, "eval.dense": 2, "eval.refine": 0.05}


def test_refine_run_resumes_where_the_uninterrupted_run_evaluates(tmp_path):
    """The schedule's position travels in the checkpoint: stopped inside phases (after an
    evaluation the refinement moved, and between evaluations), the resumed run evaluates at the
    same steps and writes the same records."""
    config = build_config(None, fast_overrides(tmp_path, **ER, **REFINE))
    reference = Experiment(prepare(config))
    reference.run()
    steps = subset_steps(reference)
    plain = subset_steps(experiment(tmp_path / "plain", **ER, **{**ADAPTIVE, "eval.dense": 2}))
    assert len(steps) > len(plain), "refine must add evaluations here"
    exp = run_with_stops(config, {18, 21, 35}, tmp_path)  # inside phases 1 and 2
    pd.testing.assert_frame_equal(exp.log.frame(), reference.log.frame())


def test_resume_from_a_checkpoint_without_schedule_state(tmp_path):
    """Checkpoints written before the schedule kept a state: without refine, the position in the
    phase is recomputed from the steps."""
    config = build_config(None, fast_overrides(tmp_path, **ER, **ADAPTIVE))
    reference = Experiment(prepare(config))
    reference.run()
    path = tmp_path / CHECKPOINT_FILE
    exp = Experiment(prepare(config))
    with pytest.raises(RunInterrupted):
        exp.run(
            None, Checkpointer(path, 0, True), lambda: "SIGTERM" if exp.loop.step == 21 else None
        )
    position, checkpoint = load_checkpoint(path)
    for half in ("current", "phase_start"):
        del checkpoint[half]["schedule"]
    resumed = Experiment(prepare(config))
    resumed.restore(position, checkpoint)
    resumed.run()
    pd.testing.assert_frame_equal(resumed.log.frame(), reference.log.frame())
