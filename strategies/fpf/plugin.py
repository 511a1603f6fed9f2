"""FPF: forgetting-prioritized finetuning as a plugin over any strategy.

Zhao et al., ICML 2023, arXiv:2304.04158: "FPF finetunes the most sensitive parameters for a few
iterations using buffered data at the end of arbitrary CL methods" (Fig. 2 caption). The strategy
trains as usual; after the last phase (``when: end``, the paper's FPF) or after every phase
(``every_phase``) only the selected modules are finetuned on a replay memory. That memory is the
strategy's own (`Strategy.memory`, e.g. ER's buffer, shared, not copied) when it is an index
memory holding what the loss needs; otherwise, or when KD needs stored logits, a
`ReservoirBuffer` of ``buffer_size`` is filled here after every update. The finetuning itself:
`clbench.strategies.fpf.finetune`.
"""

from __future__ import annotations

from typing import Any

import torch

from clbench.data.stream import Batch
from clbench.registry import PLUGINS
from clbench.strategies.fpf.finetune import FPFController
from clbench.strategies.specs.fpf import FPFSpec
from clbench.strategy import MODEL, LoopState, Plugin, Strategy, StrategyContext
from clbench.strategy.buffers import IndexBuffer, ReservoirBuffer


@PLUGINS.register("fpf")
class FPF(FPFSpec, Plugin):
    config: FPFSpec.Config

    def needs(self, strategy: Strategy) -> frozenset[str]:
        return frozenset({MODEL})  # it finetunes ctx.model: useless where that is not used

    def setup(self, ctx: StrategyContext, strategy: Strategy) -> None:
        super().setup(ctx, strategy)
        cfg = self.config
        self.fpf = FPFController(
            cfg, ctx.model, ctx.data, ctx.device, cfg.loss, field="plugins.fpf.modules"
        )
        shared = strategy.memory()
        usable = isinstance(shared, IndexBuffer) and (cfg.loss == "ce" or shared.extra is not None)
        self.own_buffer = not usable
        if usable:
            self.buffer: IndexBuffer = shared
        else:
            extra = ctx.model.num_outputs if cfg.loss == "kd" else 0
            self.buffer = ReservoirBuffer(cfg.buffer_size, extra_dim=extra)
        self._sgd_part: Any = None

    def memory(self) -> IndexBuffer | None:
        return self.buffer if self.own_buffer else None

    def before_update(self, batch: Batch, loop: LoopState) -> None:
        self._sgd_part = self.fpf.meter.part("sgd")  # the strategy's update is the SGD cost
        self._sgd_part.__enter__()

    def after_update(self, batch: Batch, loss: torch.Tensor, loop: LoopState) -> None:
        if self.own_buffer:
            extra = None
            if self.config.loss == "kd":  # an extra no-grad forward, counted as SGD cost
                with torch.no_grad():
                    extra = self.ctx.model(batch.x)
            self.buffer.add(batch.index, batch.task, batch.y, self.ctx.generator, extra)
        self._sgd_part.__exit__(None, None, None)

    def after_phase(self, loop: LoopState) -> None:
        self.fpf.tracker.snapshot()
        if loop.last_phase or self.config.when == "every_phase":
            self.fpf.run(self.buffer, self.ctx.generator, loop.step)

    # -- reporting and state -----------------------------------------------------------------
    def report(self) -> dict[str, Any]:
        return {"fpf_buffer": "own" if self.own_buffer else "strategy", **self.fpf.report()}

    def state_dict(self) -> dict[str, Any]:
        state: dict[str, Any] = {"fpf": self.fpf.state_dict()}
        if self.own_buffer:
            state["buffer"] = self.buffer.state_dict()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.fpf.load_state_dict(state["fpf"])
        if self.own_buffer:
            self.buffer.load_state_dict(state["buffer"])
