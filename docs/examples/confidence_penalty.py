"""Confidence penalty (Pereyra et al., "Regularizing Neural Networks by Penalizing Confident
Output Distributions", ICLR 2017 workshop, arXiv:1701.06548) as a clbench plugin.

It subtracts β times the entropy of the predicted distribution from any strategy's loss (paper
Sec. 3.1, Eq. 1), once per update, on everything the update trains on.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from pydantic import Field

from clbench.data.stream import Batch
from clbench.registry import PLUGINS
from clbench.strategy import LOSS_TERMS, Plugin, Strategy


@PLUGINS.register("confidence_penalty")
class ConfidencePenalty(Plugin):
    summary = "Confidence penalty: -β·entropy of the predictions added to the loss"

    class Config(Plugin.Config):
        beta: float = Field(0.1, ge=0, description="β of Eq. 1 (the paper tunes it per task)")

    def needs(self, strategy: Strategy) -> frozenset[str]:
        return frozenset({LOSS_TERMS})  # refused over strategies that compute their own loss

    def loss_term(self, logits: torch.Tensor, batch: Batch) -> torch.Tensor:
        z = self.ctx.data.mask_logits(logits, batch.task).float()  # task-IL: the task's outputs
        logp = F.log_softmax(z, dim=1)
        entropy = -(logp.exp() * logp).nan_to_num().sum(dim=1).mean()  # masked outputs: 0
        return -self.config.beta * entropy
