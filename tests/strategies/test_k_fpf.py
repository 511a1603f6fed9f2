"""k-FPF (Zhao et al. ICML 2023), the strategy: trigger schedule, KD targets, costs. FPF as a
plugin over other strategies is tested in tests/plugins/test_fpf.py."""

from __future__ import annotations

import torch

from clbench.strategies.fpf.finetune import FinetuneSettings, finetune
from clbench.strategies.fpf.k_fpf import trigger_steps
from tests.helpers import experiment


def test_trigger_steps():
    assert trigger_steps(100, 4) == [25, 50, 75, 100]
    assert trigger_steps(100, 4, final_fpf=False) == [20, 40, 60, 80]
    assert trigger_steps(10, 3) == [3, 7, 10]


def test_k_fpf_triggers_exactly_k_times_at_documented_steps(tmp_path):
    exp = experiment(
        tmp_path, **{"strategy.name": "k_fpf", "strategy.k": 3, "strategy.iterations": 2}
    )
    total = exp.timing.updates
    # 4 tasks x 120 samples, batch 16 (8 batches, last one partial), 2 epochs
    assert exp.strategy.ctx.loop.total_updates == total == 4 * 8 * 2
    report = exp.strategy.report()
    assert report["trigger_steps"] == trigger_steps(total, 3) == [21, 43, 64]
    assert [r["step"] for r in report["fpf"]["fpf_runs"]] == [21, 43, 64]
    assert report["fpf"]["fpf_modules"] == ["head"]  # ["bn", "fc"] on an MLP without BatchNorm


def test_k_fpf_kd_stores_logits_and_kd_fits_them(tmp_path):
    exp = experiment(
        tmp_path, **{"strategy.name": "k_fpf", "strategy.k": 1, "strategy.iterations": 0}
    )
    buffer = exp.strategy.memory()
    assert buffer.extra is not None and buffer.extra.shape == (len(buffer), 8)
    assert buffer.extra.abs().sum() > 0
    # KD must regress the logits onto the *stored* ones: plant targets and check they are fitted
    buffer.extra = torch.full_like(buffer.extra, 3.0)
    x = exp.data.make_batch(buffer.index, buffer.task).x

    def error() -> float:
        exp.model.eval()
        with torch.no_grad():
            return float((exp.model(x) - 3.0).abs().mean())

    start = error()
    settings = FinetuneSettings(300, lr=0.05, batch_size=32, loss="kd", kd_ce=False)
    losses = finetune(exp.model, ["head"], buffer, exp.data, settings, torch.Generator())
    assert losses[-1] < 0.1 * losses[0]
    assert error() < 0.2 * start


def test_mac_accounting_matches_the_convention(tmp_path):
    # MLP 16 -> 32 -> head 8; all trainable: layer 1 fwd+wgrad (first: no input grad), head 3x
    exp = experiment(
        tmp_path,
        **{
            "strategy.name": "k_fpf",
            "strategy.k": 2,
            "strategy.iterations": 5,
            "strategy.modules": "[fc]",
            "strategy.loss": "ce",
        },
    )
    r = exp.strategy.report()["fpf"]
    per_sample_sgd = 2 * 16 * 32 + 3 * 32 * 8
    assert r["train_samples"]["sgd"] == exp.timing.samples_seen
    assert r["train_macs"]["sgd"] == per_sample_sgd * exp.timing.samples_seen
    per_sample_fpf = 16 * 32 + 2 * 32 * 8  # frozen layer 1: forward only; head: fwd + wgrad
    assert (
        r["train_macs"]["fpf"]
        == per_sample_fpf * r["train_samples"]["fpf"]
        == (per_sample_fpf * 2 * 5 * 32)
    )
    assert r["train_time_s"]["sgd"] > 0 and r["train_time_s"]["fpf"] > 0
