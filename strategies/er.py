"""Experience replay (ER): each update mixes the new batch with a batch drawn from a memory.

Chaudhry et al. 2019, "On Tiny Episodic Memories in Continual Learning" (reservoir buffer); the
stability-gap paper's ER (De Lange et al. 2023, official code `src/methods/replay.py`) uses a
class-balanced buffer refilled after each experience, a replay batch as large as the new batch and
the loss ``w·CE(new) + (1−w)·CE(replay)``. The memory stores dataset indices, not images.
"""

from __future__ import annotations

from typing import Any

import torch

from clbench.data.stream import Batch
from clbench.registry import STRATEGIES
from clbench.strategies.specs.er import ExperienceReplaySpec
from clbench.strategy import Strategy
from clbench.strategy.buffers import ClassBalancedBuffer, IndexBuffer, ReservoirBuffer


@STRATEGIES.register("er")
class ExperienceReplay(ExperienceReplaySpec, Strategy):
    def setup(self, ctx: Any) -> None:
        super().setup(ctx)
        cfg = self.config
        buffer_cls = ReservoirBuffer if cfg.buffer == "reservoir" else ClassBalancedBuffer
        self.buffer = buffer_cls(cfg.buffer_size)
        self.replay_batch_size = cfg.replay_batch_size or ctx.batch_size
        self._phase_samples: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []

    def observe(self, batch: Batch) -> torch.Tensor:
        cfg = self.config
        replay = self._replay_batch()
        if replay is None:
            loss = self.loss(self.model(batch.x), batch)
        elif cfg.new_weight is None:
            joined = Batch.joined(batch, replay)
            loss = self.loss(self.model(joined.x), joined)
        else:
            # one forward over both so BatchNorm sees the mixed batch, as in the official code
            joined = Batch.joined(batch, replay)
            logits = self.model(joined.x)
            n = len(batch)
            new_loss = self.criterion(logits[:n], batch)
            replay_loss = self.criterion(logits[n:], replay)
            loss = cfg.new_weight * new_loss + (1 - cfg.new_weight) * replay_loss
            term = self.plugin_loss(logits, joined)  # once, on the whole forward
            if term is not None:
                loss = loss + term
        self.step(loss)
        self._remember(batch)
        return loss.detach()

    def memory(self) -> IndexBuffer:
        return self.buffer

    def _replay_batch(self) -> Batch | None:
        if len(self.buffer) == 0:
            return None
        pos = self.sample_memory(self.buffer, self.replay_batch_size)
        return self.make_batch(self.buffer.index[pos], self.buffer.task[pos])

    def _remember(self, batch: Batch) -> None:
        if isinstance(self.buffer, ReservoirBuffer):
            self.buffer.add(batch.index, batch.task, batch.y, self.ctx.generator)
        else:
            self._phase_samples.append((batch.index, batch.task, batch.y))

    def after_phase(self, phase_index: int) -> None:
        if isinstance(self.buffer, ClassBalancedBuffer) and self._phase_samples:
            index, task, target = (torch.cat(t) for t in zip(*self._phase_samples, strict=True))
            # each sample once (epochs > 1 revisit the same samples)
            unique, first = _unique_rows(index, task)
            self.buffer.update(unique[:, 0], unique[:, 1], target.cpu()[first], self.ctx.generator)
            self._phase_samples.clear()

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "buffer": self.buffer.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.buffer.load_state_dict(state["buffer"])


def _unique_rows(index: torch.Tensor, task: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Distinct (index, task) pairs and the position of a first occurrence of each."""
    pairs = torch.stack([index.cpu(), task.cpu()], dim=1)
    unique, inverse = torch.unique(pairs, dim=0, return_inverse=True)
    first = torch.full((unique.shape[0],), pairs.shape[0], dtype=torch.long)
    first.scatter_reduce_(0, inverse, torch.arange(pairs.shape[0]), reduce="amin")
    return unique, first
