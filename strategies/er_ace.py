"""ER-ACE: experience replay with an asymmetric cross-entropy.

Caccia, Aljundi, Asadi, Tuytelaars, Pineau & Belilovsky, "New Insights on Reducing Abrupt
Representation Change in Online Continual Learning", ICLR 2022 (arXiv:2104.05025). Plain ER
trains the new batch's cross-entropy over every class, so the first batches of new classes push
the logits of all old classes down and disrupt the old classes' features. ER-ACE restricts that
term to the classes present in the incoming batch, while the replayed batch keeps the full
cross-entropy over all classes:

    L = CE(new batch; logits of its own classes and of classes not seen yet)
        + CE(memory batch; all logits).

As the official code (pclucas14/AML@7c929363d9c6:methods/er_ace.py L28-51, methods/er.py
L54-78) and Mammoth (aimagelab/mammoth@e75a491c69fd:models/er_ace.py L57-91):

- the classes never seen in an incoming batch stay in the new batch's softmax ("unmask unseen
  classes"); the masked logits are filled with -inf (official: -1e9), so they get no gradient
  from that term;
- the two terms are summed, each batch with its own forward (BatchNorm sees each alone);
- the memory is a reservoir offered every new batch after the step, replayed in batches of
  ``replay_batch_size`` drawn without replacement;
- with ``task_free`` (the official code forces it, L16-20; Mammoth's seq-cifar10 config sets it)
  masking and replay start with the first update; without it, with the second phase (Mammoth's
  default ``current_task > 0``).

"Seen" classes are those of the incoming batches so far, kept as a mask over the model outputs;
the official code unmasks every output from the largest seen label on
(``mask[:, seen_so_far.max():]``), which relies on classes arriving in label order.
"""

from __future__ import annotations

from typing import Any

import torch

from clbench.data.stream import Batch
from clbench.registry import STRATEGIES
from clbench.strategies.specs.er_ace import ExperienceReplayACESpec
from clbench.strategy import Strategy, StrategyContext
from clbench.strategy.buffers import ReservoirBuffer


@STRATEGIES.register("er_ace")
class ExperienceReplayACE(ExperienceReplayACESpec, Strategy):
    config: ExperienceReplayACESpec.Config

    def setup(self, ctx: StrategyContext) -> None:
        super().setup(ctx)
        self.buffer = ReservoirBuffer(self.config.buffer_size)
        self.replay_batch_size = self.config.replay_batch_size or ctx.batch_size
        # outputs whose class has been in an incoming batch (the official `seen_so_far`)
        self.seen = torch.zeros(ctx.plan.num_outputs, dtype=torch.bool, device=ctx.device)

    def memory(self) -> ReservoirBuffer:
        return self.buffer

    def observe(self, batch: Batch) -> torch.Tensor:
        present = torch.zeros_like(self.seen)
        present[batch.y] = True
        self.seen |= present
        logits = self.model(batch.x)
        asymmetric = self.config.task_free or self.ctx.loop.phase > 0
        new_logits = logits
        if asymmetric:
            # absent classes seen before get no gradient from the new batch
            new_logits = logits.masked_fill(~(present | ~self.seen), float("-inf"))
        loss = self.criterion(new_logits, batch)
        forwards, batches = [logits], [batch]
        if asymmetric and len(self.buffer):
            pos = self.sample_memory(self.buffer, self.replay_batch_size)
            replay = self.make_batch(self.buffer.index[pos], self.buffer.task[pos])
            out = self.model(replay.x)
            loss = loss + self.criterion(out, replay)
            forwards.append(out)
            batches.append(replay)
        # once per update, on everything it trained on
        term = self.plugin_loss(torch.cat(forwards), Batch.joined(*batches))
        if term is not None:
            loss = loss + term
        self.step(loss)
        self.buffer.add(batch.index, batch.task, batch.y, self.ctx.generator)
        return loss.detach()

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "buffer": self.buffer.state_dict(), "seen": self.seen}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.buffer.load_state_dict(state["buffer"])
        self.seen = state["seen"].to(self.ctx.device)
