"""Naive fine-tuning: plain SGD on the current phase's data (the lower bound)."""

from __future__ import annotations

import torch

from clbench.data.stream import Batch
from clbench.registry import STRATEGIES
from clbench.strategies.specs.naive import NaiveSpec
from clbench.strategy import Strategy


@STRATEGIES.register("naive")
class Naive(NaiveSpec, Strategy):
    def observe(self, batch: Batch) -> torch.Tensor:
        loss = self.loss(self.model(batch.x), batch)
        self.step(loss)
        return loss.detach()
