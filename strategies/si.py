"""Synaptic Intelligence (SI): a quadratic pull towards earlier solutions, weighted by how much
each parameter's movement reduced the loss along the training path.

Zenke, Poole & Ganguli, "Continual Learning Through Synaptic Intelligence", ICML 2017
(arXiv:1703.04200). During a phase each parameter accumulates the path integral
``ω_k += −g_k · Δθ_k`` over its updates (g the gradient of the loss without the penalty, Δθ the
parameter's change in that update). At the phase end its importance grows by
``ω_k / ((θ_k − θ*_k)² + ξ)``, θ*_k being its value at the previous phase end (its initial value
after the first phase), and θ* moves to the current value; later updates add
``c · Σ_k Ω_k (θ_k − θ*_k)²``. (The paper's Eq. 4 and 5; their numbers are not re-checked
against the paper's text, see docs/methods/si.md.)

As the official code, ganguli-lab/pathint@86c5e07c5603:pathint/protocols.py L27-44
(``PATH_INT_PROTOCOL`` with ``omega_decay='sum'``) with ``optimizers.py`` L114-126 and
``regularizers.py`` L13-29:

- ω uses the gradient of the *unregularised* loss (``unreg_grads``) and the actual parameter
  change of the optimizer step (``deltas``, momentum included); so does Mammoth's ``models/si.py``;
- Ω is the running sum over phases, clipped at 0 (``tf.nn.relu``): a parameter whose net move
  opposed its gradients would otherwise get a negative importance and make the penalty unbounded
  below (Mammoth does not clip; Avalanche 0.6 clips from above, at 0.001);
- the penalty is ``c · Σ Ω (θ − θ*)²`` (no 1/2), over every trainable parameter.

Here "the loss without the penalty" is `Strategy.loss`: the cross-entropy and any plugin's
terms. Its gradient is not computed by a second backward pass: hooks read each parameter's
gradient as the one backward pass produces it (before `train.grad_clip` and fp16 unscaling act),
and the penalty's part, known in closed form (``2cΩ(θ − θ*)``), is subtracted. With ``c = 0`` the
penalty is never added, so ``si`` is exactly ``naive``.
"""

from __future__ import annotations

from typing import Any

import torch

from clbench.data.stream import Batch
from clbench.registry import STRATEGIES
from clbench.strategies.specs.si import SynapticIntelligenceSpec
from clbench.strategy import Strategy, StrategyContext


@STRATEGIES.register("si")
class SynapticIntelligence(SynapticIntelligenceSpec, Strategy):
    config: SynapticIntelligenceSpec.Config

    def setup(self, ctx: StrategyContext) -> None:
        super().setup(ctx)
        self.trainable = {n: p for n, p in self.model.named_parameters() if p.requires_grad}
        values = {n: p.detach() for n, p in self.trainable.items()}
        self.anchor = {n: v.clone() for n, v in values.items()}  # θ* (the start, at first)
        self.path = {n: torch.zeros_like(v) for n, v in values.items()}  # ω of this phase
        self.importance = {n: torch.zeros_like(v) for n, v in values.items()}  # Ω
        self.consolidated = False  # Ω holds at least one phase: the penalty is on

    def observe(self, batch: Batch) -> torch.Tensor:
        logits = self.model(batch.x)
        loss = self.loss(logits, batch)  # the unregularised loss
        penalised = self.consolidated and self.config.c > 0
        if penalised:
            loss = loss + self.config.c * self.penalty()
        before = {n: p.detach().clone() for n, p in self.trainable.items()}
        gradients = self._step_reading_gradients(loss)
        with torch.no_grad():
            for name, param in self.trainable.items():
                g = gradients.get(name)
                if g is None:  # not in this update's graph: no gradient, no path
                    continue
                if penalised:  # minus the penalty's own gradient, 2cΩ(θ − θ*) before the step
                    pull = self.importance[name] * (before[name] - self.anchor[name])
                    g = g - 2 * self.config.c * pull
                # an fp16 step skipped for overflow leaves Δθ = 0 but g non-finite
                self.path[name] -= torch.nan_to_num(g * (param - before[name]), 0.0, 0.0, 0.0)
        return loss.detach()

    def penalty(self) -> torch.Tensor:
        """Σ_k Ω_k (θ_k − θ*_k)²."""
        terms = [
            (self.importance[name] * (param - self.anchor[name]).pow(2)).sum()
            for name, param in self.trainable.items()
        ]
        return torch.stack(terms).sum()

    def _step_reading_gradients(self, loss: torch.Tensor) -> dict[str, torch.Tensor]:
        """`Strategy.step` on ``loss``; returns each parameter's gradient as backward produced
        it, before clipping, divided by the fp16 loss scale (one host sync, fp16 runs only)."""
        scaler = self.ctx.stepper.scaler
        scale = scaler.get_scale() if scaler.is_enabled() else 1.0
        gradients: dict[str, torch.Tensor] = {}

        def keeper(name: str) -> Any:
            def keep(g: torch.Tensor) -> None:
                # an unscaled copy: `.grad`, which clipping and unscaling change in place, may
                # share `g`'s memory
                gradients[name] = g / scale

            return keep

        handles = [p.register_hook(keeper(n)) for n, p in self.trainable.items()]
        try:
            self.step(loss)
        finally:
            for handle in handles:
                handle.remove()
        return gradients

    def after_phase(self, phase_index: int) -> None:
        with torch.no_grad():
            for name, param in self.trainable.items():
                moved = (param - self.anchor[name]).pow(2)
                omega = self.importance[name] + self.path[name] / (moved + self.config.xi)
                self.importance[name] = omega.clamp_(min=0.0)  # relu, as the official code
                self.anchor[name] = param.detach().clone()
                self.path[name].zero_()
        self.consolidated = True

    def state_dict(self) -> dict[str, Any]:
        return {
            **super().state_dict(),
            "anchor": self.anchor,
            "path": self.path,
            "importance": self.importance,
            "consolidated": self.consolidated,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        device = self.ctx.device
        for key in ("anchor", "path", "importance"):
            setattr(self, key, {n: t.to(device) for n, t in state[key].items()})
        self.consolidated = bool(state["consolidated"])
