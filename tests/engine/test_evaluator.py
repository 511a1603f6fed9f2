"""The continual evaluator's protocol: subsets, model state, RNG isolation, seen tasks only."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from clbench.config import build_config
from clbench.engine.evaluator import draw_subset, evaluation_mode
from clbench.engine.runner import Experiment, prepare
from tests.helpers import fast_overrides


def test_stratified_subset_is_balanced_and_sized():
    labels = np.repeat(np.arange(4), [50, 30, 10, 200])
    pos = draw_subset(labels, 60, stratified=True, generator=torch.Generator().manual_seed(0))
    assert len(pos) == 60 and len(set(pos.tolist())) == 60
    counts = np.bincount(labels[pos], minlength=4)
    assert counts[2] == 10  # class 2 has only 10: all taken, shortfall filled from others
    assert counts[0] >= 15 and counts[1] >= 15


def test_uniform_subset_and_whole_set():
    labels = np.zeros(30, dtype=int)
    g = torch.Generator().manual_seed(0)
    assert len(draw_subset(labels, 10, stratified=False, generator=g)) == 10
    assert np.array_equal(draw_subset(labels, -1, stratified=True, generator=g), np.arange(30))
    assert np.array_equal(draw_subset(labels, 100, stratified=True, generator=g), np.arange(30))


def test_evaluation_mode_restores_each_module_flag():
    model = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2), nn.Dropout())
    model.train()
    model[2].eval()  # a module deliberately left in eval mode must stay so
    before = model[1].running_mean.clone()
    with evaluation_mode(model):
        assert not any(m.training for m in model.modules())
        model(torch.randn(8, 2))
    assert model.training and model[1].training and not model[2].training
    assert torch.equal(model[1].running_mean, before)  # BN statistics untouched


def test_evaluation_consumes_no_global_rng(tmp_path):
    exp = Experiment(prepare(build_config(None, fast_overrides(tmp_path))))
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    exp.evaluator.evaluate_subsets(step=0, phase=0, current_task=0, seen_upto=3)
    exp.evaluator.evaluate_full("full", 0, 0, 0, [0, 1])
    assert torch.equal(torch.rand(3), expected)


def test_subsets_fixed_and_drawn_from_each_tasks_test_split(tmp_path):
    config = build_config(None, fast_overrides(tmp_path))
    a, b = Experiment(prepare(config)), Experiment(prepare(config))
    for task, sa, sb in zip(
        a.prepared.plan.tasks, a.evaluator.subset_indices, b.evaluator.subset_indices, strict=True
    ):
        assert np.array_equal(sa, sb)
        assert set(sa.tolist()) <= set(task.test_indices.tolist())
        assert len(sa) == 40


def test_counts_and_losses_match_a_plain_computation(tmp_path):
    """Per-task correct counts and mean CE equal a direct model(x) + cross_entropy per task."""
    import torch.nn.functional as F

    for scenario in ("class_incremental", "task_incremental"):
        config = build_config(None, fast_overrides(tmp_path, **{"scenario.name": scenario}))
        exp = Experiment(prepare(config))
        exp.evaluator.batch_size = 7  # several batches, last one partial
        exp.evaluator.evaluate_subsets(step=0, phase=0, current_task=0, seen_upto=3)
        rows = exp.log.frame()
        data, model = exp.data, exp.model
        model.eval()
        with torch.no_grad():
            for t, indices in enumerate(exp.evaluator.subset_indices):
                idx = torch.as_tensor(indices)
                batch = data.make_batch(idx, torch.full_like(idx, t), split="test")
                logits = data.mask_logits(model(batch.x), batch.task)
                row = rows[rows.task == t].iloc[0]
                assert row.correct == int((logits.argmax(1) == batch.y).sum())
                assert row.loss == pytest.approx(F.cross_entropy(logits, batch.y).item(), rel=1e-5)
