"""Record builders and toy streams shared by the metrics tests: rows of hand-chosen accuracies,
Toy A / Toy B (hand-computed in test_metrics.py), random plain streams and long synthetic ones."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import strategies as st

approx = pytest.approx


def row(step, phase, task, acc, *, kind="subset", n=100, current=None):
    correct = round(acc * n)
    assert correct / n == approx(acc, abs=1e-12), "choose n so that the accuracy is exact"
    return {
        "step": step,
        "phase": phase,
        "current_task": phase if current is None else current,
        "task": task,
        "kind": kind,
        "n": n,
        "correct": correct,
        "loss": 1.0 - acc,
    }


def toy_records(rows, *, n=100, full=True):
    """Toy rows ``(step, k, accs)`` as subset rows, plus ``full`` rows with the same values
    at each phase's last step (the toys use the same evaluations at boundaries)."""
    end = {}
    for step, k, _ in rows:
        end[k] = step
    out = []
    for step, k, accs in rows:
        for task, acc in accs.items():
            out.append(row(step, k, task, acc, n=n))
            if full and step == end[k]:
                out.append(row(step, k, task, acc, kind="full", n=n))
    return pd.DataFrame(out)


def with_rows(records, *extra):
    return pd.concat([records, pd.DataFrame(list(extra))], ignore_index=True)


TOY_A = [
    (0, 0, {0: 0.10}),
    (1, 0, {0: 0.80}),
    (2, 0, {0: 0.90}),
    (3, 0, {0: 0.94}),
    (4, 0, {0: 0.95}),
    (5, 1, {0: 0.40, 1: 0.60}),
    (6, 1, {0: 0.70, 1: 0.85}),
    (7, 1, {0: 0.85, 1: 0.90}),
    (8, 1, {0: 0.88, 1: 0.93}),
]


TOY_B = [
    (0, 0, {0: 0.10}),
    (1, 0, {0: 0.70}),
    (2, 0, {0: 0.90}),
    (3, 0, {0: 0.95}),
    (4, 1, {0: 0.50, 1: 0.60}),
    (5, 1, {0: 0.80, 1: 0.80}),
    (6, 1, {0: 0.97, 1: 0.90}),
    (7, 2, {0: 0.60, 1: 0.30, 2: 0.50}),
    (8, 2, {0: 0.85, 1: 0.70, 2: 0.75}),
    (9, 2, {0: 0.88, 1: 0.87, 2: 0.90}),
]


def toy_a_with_preupdate(task0=0.95, task1=0.05):
    """Toy A with ``preupdate_every_task``: phase 1 evaluates tasks 0 and 1 at step 4 first."""
    return with_rows(toy_records(TOY_A), row(4, 1, 0, task0), row(4, 1, 1, task1))


@st.composite
def plain_streams(draw):
    """Plain streams as toy rows: K tasks, 1..5 updates each, accuracies on a 0.01 grid."""
    n_tasks = draw(st.integers(1, 4))
    acc = st.integers(0, 100).map(lambda c: c / 100)
    rows, step = [(0, 0, {0: draw(acc)})], 0
    for k in range(n_tasks):
        for _ in range(draw(st.integers(1, 5))):
            step += 1
            rows.append((step, k, {i: draw(acc) for i in range(k + 1)}))
    return rows


def synthetic_records(n_tasks=5, steps_per_task=3400, seed=0):
    rng = np.random.default_rng(seed)
    frames, step = [], 0
    for k in range(n_tasks):
        steps = np.arange(step + (k > 0), step + steps_per_task + 1)
        step = int(steps[-1])
        for t in range(k + 1):
            frames.append(
                pd.DataFrame(
                    {
                        "step": steps,
                        "phase": k,
                        "current_task": k,
                        "task": t,
                        "kind": "subset",
                        "n": 1000,
                        "correct": rng.integers(0, 1001, steps.size),
                        "loss": rng.random(steps.size),
                    }
                )
            )
            frames.append(
                pd.DataFrame(
                    {
                        "step": [step],
                        "phase": k,
                        "current_task": k,
                        "task": t,
                        "kind": "full",
                        "n": 2000,
                        "correct": rng.integers(0, 2001, 1),
                        "loss": 0.5,
                    }
                )
            )
    return pd.concat(frames, ignore_index=True)
