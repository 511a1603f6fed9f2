"""Replay buffers that hold indices into the base dataset, never copies of images.

A slot stores (base train index, task id, target) and, optionally, a vector of extra values per
sample (e.g. logits for distillation). Batches are re-formed through `StreamData.make_batch`, so
task transforms and normalisation apply exactly as for new data. All randomness comes from the
generator passed in, which the run saves for resumption.
"""

from __future__ import annotations

from typing import Any

import torch


class IndexBuffer:
    """Fixed-capacity storage of sample references with uniform sampling."""

    def __init__(self, capacity: int, extra_dim: int = 0) -> None:
        if capacity < 0:
            raise ValueError(f"buffer capacity must be >= 0, got {capacity}")
        self.capacity = capacity
        self.index = torch.empty(0, dtype=torch.long)
        self.task = torch.empty(0, dtype=torch.long)
        self.target = torch.empty(0, dtype=torch.long)
        self.extra = torch.empty(0, extra_dim) if extra_dim else None

    def __len__(self) -> int:
        return int(self.index.shape[0])

    @property
    def nbytes(self) -> int:
        tensors = [self.index, self.task, self.target] + (
            [self.extra] if self.extra is not None else []
        )
        return sum(t.element_size() * t.numel() for t in tensors)

    def sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """Positions of ``min(n, len)`` distinct stored samples, drawn uniformly."""
        n = min(n, len(self))
        return torch.randperm(len(self), generator=generator)[:n]

    def state_dict(self) -> dict[str, Any]:
        state = {"index": self.index, "task": self.task, "target": self.target}
        if self.extra is not None:
            state["extra"] = self.extra
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.index, self.task, self.target = state["index"], state["task"], state["target"]
        if "extra" in state:
            self.extra = state["extra"]


class ReservoirBuffer(IndexBuffer):
    """Reservoir sampling (Vitter 1985): every sample seen so far is kept with equal probability."""

    def __init__(self, capacity: int, extra_dim: int = 0) -> None:
        super().__init__(capacity, extra_dim)
        self.seen = 0

    def add(
        self,
        index: torch.Tensor,
        task: torch.Tensor,
        target: torch.Tensor,
        generator: torch.Generator,
        extra: torch.Tensor | None = None,
    ) -> None:
        """Offer a batch to the reservoir (vectorised; same distribution as one-by-one offers)."""
        index, task, target = index.cpu(), task.cpu(), target.cpu()
        extra = extra.detach().cpu() if extra is not None else None
        free = max(self.capacity - len(self), 0)
        if free:
            take = slice(0, free)
            self._append(
                index[take], task[take], target[take], None if extra is None else extra[take]
            )
        rest = slice(free, None)
        n_rest = index[rest].shape[0]
        if n_rest and self.capacity:
            # sample k of the batch is the (seen + free + k + 1)-th sample ever offered
            counts = self.seen + free + torch.arange(n_rest) + 1
            slot = (torch.rand(n_rest, generator=generator) * counts).long()
            keep = slot < self.capacity
            # when two samples pick the same slot the later one wins, as in sequential reservoir
            positions, order = slot[keep], torch.nonzero(keep).squeeze(1) + free
            last = _last_occurrence(positions)
            positions, order = positions[last], order[last]
            self.index[positions] = index[order]
            self.task[positions] = task[order]
            self.target[positions] = target[order]
            if self.extra is not None and extra is not None:
                self.extra[positions] = extra[order]
        self.seen += index.shape[0]

    def _append(self, index, task, target, extra) -> None:
        self.index = torch.cat([self.index, index])
        self.task = torch.cat([self.task, task])
        self.target = torch.cat([self.target, target])
        if self.extra is not None and extra is not None:
            self.extra = torch.cat([self.extra, extra])

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "seen": self.seen}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.seen = int(state["seen"])


class ClassBalancedBuffer(IndexBuffer):
    """Equal share per seen class (``capacity // classes``), refilled at each phase end.

    The stability-gap paper's ER uses this buffer with an adaptive per-class quota (Avalanche's
    ``ClassBalancedBuffer(adaptive_size=True)``, in
    Mattdl/ContinualEvaluation@7ffa368:src/methods/replay.py): when new classes arrive, old
    classes shrink to make room.
    """

    def update(
        self,
        index: torch.Tensor,
        task: torch.Tensor,
        target: torch.Tensor,
        generator: torch.Generator,
    ) -> None:
        """Merge a phase's samples and re-balance: a random subset of each class survives."""
        index = torch.cat([self.index, index.cpu()])
        task = torch.cat([self.task, task.cpu()])
        target = torch.cat([self.target, target.cpu()])
        classes = torch.unique(target)
        if len(classes) == 0 or self.capacity == 0:
            return
        quota = self.capacity // len(classes)
        spare = self.capacity - quota * len(classes)
        keep = []
        for rank, cls in enumerate(classes.tolist()):  # one iteration per class, not per sample
            members = torch.nonzero(target == cls).squeeze(1)
            limit = quota + (1 if rank < spare else 0)
            chosen = members[torch.randperm(len(members), generator=generator)[:limit]]
            keep.append(chosen)
        kept = torch.cat(keep).sort().values
        self.index, self.task, self.target = index[kept], task[kept], target[kept]


def _last_occurrence(values: torch.Tensor) -> torch.Tensor:
    """Positions of the last occurrence of each distinct value in ``values``."""
    if values.numel() == 0:
        return values
    reversed_vals = values.flip(0)
    _, inverse = torch.unique(reversed_vals, return_inverse=True)
    first_in_reversed = torch.full((int(inverse.max()) + 1,), values.numel(), dtype=torch.long)
    first_in_reversed.scatter_reduce_(
        0, inverse, torch.arange(values.numel()), reduce="amin", include_self=True
    )
    return values.numel() - 1 - first_in_reversed
