"""Learning without Forgetting (Li & Hoiem, ECCV 2016, arXiv:1606.09282) as a clbench strategy.

Each update adds to the cross-entropy a distillation term that keeps the outputs of the classes
learned before this phase close to those of the model as it was when the phase began (paper
Sec. 3, "knowledge distillation loss"), on the new data only: no memory.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
import torch.nn.functional as F
from pydantic import Field

from clbench.data.stream import Batch
from clbench.registry import STRATEGIES
from clbench.strategy import Strategy, StrategyContext


@STRATEGIES.register("my_lwf")
class LwF(Strategy):
    summary = "Learning without Forgetting: distil the previous model's old-class outputs"

    class Config(Strategy.Config):
        alpha: float = Field(1.0, ge=0, description="λ_o, weight of the distillation (Sec. 3: 1)")
        temperature: float = Field(2.0, gt=0, description="T of the soft outputs (Sec. 3: 2)")

    def setup(self, ctx: StrategyContext) -> None:
        super().setup(ctx)  # keeps ctx, model, data; builds the optimizer
        self.teacher: torch.nn.Module | None = None  # the model at the start of this phase
        self.old = torch.zeros_like(ctx.loop.seen_outputs)  # outputs learned before it

    def before_phase(self, phase_index: int) -> None:
        if phase_index > 0:
            self.teacher = self._frozen_copy()

    def observe(self, batch: Batch) -> torch.Tensor:
        logits = self.model(batch.x)
        loss = self.loss(logits, batch)  # cross-entropy, plus any plugin's loss terms
        if self.teacher is not None and bool(self.old.any()):
            with torch.no_grad():
                target = self.teacher(batch.x)[:, self.old]
            t = self.config.temperature
            distill = F.kl_div(
                F.log_softmax(logits[:, self.old] / t, dim=1),
                F.softmax(target / t, dim=1),
                reduction="batchmean",
            )
            loss = loss + self.config.alpha * t * t * distill
        self.step(loss)
        return loss.detach()

    def after_phase(self, phase_index: int) -> None:
        self.old = self.ctx.loop.seen_outputs.clone()

    def _frozen_copy(self) -> torch.nn.Module:
        teacher = copy.deepcopy(self.model).eval()
        return teacher.requires_grad_(False)

    def state_dict(self) -> dict[str, Any]:
        teacher = None if self.teacher is None else self.teacher.state_dict()
        return {**super().state_dict(), "teacher": teacher, "old": self.old}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.old = state["old"]
        self.teacher = None
        if state["teacher"] is not None:
            self.teacher = self._frozen_copy()
            self.teacher.load_state_dict(state["teacher"])
