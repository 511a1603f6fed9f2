"""Seeded batch iteration over a training phase by tensor slicing (no DataLoader)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch

from clbench.data.batch_rule import batches_per_epoch
from clbench.scenario.plan import PhasePart


class PhaseBatches:
    """Iterates ``(indices, task ids)`` mini-batches over the parts of a phase.

    Each epoch draws one permutation from ``generator`` and slices it: no per-sample Python.
    The generator is owned by the caller so the data order is part of the run's saved state.
    """

    def __init__(
        self,
        parts: Sequence[PhasePart],
        batch_size: int,
        generator: torch.Generator,
        drop_last: bool = False,
    ) -> None:
        self.index = torch.cat([torch.as_tensor(p.indices, dtype=torch.long) for p in parts])
        self.task = torch.cat(
            [torch.full((len(p.indices),), p.task, dtype=torch.long) for p in parts]
        )
        self.batch_size = batch_size
        self.generator = generator
        self.drop_last = drop_last

    def __len__(self) -> int:
        return batches_per_epoch(self.index.shape[0], self.batch_size, self.drop_last)

    def epoch(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        n = self.index.shape[0]
        order = torch.randperm(n, generator=self.generator)
        index, task = self.index[order], self.task[order]
        batches = len(self)
        for b in range(batches):
            # the last batch takes the remainder unless drop_last (see __len__)
            end = n if b == batches - 1 and not self.drop_last else (b + 1) * self.batch_size
            sl = slice(b * self.batch_size, end)
            yield index[sl], task[sl]
