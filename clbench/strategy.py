"""The strategy API: one small class per method, one `observe` that performs the update.

A strategy file (in the top-level `strategies/` package) defines a subclass registered
with ``@STRATEGIES.register("name")``, a nested pydantic ``Config`` whose field defaults cite
where they come from, and a `Capabilities` declaration checked before a run starts. Hooks, all
optional but `observe`:

- ``setup(ctx)``: once, after the model and data exist (builds the optimizer by default);
- ``training_parts(phase_index)``: the data a phase trains on (default: the phase's own parts);
- ``phase_batches(parts, ...)``: how that data is cut into batches (default: seeded shuffles);
- ``before_phase(phase_index)`` / ``after_phase(phase_index)``: around each training phase;
- ``observe(batch)``: one optimizer update on a batch; returns the loss tensor (not synced);
- ``predict(x, task)``: logits used by the evaluator (default: ``model(x)``);
- ``state_dict()`` / ``load_state_dict()``: everything needed to resume (buffers, statistics);
- ``report()``: extra JSON-serialisable facts for the run summary (costs, selected modules...).

A wrapper (e.g. ``view_batch``) can add a loss term to a base strategy without copying its
`observe` by setting ``base.extra_loss = fn``: `loss` then returns ``CE + fn(logits, batch)``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict
from torch import nn

from clbench.data.batches import PhaseBatches
from clbench.data.stream import Batch, StreamData
from clbench.plan import PhasePart, ScenarioPlan


@dataclass(frozen=True)
class Capabilities:
    """What a strategy supports; a run is refused before it starts if the scenario does not fit."""

    settings: frozenset[str] = frozenset({"class", "domain", "task"})
    uses_buffer: bool = False
    needs_pretrained: bool = False

    def problems_with(self, plan: ScenarioPlan) -> list[str]:
        problems = []
        if plan.setting not in self.settings:
            allowed = ", ".join(sorted(self.settings))
            problems.append(f"supports {allowed}-incremental scenarios, not {plan.setting}")
        return problems


@dataclass
class OptimizerSettings:
    """The shared optimizer settings of the ``train`` config section."""

    name: str
    lr: float
    momentum: float
    weight_decay: float

    def build(self, params: Any) -> torch.optim.Optimizer:
        if self.name == "sgd":
            return torch.optim.SGD(
                params, lr=self.lr, momentum=self.momentum, weight_decay=self.weight_decay
            )
        if self.name == "adam":
            return torch.optim.Adam(params, lr=self.lr, weight_decay=self.weight_decay)
        return torch.optim.AdamW(params, lr=self.lr, weight_decay=self.weight_decay)


@dataclass
class StrategyContext:
    """Everything a strategy may use, handed over once in `Strategy.setup`."""

    model: nn.Module
    data: StreamData
    plan: ScenarioPlan
    device: torch.device
    optimizer: OptimizerSettings
    batch_size: int
    generator: torch.Generator  # the strategy's own seeded RNG (buffer sampling, ...)
    # updates of the whole run; set by the engine right after `setup` (None before)
    total_updates: int | None = None


class Strategy(ABC):
    """Base class of continual-learning strategies."""

    class Config(BaseModel):
        model_config = ConfigDict(extra="forbid")

    capabilities: ClassVar[Capabilities] = Capabilities()
    summary: ClassVar[str] = ""
    # False when state_dict cannot capture the whole strategy: its runs are not checkpointed
    resumable: ClassVar[bool] = True
    # optional term `loss` adds to every call: fn(raw logits, batch) -> scalar (set by wrappers)
    extra_loss: Callable[[torch.Tensor, Batch], torch.Tensor] | None = None

    def __init__(self, config: BaseModel) -> None:
        self.config = config

    def problems_with(self, plan: ScenarioPlan) -> list[str]:
        """Why this strategy cannot run ``plan`` (checked before a run starts); [] if it can."""
        return self.capabilities.problems_with(plan)

    def setup(self, ctx: StrategyContext) -> None:
        self.ctx = ctx
        self.model = ctx.model
        self.data = ctx.data
        self.optimizer = self.configure_optimizer()

    def configure_optimizer(self) -> torch.optim.Optimizer:
        return self.ctx.optimizer.build(self.model.parameters())

    def training_parts(self, phase_index: int) -> Sequence[PhasePart]:
        return self.ctx.plan.phases[phase_index].parts

    def phase_batches(
        self,
        parts: Sequence[PhasePart],
        batch_size: int,
        generator: torch.Generator,
        drop_last: bool,
    ) -> PhaseBatches:
        """The batch iterator over a phase's parts (override to change batch composition)."""
        return PhaseBatches(parts, batch_size, generator, drop_last)

    def before_phase(self, phase_index: int) -> None:  # noqa: B027 - optional hook
        """Called before the first update of each phase."""

    def after_phase(self, phase_index: int) -> None:  # noqa: B027 - optional hook
        """Called after the last update of each phase, before the boundary evaluation."""

    @abstractmethod
    def observe(self, batch: Batch) -> torch.Tensor:
        """Perform one update on ``batch``; return the (detached) training loss."""

    def predict(self, x: torch.Tensor, task: torch.Tensor) -> torch.Tensor:
        return self.model(x)

    def loss(self, logits: torch.Tensor, batch: Batch) -> torch.Tensor:
        """Cross-entropy, restricted to each sample's task outputs in task-incremental runs.

        Plus ``self.extra_loss(logits, batch)`` when a wrapper has set it.
        """
        loss = F.cross_entropy(self.data.mask_logits(logits, batch.task), batch.y)
        if self.extra_loss is not None:
            loss = loss + self.extra_loss(logits, batch)
        return loss

    def step(self, loss: torch.Tensor) -> None:
        """Backward and optimizer step (the common tail of `observe`)."""
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()

    def report(self) -> dict[str, Any]:
        """Strategy-specific facts for ``summary.json`` (under ``strategy_report``)."""
        return {}

    def state_dict(self) -> dict[str, Any]:
        return {"optimizer": self.optimizer.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.optimizer.load_state_dict(state["optimizer"])
