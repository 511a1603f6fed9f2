"""Online accuracy in the loop (`eval.online_accuracy`): each incoming batch evaluated with the
weights before the first update that uses it, recorded as ``online`` rows that also hold the
stream's task mix per update; training unchanged, resumable bit-identically, summarised."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from clbench.config import build_config
from clbench.engine.evaluator import evaluation_mode
from clbench.engine.job import run_job
from clbench.engine.runner import Experiment, prepare
from clbench.metrics.boundary_free import decline_minima
from tests.engine.helpers import run_with_stops
from tests.helpers import fast_overrides


def online_overrides(tmp_path: Path, phase_size: int = 8, **extra: Any) -> list[str]:
    """4 tasks of 120 samples streamed in phases of ``phase_size``, each trained on for two
    epochs of batches of 8 (phase size 8: two updates on each incoming batch)."""
    inner = "{name: class_incremental, n_experiences: 4}"
    settings = {
        "strategy.name": "naive",
        "scenario": f"{{name: online, phase_size: {phase_size}, of: {inner}}}",
        "train.batch_size": 8,
        "train.epochs": 2,
        "eval.online_accuracy": "true",
        "eval.subset_size": 20,
        "eval.boundary_full_eval": "false",
        "eval.track_forward": "false",
        "threads": 1,
    }
    overrides = fast_overrides(tmp_path, **(settings | extra))
    return [o for o in overrides if not o.startswith("scenario.")]  # fast_overrides' own


def online_frame(records: pd.DataFrame) -> pd.DataFrame:
    return records[records["kind"] == "online"].reset_index(drop=True)


def test_online_rows_evaluate_each_incoming_batch_before_its_first_update(tmp_path):
    exp = Experiment(prepare(build_config(None, online_overrides(tmp_path))))
    weights = []  # weights[s]: after s updates

    def keep_weights(_step: int = 0) -> None:
        weights.append({k: v.clone() for k, v in exp.model.state_dict().items()})

    keep_weights()
    exp.run(on_update=keep_weights)
    online = online_frame(exp.log.frame())
    plan = exp.prepared.plan
    assert len(plan.phases) == 60
    # one incoming batch per phase, two updates on it: only the first sees it unseen
    assert sorted(online["step"].unique()) == [2 * k for k in range(60)]
    for k, phase in enumerate(plan.phases):
        rows = online[online["step"] == 2 * k].set_index("task")
        assert rows["n"].to_dict() == phase.task_counts()  # the stream's task mix per update
        assert (rows["phase"] == k).all()
        index = torch.as_tensor(np.concatenate([p.indices for p in phase.parts]))
        task = torch.cat([torch.full((len(p.indices),), p.task) for p in phase.parts])
        batch = exp.data.make_batch(index, task)
        exp.model.load_state_dict(weights[2 * k])  # the weights before update 2k + 1
        with evaluation_mode(exp.model):
            right = exp.strategy.predict(batch.x, batch.task).argmax(1) == batch.y
        for t in phase.task_counts():
            assert rows.loc[t, "correct"] == int(right[task == t].sum())


def test_measuring_online_accuracy_changes_no_training(tmp_path):
    measured = Experiment(prepare(build_config(None, online_overrides(tmp_path / "a"))))
    measured.run()
    plain_overrides = online_overrides(tmp_path / "b", **{"eval.online_accuracy": "false"})
    plain = Experiment(prepare(build_config(None, plain_overrides)))
    plain.run()
    records = measured.log.frame()
    assert len(online_frame(records)) > 0
    pd.testing.assert_frame_equal(
        records[records["kind"] != "online"].reset_index(drop=True), plain.log.frame()
    )
    pd.testing.assert_frame_equal(measured.train_loss_frame(), plain.train_loss_frame())


def test_online_rows_resume_bit_identically(tmp_path):
    # phases of 16 samples: two batches per epoch, two epochs; stop inside the second epoch of
    # phase 0 (step 3) and between the two first-epoch batches of phase 1 (step 5)
    config = build_config(None, online_overrides(tmp_path, 16, **{"strategy.name": "er"}))
    reference = Experiment(prepare(config))
    reference.run()
    resumed = run_with_stops(config, {3, 5}, tmp_path)
    pd.testing.assert_frame_equal(resumed.log.frame(), reference.log.frame())
    assert len(online_frame(reference.log.frame())) > 0


def test_a_run_summarises_online_anytime_and_decline_metrics(tmp_path):
    outcome = run_job(build_config(None, online_overrides(tmp_path)), progress=False)
    metrics = outcome.summary["metrics"]
    records = pd.read_parquet(outcome.path / "records.parquet")
    online = online_frame(records)
    assert metrics["online_acc"] == online["correct"].sum() / online["n"].sum()
    assert metrics["anytime_acc"] is not None
    # the plan's mix: each task in focus over its 15 incoming batches, falling after the last
    plan = prepare(build_config(None, online_overrides(tmp_path))).plan
    minima = decline_minima(records, plan.mix_matrix())
    assert sorted(minima) == [0, 1, 2]
    assert metrics["decline_min_acc"] == np.mean(list(minima.values()))
    assert [d["onset_step"] for d in metrics["declines"]] == [30, 60, 90]


def test_online_accuracy_auto_measures_the_streams_drawn_from_a_task_mix(tmp_path):
    """The default (auto) measures it on a boundary-free stream and not on a task-by-task one."""
    streamed = online_overrides(tmp_path / "online", **{"eval.online_accuracy": "auto"})
    assert Experiment(prepare(build_config(None, streamed))).measures_online_accuracy
    plain = fast_overrides(tmp_path / "plain", **{"strategy.name": "naive"})
    exp = Experiment(prepare(build_config(None, plain)))
    assert build_config(None, plain).eval.online_accuracy == "auto"
    assert not exp.measures_online_accuracy
    forced = fast_overrides(tmp_path / "forced", **{"eval.online_accuracy": "true"})
    assert Experiment(prepare(build_config(None, forced))).measures_online_accuracy
