"""Averaged GEM (A-GEM): project the update when it would raise the loss on a memory batch.

Chaudhry, Ranzato, Rohrbach & Elhoseiny, "Efficient Lifelong Learning with A-GEM", ICLR 2019
(arXiv:1812.00420). Each update computes the gradient g of the loss on the new batch and the
reference gradient g_ref of the loss on a random batch drawn from an episodic memory of earlier
phases. When they conflict (gᵀg_ref < 0) the update uses (Eq. 11)

    g̃ = g − (gᵀg_ref / g_refᵀg_ref) · g_ref,

the projection of g onto the half-space where the memory loss does not increase to first order
(g̃ᵀg_ref = 0); otherwise g itself. The projection acts between backward and the optimizer step,
through `Strategy.step`'s ``adjust_gradients`` hook, so clipping and fp16 loss scaling still apply.

Memory, as Avalanche's ``AGEMPlugin`` (avalanche-lib 0.6.0,
avalanche/training/plugins/agem.py L108-143): at the end of each phase, ``patterns_per_phase``
samples drawn uniformly from that phase's training data join the memory and stay for the run.
Reference batch, as Mammoth (aimagelab/mammoth@e75a491c69fd:models/agem.py L56-71): one draw of
``sample_size`` distinct samples, uniformly from the whole memory (Avalanche balances the draw
over phases instead; both are balanced in expectation, since every phase stores as many).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from clbench.data.stream import Batch
from clbench.registry import STRATEGIES
from clbench.scenario.plan import PhasePart
from clbench.strategies.specs.agem import AveragedGEMSpec
from clbench.strategy import Strategy, StrategyContext
from clbench.strategy.buffers import IndexBuffer


class EpisodicMemory(IndexBuffer):
    """A-GEM's memory: the samples stored at each phase end, kept for the rest of the run."""

    def extend(self, index: torch.Tensor, task: torch.Tensor, target: torch.Tensor) -> None:
        self.index = torch.cat([self.index, index.cpu()])
        self.task = torch.cat([self.task, task.cpu()])
        self.target = torch.cat([self.target, target.cpu()])


@STRATEGIES.register("agem")
class AveragedGEM(AveragedGEMSpec, Strategy):
    config: AveragedGEMSpec.Config

    def setup(self, ctx: StrategyContext) -> None:
        super().setup(ctx)
        capacity = self.config.patterns_per_phase * ctx.loop.plan.num_phases
        self.buffer = EpisodicMemory(capacity)
        # the flattened gradient covers these, in this order (frozen parameters take no part)
        self.params = [p for p in self.model.parameters() if p.requires_grad]
        # updates whose gradient was projected; a device tensor, so counting costs no sync
        self.projected = torch.zeros((), dtype=torch.long, device=ctx.device)

    def memory(self) -> EpisodicMemory:
        return self.buffer

    def observe(self, batch: Batch) -> torch.Tensor:
        loss = self.loss(self.model(batch.x), batch)
        if len(self.buffer) == 0:  # the first phase: nothing to protect yet
            self.step(loss)
        else:
            reference = self._reference_gradient()
            self.step(loss, lambda: self._project(reference))
        return loss.detach()

    def _reference_gradient(self) -> torch.Tensor:
        """g_ref: the flattened gradient of the loss on a memory batch (train mode, as the
        official code), left out of the parameters' ``.grad``."""
        pos = self.sample_memory(self.buffer, self.config.sample_size)
        replay = self.make_batch(self.buffer.index[pos], self.buffer.task[pos])
        ref_loss = self.criterion(self.model(replay.x), replay)
        grads = torch.autograd.grad(ref_loss, self.params, allow_unused=True)
        return _flatten(grads, self.params)

    @torch.no_grad()
    def _project(self, reference: torch.Tensor) -> None:
        """Replace g by g̃ (Eq. 11) where gᵀg_ref < 0, without a host sync."""
        grad = _flatten([p.grad for p in self.params], self.params)
        dot, ref_norm2 = torch.dot(grad, reference), torch.dot(reference, reference)
        # a non-finite or zero reference gradient (fp16 overflow, an all-masked loss) gives no
        # direction to project on: keep g
        conflict = (dot < 0) & (ref_norm2 > 0) & torch.isfinite(ref_norm2)
        projected = torch.where(conflict, grad - dot / ref_norm2 * reference, grad)
        offset = 0
        for p in self.params:
            n = p.numel()
            if p.grad is not None:  # a parameter outside this loss's graph keeps no gradient
                p.grad.copy_(projected[offset : offset + n].view_as(p))
            offset += n
        self.projected += conflict

    def after_phase(self, phase_index: int) -> None:
        index, task = _phase_samples(self.ctx.loop.plan.parts[phase_index])
        n = min(self.config.patterns_per_phase, len(index))
        chosen = torch.randperm(len(index), generator=self.ctx.generator)[:n]
        index, task = index[chosen], task[chosen]
        target = self.data.make_batch(index, task).y  # the labels as the model's outputs
        self.buffer.extend(index, task, target)

    def report(self) -> dict[str, Any]:
        return {"projected_updates": int(self.projected)}

    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        return {**state, "buffer": self.buffer.state_dict(), "projected": self.projected}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.buffer.load_state_dict(state["buffer"])
        self.projected = state["projected"].to(self.ctx.device)


def _flatten(
    grads: Sequence[torch.Tensor | None], params: Sequence[torch.nn.Parameter]
) -> torch.Tensor:
    """One vector of ``grads`` (zeros where a parameter has none), in ``params`` order."""
    return torch.cat(
        [
            torch.zeros(p.numel(), dtype=p.dtype, device=p.device) if g is None else g.reshape(-1)
            for g, p in zip(grads, params, strict=True)
        ]
    )


def _phase_samples(parts: Sequence[PhasePart]) -> tuple[torch.Tensor, torch.Tensor]:
    """Dataset indices and task ids of a phase's training parts."""
    index = torch.cat([torch.as_tensor(p.indices, dtype=torch.long) for p in parts])
    task = torch.cat([torch.full((len(p.indices),), p.task, dtype=torch.long) for p in parts])
    return index, task
