"""Elastic Weight Consolidation (EWC) and online EWC: a quadratic pull towards earlier solutions,
weighted by each parameter's empirical Fisher information.

Kirkpatrick et al., "Overcoming catastrophic forgetting in neural networks", PNAS 2017
(arXiv:1612.00796): after a task, each parameter θ_i is anchored at its value θ*_i and every
later update adds ``λ/2 · Σ_i F_i (θ_i − θ*_i)²`` (Eq. 3), F the diagonal of the Fisher
information at θ*; with several earlier tasks, one such penalty per task.
Schwarz et al., "Progress & Compress: A scalable framework for continual learning", ICML 2018
(arXiv:1805.06370), online EWC: a single penalty whose Fisher is a decayed running sum,
``F ← γ·F + F_new``, anchored at the parameters after the latest task. (Equation numbers are not
re-checked against the papers' text; see docs/methods/ewc.md.)

As Avalanche's `EWCPlugin` (ContinualAI/avalanche@b34abe5c93ad:avalanche/training/plugins/ewc.py,
v0.6.0: ``mode`` separate/online and ``decay_factor``) and Mammoth's online EWC
(aimagelab/mammoth@e75a491c69fd:models/ewc_on.py):

- the penalty is ``λ · Σ F (θ − θ*)²``, without the paper's 1/2 (both codes; so this λ is the
  paper's λ/2), over every trainable parameter;
- F is computed at the end of each phase over all of that phase's training samples;
- ``ewc`` keeps one (θ*, F) per phase (Avalanche's ``separate``), ``online_ewc`` one running pair
  (Avalanche's ``online``; Mammoth's ``ewc_on`` with ``gamma``).

The Fisher is the *empirical* Fisher diagonal, the mean over the phase's samples of each
sample's squared gradient of its loss at its true label (`empirical_fisher`): per-sample, as
Mammoth's loop over single samples (``models/ewc_on.py`` L44-57) but without its weighting by the
predicted probability of the label; Avalanche squares the gradient of each *mini-batch mean*
instead (``plugins/ewc.py`` L163-182), up to a batch size smaller when the samples' gradients
disagree. It is computed with the model in eval mode (BatchNorm's running statistics, no
dropout), as Avalanche does, on the un-augmented samples in plan order, so it draws no random
numbers and leaves the run's random streams as ``naive`` has them. With ``ewc_lambda = 0`` it is
skipped and the run is exactly ``naive``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

import torch
from torch import nn
from torch.func import functional_call, grad, vmap

from clbench.data.stream import Batch
from clbench.registry import STRATEGIES
from clbench.strategies.specs.ewc import (
    ElasticWeightConsolidationSpec,
    OnlineElasticWeightConsolidationSpec,
)
from clbench.strategy import Strategy, StrategyContext


@STRATEGIES.register("ewc")
class ElasticWeightConsolidation(ElasticWeightConsolidationSpec, Strategy):
    config: ElasticWeightConsolidationSpec.Config

    def setup(self, ctx: StrategyContext) -> None:
        super().setup(ctx)
        self.trainable = {n: p for n, p in self.model.named_parameters() if p.requires_grad}
        # one anchor θ* and Fisher diagonal F per penalty, keyed by parameter name
        self.anchors: list[dict[str, torch.Tensor]] = []
        self.fishers: list[dict[str, torch.Tensor]] = []

    def observe(self, batch: Batch) -> torch.Tensor:
        logits = self.model(batch.x)
        loss = self.loss(logits, batch)  # cross-entropy, plus any plugin's loss terms
        if self.fishers and self.config.ewc_lambda > 0:
            loss = loss + self.config.ewc_lambda * self.penalty()
        self.step(loss)
        return loss.detach()

    def penalty(self) -> torch.Tensor:
        """Σ over penalties and parameters of F·(θ − θ*)²."""
        terms = [
            (fisher[name] * (param - anchor[name]).pow(2)).sum()
            for anchor, fisher in zip(self.anchors, self.fishers, strict=True)
            for name, param in self.trainable.items()
        ]
        return torch.stack(terms).sum()

    def after_phase(self, phase_index: int) -> None:
        if self.config.ewc_lambda == 0:
            return
        batches = self._phase_samples(phase_index)
        fisher = empirical_fisher(self.model, self.criterion, batches)
        self.consolidate({n: p.detach().clone() for n, p in self.trainable.items()}, fisher)

    def consolidate(self, anchor: dict[str, torch.Tensor], fisher: dict[str, torch.Tensor]) -> None:
        """Add the penalty of the phase that just ended (Avalanche's ``separate`` mode)."""
        self.anchors.append(anchor)
        self.fishers.append(fisher)

    def _phase_samples(self, phase_index: int) -> Iterator[Batch]:
        """The samples phase ``phase_index`` trained on, un-augmented, in plan order."""
        parts = self.ctx.loop.plan.parts[phase_index]
        index = torch.cat([torch.as_tensor(p.indices, dtype=torch.long) for p in parts])
        task = torch.cat([torch.full((len(p.indices),), p.task, dtype=torch.long) for p in parts])
        size = self.config.fisher_batch_size or self.ctx.batch_size
        for start in range(0, len(index), size):
            yield self.data.make_batch(index[start : start + size], task[start : start + size])

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "anchors": self.anchors, "fishers": self.fishers}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        device = self.ctx.device
        self.anchors = [{n: t.to(device) for n, t in a.items()} for a in state["anchors"]]
        self.fishers = [{n: t.to(device) for n, t in f.items()} for f in state["fishers"]]


