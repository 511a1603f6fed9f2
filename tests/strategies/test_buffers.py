"""Index replay buffers: reservoir statistics and class-balanced quotas."""

from __future__ import annotations

import torch

from clbench.strategy.buffers import ClassBalancedBuffer, ReservoirBuffer


def test_reservoir_fills_then_keeps_capacity():
    buf = ReservoirBuffer(10)
    g = torch.Generator().manual_seed(0)
    for start in range(0, 100, 7):
        idx = torch.arange(start, min(start + 7, 100))
        buf.add(idx, torch.zeros_like(idx), idx % 3, g)
    assert len(buf) == 10 and buf.seen == 100
    assert len(set(buf.index.tolist())) == 10
    assert torch.equal(buf.target, buf.index % 3)


def test_reservoir_keeps_every_sample_with_equal_probability():
    # 200 samples offered in batches of 16 into 20 slots: each kept with p = 0.1
    counts = torch.zeros(200)
    g = torch.Generator().manual_seed(1)
    trials = 400
    for _ in range(trials):
        buf = ReservoirBuffer(20)
        for start in range(0, 200, 16):
            idx = torch.arange(start, min(start + 16, 200))
            buf.add(idx, torch.zeros_like(idx), torch.zeros_like(idx), g)
        counts[buf.index] += 1
    freq = counts / trials
    early, late = freq[:100].mean().item(), freq[100:].mean().item()
    assert abs(early - 0.1) < 0.015 and abs(late - 0.1) < 0.015


def test_reservoir_state_round_trip():
    g = torch.Generator().manual_seed(0)
    buf = ReservoirBuffer(5)
    buf.add(torch.arange(9), torch.zeros(9, dtype=torch.long), torch.zeros(9, dtype=torch.long), g)
    other = ReservoirBuffer(5)
    other.load_state_dict(buf.state_dict())
    assert torch.equal(other.index, buf.index) and other.seen == 9


def test_class_balanced_quota_adapts_to_new_classes():
    g = torch.Generator().manual_seed(0)
    buf = ClassBalancedBuffer(12)
    idx = torch.arange(40)
    buf.update(idx, torch.zeros(40, dtype=torch.long), idx % 2, g)  # classes 0, 1
    assert torch.bincount(buf.target).tolist() == [6, 6]
    idx2 = torch.arange(40, 80)
    buf.update(idx2, torch.ones(40, dtype=torch.long), 2 + idx2 % 2, g)  # classes 2, 3
    assert torch.bincount(buf.target).tolist() == [3, 3, 3, 3]
    assert set(buf.index[buf.target < 2].tolist()) <= set(range(40))
    assert len(buf) == 12 and buf.nbytes == 12 * 3 * 8
