"""The learning rate of every update: ``train.scheduler`` as a pure function of the loop position.

The factor multiplies each optimizer parameter group's own base learning rate (so a backbone and a
head with different rates keep their ratio). It depends only on where the loop is, never on a
scheduler's internal counter, so a resumed run gets exactly the rates of an uninterrupted one and
nothing has to be checkpointed.

- ``multistep``: ``gamma ** (number of milestones <= epoch)``, the epoch counted within the phase
  (scope ``phase``) or over the run (scope ``run``). The step schedule of Mammoth's
  ``--lr_milestones`` (Buzzega et al., NeurIPS 2020; aimagelab/mammoth, ``utils/training.py``:
  ``MultiStepLR`` stepped once per epoch of each task).
- ``cosine``: half a cosine from 1 down to ``min_lr_ratio`` over the scope's updates, after a
  linear warm-up (cosine annealing without restarts: Loshchilov & Hutter, "SGDR", ICLR 2017,
  Eq. 5; restarted each task with scope ``phase``).
- warm-up (any scheduler but ``none``): over the first ``warmup_epochs`` epochs of the scope, the
  k-th update (1-based) gets ``k / W`` of the rate, W the warm-up's updates.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from clbench.strategy.loop import LoopState

BASE_LR = "clbench_base_lr"  # the parameter group's own rate, kept in the group (and checkpoints)


def lr_factor(train: Any, loop: LoopState) -> float:
    """The factor of the update ``loop`` is about to make (``loop.step`` already counts it)."""
    if train.scheduler == "none":
        return 1.0
    plan = loop.plan
    if train.scheduler_scope == "phase":
        t, total = loop.phase_step - 1, plan.updates_per_phase[loop.phase]
        epoch, epochs = loop.epoch, plan.epochs
    else:
        t, total = loop.step - 1, plan.total_updates
        epoch, epochs = loop.phase * plan.epochs + loop.epoch, plan.epochs * plan.num_phases
    warmup = min(total, round(train.warmup_epochs * total / epochs))
    if t < warmup:
        return (t + 1) / warmup
    if train.scheduler == "multistep":
        return train.gamma ** sum(1 for m in train.milestones if m <= epoch)
    progress = (t - warmup) / max(1, total - warmup)
    floor = train.min_lr_ratio
    return floor + (1 - floor) * (1 + math.cos(math.pi * progress)) / 2


def apply_lr(optimizer: torch.optim.Optimizer, factor: float) -> None:
    """Set every parameter group's rate to ``factor`` times its base rate (the rate the group
    had when first seen here)."""
    for group in optimizer.param_groups:
        base = group.setdefault(BASE_LR, group["lr"])
        group["lr"] = base * factor
