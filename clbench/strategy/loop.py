"""Loop state: where the training loop is, handed to strategies and plugins by the engine.

`LoopPlan` holds what is fixed before the first update (the data each phase trains on, its
batches per epoch, updates per phase and in the run); `LoopState` adds where the loop is now
(phase, epoch, batch, update counters, seen tasks and outputs). The engine builds both before
`Strategy.setup` and keeps the state current, so no method has to infer them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

from clbench.scenario.plan import PhasePart


@dataclass(frozen=True)
class LoopPlan:
    """The shape of the whole training loop, known before it starts."""

    parts: tuple[tuple[PhasePart, ...], ...]  # what each phase trains on (`training_parts`)
    batches_per_epoch: tuple[int, ...]  # per phase, after every plugin's batch composition
    epochs: int
    batch_size: int
    drop_last: bool

    @property
    def num_phases(self) -> int:
        return len(self.parts)

    @property
    def updates_per_phase(self) -> tuple[int, ...]:
        return tuple(self.epochs * n for n in self.batches_per_epoch)

    @property
    def total_updates(self) -> int:
        return sum(self.updates_per_phase)

    def updates_before(self, phase: int) -> int:
        """Updates made by all phases before ``phase``."""
        return sum(self.updates_per_phase[:phase])


@dataclass
class LoopState:
    """Where the loop is. ``step`` counts updates of the run, ``phase_step`` those of the phase;
    both count the update in progress while a strategy observes (1-based), and the finished ones
    outside it. ``epoch`` is 0-based within the phase, ``batch`` the batches done in the epoch."""

    plan: LoopPlan
    output_mask: torch.Tensor  # [tasks, outputs] bool: the outputs of each task
    phase: int = 0
    epoch: int = 0
    batch: int = 0
    step: int = 0
    phase_step: int = 0
    seen_upto: int = -1  # highest task id trained or current so far (tasks 0..seen_upto)
    in_update: bool = field(default=False, repr=False)

    @property
    def seen_tasks(self) -> range:
        return range(self.seen_upto + 1)

    @property
    def seen_outputs(self) -> torch.Tensor:
        """Boolean mask over model outputs: those of the tasks seen so far."""
        if self.seen_upto < 0:
            return torch.zeros_like(self.output_mask[0])
        return self.output_mask[: self.seen_upto + 1].any(0)

    @property
    def phase_parts(self) -> Sequence[PhasePart]:
        return self.plan.parts[self.phase]

    @property
    def phase_updates(self) -> int:
        """Updates this phase makes in all."""
        return self.plan.updates_per_phase[self.phase]

    @property
    def total_updates(self) -> int:
        return self.plan.total_updates

    @property
    def last_phase(self) -> bool:
        return self.phase == self.plan.num_phases - 1
