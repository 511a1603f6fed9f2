"""FPF: forgetting-prioritized finetuning as a modifier over any strategy.

Zhao et al., ICML 2023, arXiv:2304.04158: "FPF finetunes the most
sensitive parameters for a few iterations using buffered data at the end of arbitrary CL methods"
(Fig. 2 caption). The wrapped ``base`` strategy trains as usual (every hook is
delegated); after the last phase (``when: end``, verified) or after every phase (``every_phase``)
only the selected modules are finetuned on the replay buffer. The buffer is the base strategy's
own memory when it has one (ER's `ReservoirBuffer`/`ClassBalancedBuffer` instance, shared, not
copied); otherwise, or when KD needs stored logits, a `ReservoirBuffer` of ``buffer_size`` is
filled here from the observed batches. Shared machinery: `clbench.strategies.fpf.finetune`.
"""

from __future__ import annotations

from typing import Any, Literal

import torch
from clbench.strategies.fpf.finetune import FPFController, FPFOptions
from pydantic import Field

from clbench.data.stream import Batch
from clbench.registry import STRATEGIES
from clbench.strategy import Capabilities, StrategyContext
from clbench.strategy.buffers import IndexBuffer, ReservoirBuffer
from clbench.wrapper import StrategyWrapper


@STRATEGIES.register("fpf")
class FPF(StrategyWrapper):
    summary = "FPF: finetune the most sensitive modules on the buffer after any strategy"
    capabilities = Capabilities(uses_buffer=True)

    class Config(StrategyWrapper.Config, FPFOptions):
        # `base` (default er): FPF applies to arbitrary CL methods (Fig. 2 caption); the paper's
        # bases are Mammoth's ER, DER++, ... (unverified)
        when: Literal["end", "every_phase"] = Field(
            "end", description="FPF after the last phase (paper abstract) or each"
        )
        loss: Literal["ce", "kd"] = Field(
            "ce", description="CE on buffered labels, or KD on stored logits (+CE if kd_ce)"
        )
        buffer_size: int = Field(
            200,
            ge=0,
            description="own reservoir memory, used when the base has none or KD needs logits "
            "(Mammoth buffer sizes 200/500)",
        )

    config: Config

    def setup(self, ctx: StrategyContext) -> None:
        super().setup(ctx)
        cfg = self.config
        self.fpf = FPFController(cfg, ctx.model, ctx.data, ctx.device, cfg.loss)
        base_buffer = getattr(self.base, "buffer", None)
        usable = isinstance(base_buffer, IndexBuffer) and (
            cfg.loss == "ce" or base_buffer.extra is not None
        )
        self.own_buffer = not usable
        if self.own_buffer:
            extra = ctx.model.num_outputs if cfg.loss == "kd" else 0
            self.buffer: IndexBuffer = ReservoirBuffer(cfg.buffer_size, extra_dim=extra)
        else:
            self.buffer = base_buffer
        self.updates = 0

    def observe(self, batch: Batch) -> torch.Tensor:
        with self.fpf.meter.part("sgd"):
            loss = self.base.observe(batch)
            if self.own_buffer:
                extra = None
                if self.config.loss == "kd":  # an extra no-grad forward, counted as SGD cost
                    with torch.no_grad():
                        extra = self.model(batch.x)
                self.buffer.add(batch.index, batch.task, batch.y, self.ctx.generator, extra)
        self.updates += 1
        return loss

    def after_phase(self, phase_index: int) -> None:
        self.base.after_phase(phase_index)
        self.fpf.tracker.snapshot()
        last = phase_index == len(self.ctx.plan.phases) - 1
        if last or self.config.when == "every_phase":
            self.fpf.run(self.buffer, self.ctx.generator, self.updates)

    # -- reporting and state -----------------------------------------------------------------
    def report(self) -> dict[str, Any]:
        return {
            **super().report(),
            "fpf_buffer": "own" if self.own_buffer else "base",
            **self.fpf.report(),
        }

    def state_dict(self) -> dict[str, Any]:
        state = {**super().state_dict(), "fpf": self.fpf.state_dict()}
        state["updates"] = self.updates
        if self.own_buffer:
            state["buffer"] = self.buffer.state_dict()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.fpf.load_state_dict(state["fpf"])
        self.updates = state["updates"]
        if self.own_buffer:
            self.buffer.load_state_dict(state["buffer"])
