"""Dark Experience Replay (DER) and DER++: replay that matches the logits a sample had when stored.

Buzzega, Boschini, Porrello, Abati & Calderara, "Dark Experience for General Continual Learning:
a Strong, Simple Baseline", NeurIPS 2020 (arXiv:2004.07211). A reservoir memory keeps, for each
stored sample, the logits the network gave it at insertion time. Each update minimises
(equation numbers not re-checked against the paper's text; see docs/methods/der.md)

- DER (Eq. 6): CE(new batch) + α · MSE(logits on a memory batch, their stored logits);
- DER++ (Eq. 7): the same + β · CE(logits on a second, independently drawn memory batch, its
  labels).

As in the official code, aimagelab/mammoth@e75a491c69fd:models/der.py L29-48 and
models/derpp.py L32-60 (unchanged in substance since the paper's commit 7ab9db9):

- the stored logits are ``outputs.data`` of the training forward on the *augmented* new batch,
  taken before the optimizer step; the memory keeps the un-augmented sample (here: its index),
  and replayed samples are augmented afresh (`Strategy.make_batch`);
- the MSE (``F.mse_loss``) is the mean over every output of the fixed-size head, not only the
  outputs of the classes seen so far; clbench's models have a fixed head too
  (``plan.num_outputs``), so stored logits never change width;
- new data and each memory batch go through separate forwards (BatchNorm sees each batch
  alone), and the memory batches are ``minibatch_size`` samples drawn without replacement
  (``utils/buffer.py`` ``get_data``), ``minibatch_size`` = the train batch size in
  ``utils/best_args.py``.

Where α = 0 (or β = 0) the term is skipped, draw and forward included, so ``derpp`` with β = 0 is
``der`` exactly and ``der`` with α = 0 is ``naive``; the official code draws and forwards anyway.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from clbench.data.stream import Batch
from clbench.registry import STRATEGIES
from clbench.strategies.specs.der import DarkExperienceReplayPlusPlusSpec, DarkExperienceReplaySpec
from clbench.strategy import Strategy, StrategyContext
from clbench.strategy.buffers import ReservoirBuffer


@STRATEGIES.register("der")
class DarkExperienceReplay(DarkExperienceReplaySpec, Strategy):
    config: DarkExperienceReplaySpec.Config

    def setup(self, ctx: StrategyContext) -> None:
        super().setup(ctx)
        # one stored logit per model output: the head has a fixed width (plan.num_outputs)
        self.buffer = ReservoirBuffer(self.config.buffer_size, extra_dim=ctx.plan.num_outputs)
        self.replay_batch_size = self.config.replay_batch_size or ctx.batch_size

    def memory(self) -> ReservoirBuffer:
        return self.buffer

    @property
    def replay_ce_weight(self) -> float:
        """β of DER++ (Eq. 7): DER has no label replay."""
        return 0.0

    def observe(self, batch: Batch) -> torch.Tensor:
        logits = self.model(batch.x)
        loss = self.criterion(logits, batch)
        forwards, batches = [logits], [batch]
        if len(self.buffer) and self.config.alpha > 0:
            pos = self.sample_memory(self.buffer, self.replay_batch_size)
            replay = self._replay(pos)
            out = self.model(replay.x)
            stored = self.buffer.extra[pos].to(device=out.device)  # type: ignore[index]
            loss = loss + self.config.alpha * F.mse_loss(out.float(), stored)
            forwards.append(out)
            batches.append(replay)
        if len(self.buffer) and self.replay_ce_weight > 0:
            replay = self._replay(self.sample_memory(self.buffer, self.replay_batch_size))
            out = self.model(replay.x)
            loss = loss + self.replay_ce_weight * self.criterion(out, replay)
            forwards.append(out)
            batches.append(replay)
        # once per update, on everything it trained on
        term = self.plugin_loss(torch.cat(forwards), Batch.joined(*batches))
        if term is not None:
            loss = loss + term
        self.step(loss)
        # the logits of this update's forward (augmented inputs, weights before the step)
        self.buffer.add(
            batch.index, batch.task, batch.y, self.ctx.generator, logits.detach().float()
        )
        return loss.detach()

    def _replay(self, pos: torch.Tensor) -> Batch:
        return self.make_batch(self.buffer.index[pos], self.buffer.task[pos])

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "buffer": self.buffer.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.buffer.load_state_dict(state["buffer"])


@STRATEGIES.register("derpp")
class DarkExperienceReplayPlusPlus(DarkExperienceReplayPlusPlusSpec, DarkExperienceReplay):
    config: DarkExperienceReplayPlusPlusSpec.Config

    @property
    def replay_ce_weight(self) -> float:
        return self.config.beta
