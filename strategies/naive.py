"""Naive fine-tuning: plain SGD on the current phase's data (the lower bound)."""

from __future__ import annotations

import torch

from clbench.data.stream import Batch
from clbench.registry import STRATEGIES
from clbench.strategy import Strategy


@STRATEGIES.register("naive")
class Naive(Strategy):
    summary = "Fine-tuning on each phase's data only (lower bound)"

    def observe(self, batch: Batch) -> torch.Tensor:
        loss = self.loss(self.model(batch.x), batch)
        self.step(loss)
        return loss.detach()