@STRATEGIES.register("online_ewc")
class OnlineElasticWeightConsolidation(
    OnlineElasticWeightConsolidationSpec, ElasticWeightConsolidation
):
    config: OnlineElasticWeightConsolidationSpec.Config

    def consolidate(self, anchor: dict[str, torch.Tensor], fisher: dict[str, torch.Tensor]) -> None:
        """Fold the new Fisher into the running one and move the anchor to the current θ."""
        if self.fishers:
            gamma, old = self.config.decay_factor, self.fishers[0]
            fisher = {name: gamma * old[name] + f for name, f in fisher.items()}
        self.anchors, self.fishers = [anchor], [fisher]


def empirical_fisher(
    model: nn.Module,
    criterion: Callable[[torch.Tensor, Batch], torch.Tensor],
    batches: Iterable[Batch],
) -> dict[str, torch.Tensor]:
    """The empirical Fisher diagonal of ``model``'s trainable parameters: the mean over every
    sample of ``batches`` of the squared gradient of ``criterion`` on that sample alone.

    Per-sample gradients come from `torch.func` (``vmap`` of ``grad``), a batch at a time, with the
    model in eval mode so each sample's loss depends on that sample only (BatchNorm uses its
    running statistics); the model's own ``.grad`` and state are left untouched.
    """
    weights = {n: p.detach() for n, p in model.named_parameters() if p.requires_grad}
    frozen = {n: p.detach() for n, p in model.named_parameters() if not p.requires_grad}
    fixed = {**frozen, **dict(model.named_buffers())}

    def sample_loss(w: dict[str, torch.Tensor], *sample: torch.Tensor) -> torch.Tensor:
        one = Batch(*(field.unsqueeze(0) for field in sample))  # a batch of this sample alone
        return criterion(functional_call(model, (w, fixed), (one.x,)), one)

    per_sample_grads = vmap(grad(sample_loss), in_dims=(None, 0, 0, 0, 0))
    fisher = {n: torch.zeros_like(w) for n, w in weights.items()}
    samples = 0
    was_training = model.training
    model.eval()
    try:
        for batch in batches:
            grads = per_sample_grads(weights, batch.x, batch.y, batch.task, batch.index)
            for name, g in grads.items():
                fisher[name] += g.pow(2).sum(0)
            samples += len(batch)
    finally:
        model.train(was_training)
    return {name: f / max(samples, 1) for name, f in fisher.items()}
