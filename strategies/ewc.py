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

    ``criterion`` must be the mean of per-sample losses (clbench's cross-entropy is). The model
    runs in eval mode, so each sample's loss depends on that sample only (BatchNorm uses its
    running statistics); the model's own ``.grad`` and state are left untouched.

    Where every trainable parameter belongs to an ``nn.Linear`` fed 2-D inputs (an MLP), the sum
    of squared per-sample gradients is exact in closed form: a sample's weight gradient is the
    outer product δᵢxᵢᵀ of its output gradient and input, so Σᵢ(δᵢxᵢᵀ)² = (δ²)ᵀ(x²), one matmul
    per layer (`_linear_fisher`). On Split-Fashion-MNIST's MLP 784-400-400 this took a run's five
    Fisher computations from 147 s to 2.2 s on one thread. Any other model gets per-sample
    gradients from `torch.func` (``vmap`` of ``grad``), a batch at a time.
    """
    weights = {n: p for n, p in model.named_parameters() if p.requires_grad}
    fisher = {n: torch.zeros_like(w) for n, w in weights.items()}
    samples = 0
    was_training = model.training
    model.eval()
    try:
        linears = _linear_owners(model, weights)
        add = _linear_fisher(model, criterion, linears) if linears else None
        remaining = iter(batches)
        for batch in remaining:
            if add is not None:
                try:
                    add(batch, fisher)
                except _NotFlat:  # a Linear sees tokens or images: per-sample gradients
                    add = None
            if add is None:
                _add_per_sample_squares(model, criterion, weights, batch, fisher)
            samples += len(batch)
    finally:
        model.train(was_training)
    return {name: f / max(samples, 1) for name, f in fisher.items()}


class _NotFlat(Exception):
    """A Linear layer's input is not (batch, features): the closed form does not apply."""


def _linear_owners(model: nn.Module, weights: dict[str, nn.Parameter]) -> dict[str, nn.Linear]:
    """The Linear layers holding ``weights``, by module name; empty if another module holds any."""
    linears = {
        name: m
        for name, m in model.named_modules()
        if isinstance(m, nn.Linear) and any(p.requires_grad for p in m.parameters())
    }
    owned = {f"{n}.{p}" for n, m in linears.items() for p, _ in m.named_parameters()}
    return linears if set(weights) <= owned else {}


def _linear_fisher(
    model: nn.Module,
    criterion: Callable[[torch.Tensor, Batch], torch.Tensor],
    linears: dict[str, nn.Linear],
) -> Callable[[Batch, dict[str, torch.Tensor]], None]:
    """A function adding a batch's Σᵢ gᵢ² of every Linear parameter into ``fisher``."""

    def add(batch: Batch, fisher: dict[str, torch.Tensor]) -> None:
        seen: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}

        def keep(name: str) -> Any:
            def hook(
                module: nn.Module, args: tuple[torch.Tensor, ...], out: torch.Tensor
            ) -> torch.Tensor:
                if args[0].dim() != 2 or name in seen:  # a layer used twice: not one outer product
                    raise _NotFlat
                # x² now, and the layer's output handed on as a copy, so that a later in-place op
                # (ReLU(inplace=True)) changes neither
                seen[name] = (args[0].detach().pow(2), out)
                return out.clone()

            return hook

        handles = [m.register_forward_hook(keep(n)) for n, m in linears.items()]
        try:
            logits = model(batch.x)
        finally:
            for handle in handles:
                handle.remove()
        # the sum of per-sample losses, so each output gradient is that sample's own
        loss = criterion(logits, batch) * len(batch)
        names = list(seen)
        deltas = torch.autograd.grad(loss, [seen[n][1] for n in names], allow_unused=True)
        for name, delta in zip(names, deltas, strict=True):
            x2, layer = seen[name][0], linears[name]
            if delta is None:  # the loss does not reach this layer: zero gradient
                continue
            d2 = delta.detach().pow(2)
            if layer.weight.requires_grad:
                fisher[f"{name}.weight"] += d2.T @ x2
            if layer.bias is not None and layer.bias.requires_grad:
                fisher[f"{name}.bias"] += d2.sum(0)

    return add


def _add_per_sample_squares(
    model: nn.Module,
    criterion: Callable[[torch.Tensor, Batch], torch.Tensor],
    weights: dict[str, nn.Parameter],
    batch: Batch,
    fisher: dict[str, torch.Tensor],
) -> None:
    """Add a batch's Σᵢ gᵢ² from per-sample gradients (`torch.func`), for any model."""
    frozen = {n: p.detach() for n, p in model.named_parameters() if not p.requires_grad}
    fixed = {**frozen, **dict(model.named_buffers())}

    def sample_loss(w: dict[str, torch.Tensor], *sample: torch.Tensor) -> torch.Tensor:
        one = Batch(*(field.unsqueeze(0) for field in sample))  # a batch of this sample alone
        return criterion(functional_call(model, (w, fixed), (one.x,)), one)

    per_sample_grads = vmap(grad(sample_loss), in_dims=(None, 0, 0, 0, 0))
    detached = {n: w.detach() for n, w in weights.items()}
    grads = per_sample_grads(detached, batch.x, batch.y, batch.task, batch.index)
    for name, g in grads.items():
        fisher[name] += g.pow(2).sum(0)
