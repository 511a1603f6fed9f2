"""k-FPF: plain SGD on the stream (no per-step replay) plus FPF triggered k times.

Zhao et al., ICML 2023, arXiv:2304.04158: "k-FPF periodically
(regardless of task boundaries) applies FPF for k times during training" (Fig. 2 caption).
Each update is one SGD step on the new batch only, which is then offered to a reservoir memory
(`clbench.strategy.buffers.ReservoirBuffer`, the class ER uses), with the batch's logits for KD.
FPF runs
after updates ``round(i·T/k)``, i = 1..k, where T is the run's total number of updates
(``final_fpf: true``: the k-th run is at the very end) or ``round(i·T/(k+1))`` (``final_fpf:
false``: all k runs strictly inside training). Variants: k-FPF-CE (``loss: ce``, CE on buffered
labels) and k-FPF-KD (``loss: kd``, DER-style MSE to the stored logits, + CE when ``kd_ce``).
"""

from __future__ import annotations

from typing import Any

import torch

from clbench.data.stream import Batch
from clbench.registry import STRATEGIES
from clbench.strategies.fpf.finetune import FPFController
from clbench.strategies.specs.fpf import KFPFSpec
from clbench.strategy import Strategy, StrategyContext
from clbench.strategy.buffers import ReservoirBuffer


def trigger_steps(total_updates: int, k: int, final_fpf: bool = True) -> list[int]:
    """The updates after which k-FPF finetunes (1-based, evenly spaced, boundary-free)."""
    parts = k if final_fpf else k + 1
    return [max(1, round(i * total_updates / parts)) for i in range(1, k + 1)]


@STRATEGIES.register("k_fpf")
class KFPF(KFPFSpec, Strategy):
    config: KFPFSpec.Config

    def setup(self, ctx: StrategyContext) -> None:
        super().setup(ctx)
        cfg = self.config
        extra = ctx.model.num_outputs if cfg.loss == "kd" else 0
        self.buffer = ReservoirBuffer(cfg.buffer_size, extra_dim=extra)
        self.fpf = FPFController(cfg, ctx.model, ctx.data, ctx.device, cfg.loss)
        self.triggers = trigger_steps(ctx.loop.total_updates, cfg.k, cfg.final_fpf)

    def memory(self) -> ReservoirBuffer:
        return self.buffer

    def observe(self, batch: Batch) -> torch.Tensor:
        with self.fpf.meter.part("sgd"):
            logits = self.model(batch.x)
            loss = self.loss(logits, batch)
            self.step(loss)
            extra = logits.detach() if self.config.loss == "kd" else None
            self.buffer.add(batch.index, batch.task, batch.y, self.ctx.generator, extra)
        step = self.ctx.loop.step  # this update (1-based)
        for _ in range(self.triggers.count(step)):  # repeats when k > T
            self.fpf.run(self.buffer, self.ctx.generator, step)
        return loss.detach()

    def after_phase(self, phase_index: int) -> None:
        self.fpf.tracker.snapshot()

    def report(self) -> dict[str, Any]:
        # the finetuning facts under "fpf", as the FPF plugin's: one column for both in reports
        return {"trigger_steps": self.triggers, "fpf": self.fpf.report()}

    def state_dict(self) -> dict[str, Any]:
        return {
            **super().state_dict(),
            "buffer": self.buffer.state_dict(),
            "fpf": self.fpf.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.buffer.load_state_dict(state["buffer"])
        self.fpf.load_state_dict(state["fpf"])
