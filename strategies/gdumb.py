"""GDumb: a greedy class-balanced memory, and a model retrained from scratch on it alone.

Prabhu, Torr & Dokania, "GDumb: A Simple Approach that Questions Our Progress in Continual
Learning", ECCV 2020. The learner keeps no knowledge from the stream except its memory:

- **Greedy sampler.** Every incoming sample is offered once. A sample of a class with fewer than
  k / (classes held) slots is stored; when the memory is full, a random sample of the largest
  class makes room. As RaptorMai/online-continual-learning@6175ca034e56:agents/gdumb.py L19-31
  (``greedy_balancing_update``); the authors' release, drimpossible/GDumb@4f412d7fcb13:
  src/dataloader.py L73-79, takes the first k / (all classes) samples of each class offline.
- **Dumb learner.** Before it is asked to predict, a network is trained from its initialisation on
  the memory only: SGD from ``max_lr`` with cosine warm restarts down to ``min_lr`` (period 1, 2,
  4, ... epochs) after one warm-up epoch at ``max_lr / 10``, as
  drimpossible/GDumb@4f412d7fcb13:src/main.py L14-28.

When to retrain. The paper trains whenever inference is requested; its benchmarks (and Avalanche's
``GDumbPlugin``) evaluate at task ends, so here the model is retrained at every phase end, before
the boundary evaluation. Retraining before each of clbench's continual (mid-phase) evaluations
would make the updates depend on ``eval.every``, and evaluation must never change training. The
mid-phase records therefore show the model of the previous phase end (the initialisation during
the first phase): GDumb's learner does not change while the stream passes.

From scratch, reproducibly. ``setup`` keeps a copy of the model's state as the engine built it:
the initialisation drawn from the run's ``model`` seed (plus any pretrained weights). Each retrain
loads that copy (weights and BatchNorm statistics) and a fresh optimizer, then draws its epoch
orders from the strategy's seeded generator. A resumed run rebuilds the same initialisation from
the same seed before `setup`, so the copy is not checkpointed; the retrained model (the engine's
``model``), the memory and the generator are.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import torch

from clbench.data.stream import Batch
from clbench.registry import STRATEGIES
from clbench.strategies.specs.gdumb import GDumbSpec
from clbench.strategy import Strategy, StrategyContext
from clbench.strategy.buffers import IndexBuffer


class GreedyClassBalancedMemory(IndexBuffer):
    """GDumb's greedy sampler: class-balanced without knowing the classes to come."""

    def offer(
        self,
        index: torch.Tensor,
        task: torch.Tensor,
        target: torch.Tensor,
        generator: torch.Generator,
    ) -> None:
        """Offer samples one at a time, in order; one already held is skipped (View-Batch
        repeats samples within a batch, recurring tasks across phases)."""
        if self.capacity == 0:
            return
        rows = zip(index.cpu().tolist(), task.cpu().tolist(), target.cpu().tolist(), strict=True)
        for i, t, y in rows:
            held = (self.index == i) & (self.task == t)
            if bool(held.any()):
                continue
            counts = torch.bincount(self.target, minlength=y + 1)
            quota = self.capacity // max(1, int((counts > 0).sum()))
            if counts[y] > 0 and counts[y] >= quota:
                continue
            if len(self) < self.capacity:
                self.index = torch.cat([self.index, torch.tensor([i])])
                self.task = torch.cat([self.task, torch.tensor([t])])
                self.target = torch.cat([self.target, torch.tensor([y])])
                continue
            # the largest class gives up a random sample (ties: the lowest output id)
            members = torch.nonzero(self.target == int(counts.argmax())).squeeze(1)
            slot = members[torch.randint(len(members), (1,), generator=generator)]
            self.index[slot], self.task[slot], self.target[slot] = i, t, y

    def class_counts(self) -> dict[str, int]:
        """Samples held per model output (class), for the run summary."""
        classes, counts = torch.unique(self.target, return_counts=True)
        return {str(c): int(n) for c, n in zip(classes.tolist(), counts.tolist(), strict=True)}


def sgdr_lr(epoch: int, max_lr: float, min_lr: float) -> float:
    """The official learning rate of retraining epoch ``epoch`` (0-based): ``max_lr / 10`` for the
    warm-up epoch, then cosine annealing from ``max_lr`` to ``min_lr`` over periods of 1, 2, 4, ...
    epochs, each restarting at ``max_lr`` (``CosineAnnealingWarmRestarts(T_0=1, T_mult=2)`` stepped
    once per epoch from the third, as src/main.py L19-28)."""
    if epoch == 0:
        return max_lr * 0.1
    t = epoch - 1  # epochs since the warm-up
    period = 1 << ((t + 1).bit_length() - 1)  # the periods start at epochs 2^k - 1 of t
    into = t - (period - 1)
    return min_lr + (max_lr - min_lr) * (1 + math.cos(math.pi * into / period)) / 2


@STRATEGIES.register("gdumb")
class GDumb(GDumbSpec, Strategy):
    config: GDumbSpec.Config

    def setup(self, ctx: StrategyContext) -> None:
        super().setup(ctx)
        self.buffer = GreedyClassBalancedMemory(self.config.buffer_size)
        # the model as built from the run's seed: every retraining starts here
        self.initial_state = {k: v.detach().clone() for k, v in self.model.state_dict().items()}

    def configure_optimizer(self) -> torch.optim.Optimizer:
        """The run's optimizer settings (`train.optimizer`, momentum, weight decay; official:
        SGD with momentum 0.9 and weight decay 1e-6) at GDumb's own peak rate."""
        settings = dataclasses.replace(self.ctx.optimizer, lr=self.config.max_lr)
        return settings.build(self.model.parameters())

    def memory(self) -> GreedyClassBalancedMemory:
        return self.buffer

    def observe(self, batch: Batch) -> torch.Tensor:
        if self.ctx.loop.epoch == 0:  # the stream passes once; later epochs revisit it
            self.buffer.offer(batch.index, batch.task, batch.y, self.ctx.generator)
        # no update while the stream passes (Mammoth's observe returns 0 too)
        return torch.zeros((), device=batch.x.device)

    def after_phase(self, phase_index: int) -> None:
        self.retrain()

    def retrain(self) -> None:
        """Train the model from its initialisation on the memory alone."""
        self.model.load_state_dict(self.initial_state)
        self.optimizer = self.configure_optimizer()
        if len(self.buffer) == 0:
            return
        self.model.train()
        cfg = self.config
        for epoch in range(cfg.epochs):
            for group in self.optimizer.param_groups:
                group["lr"] = sgdr_lr(epoch, cfg.max_lr, cfg.min_lr)
            order = self.sample_memory(self.buffer, len(self.buffer))
            for pos in _batches(order, self.ctx.batch_size):
                batch = self.make_batch(self.buffer.index[pos], self.buffer.task[pos])
                self.step(self.loss(self.model(batch.x), batch))

    def report(self) -> dict[str, Any]:
        return {"memory_per_class": self.buffer.class_counts()}

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "buffer": self.buffer.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.buffer.load_state_dict(state["buffer"])


def _batches(order: torch.Tensor, batch_size: int) -> list[torch.Tensor]:
    """``order`` cut into batches of ``batch_size``, the last one shorter; a lone trailing sample
    joins the batch before it (BatchNorm cannot train on one), as `PhaseBatches` does."""
    cuts = list(order.split(batch_size))
    if len(cuts) > 1 and len(cuts[-1]) == 1:
        cuts[-2:] = [torch.cat(cuts[-2:])]
    return cuts
