"""The strategy API: one small class per method, one `observe` that performs the update.

A strategy (the learner: how it updates, how it predicts, what state it keeps) is a subclass
registered with ``@STRATEGIES.register("name")``, with a nested pydantic ``Config`` whose field
defaults cite their source and a `Capabilities` declaration checked before a run starts. The
engine calls, in this order (all optional but `observe`):

- ``training_parts(phase_index)``: the data a phase trains on (default: the phase's own parts);
  called before `setup`, when only ``self.ctx.plan`` and the config may be read;
- ``setup(ctx)``: once, after the model, data and loop plan exist (builds the optimizer);
- ``phase_batches(parts, batch_size, generator, drop_last)``: how a phase's data is cut into
  batches (default: seeded shuffles);
- ``before_phase(phase_index)`` / ``after_phase(phase_index)``: around each training phase;
- ``observe(batch)``: one update on a batch; returns the detached loss (not synced);
- ``predict(x, task)``: logits used by the evaluator (default: ``model(x)``);
- ``state_dict()`` / ``load_state_dict()``: everything needed to resume;
- ``report()``: extra JSON-serialisable facts for the run summary.

Where the loop is (phase, epoch, updates, seen outputs) is ``self.ctx.loop`` (`LoopState`). A
strategy declares its parts instead of relying on attribute names: ``memory()`` (what it
replays from, counted in the budget) and ``networks()`` (what it trains; default the model).
Plugins (`clbench.strategy.plugin`) reach a strategy through four helpers it uses: `make_batch`
and `sample_memory` for replay, `loss` (or `criterion` + `plugin_loss`) for the training loss.
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from pydantic import BaseModel
from torch import nn

from clbench.data.batches import PhaseBatches
from clbench.data.stream import Batch, StreamData
from clbench.scenario.plan import PhasePart, ScenarioPlan
from clbench.strategy.loop import LoopState
from clbench.strategy.plugin import PluginChain
from clbench.strategy.spec import StrategySpec
from clbench.strategy.stepper import Stepper


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
    # where the loop is; complete (its plan included) when `Strategy.setup` is called
    loop: LoopState = None  # type: ignore[assignment]
    plugins: PluginChain = dataclasses.field(default_factory=PluginChain)
    # backward, clipping, loss scaling and the optimizer step of `Strategy.step`
    stepper: Stepper = dataclasses.field(default_factory=Stepper)
    # the run's training augmentation (`train.augment`), applied to every training batch
    augment: Callable[[Batch], Batch] = lambda batch: batch


class Strategy(StrategySpec, ABC):
    """Base class of continual-learning strategies (their spec: `StrategySpec`)."""

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

    def memory(self) -> Any:
        """The memory this strategy replays from (e.g. an `IndexBuffer`), or None.

        Plugins find it here (FPF finetunes on it) and the budget counts its size and bytes."""
        return None

    def networks(self) -> list[nn.Module]:
        """The modules this strategy trains (the budget counts their parameters)."""
        return [self.ctx.model]

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

    def before_phase(self, phase_index: int) -> None:
        """Called before the first update of each phase."""

    def after_phase(self, phase_index: int) -> None:
        """Called after the last update of each phase, before the boundary evaluation."""

    @abstractmethod
    def observe(self, batch: Batch) -> torch.Tensor:
        """Perform one update on ``batch``; return the (detached) training loss."""

    def predict(self, x: torch.Tensor, task: torch.Tensor) -> torch.Tensor:
        return self.model(x)

    def criterion(self, logits: torch.Tensor, batch: Batch) -> torch.Tensor:
        """Cross-entropy, restricted to each sample's task outputs in task-incremental runs."""
        return F.cross_entropy(self.data.mask_logits(logits, batch.task), batch.y)

    def plugin_loss(self, logits: torch.Tensor, batch: Batch) -> torch.Tensor | None:
        """The plugins' loss terms on this update's training forward (None without any).

        Add it once per update, on the logits of everything the update trains on."""
        return self.ctx.plugins.loss_term(logits, batch)

    def loss(self, logits: torch.Tensor, batch: Batch) -> torch.Tensor:
        """`criterion` plus the plugins' terms: the whole loss of a one-forward update."""
        loss = self.criterion(logits, batch)
        term = self.plugin_loss(logits, batch)
        return loss if term is None else loss + term

    def make_batch(self, index: torch.Tensor, task: torch.Tensor) -> Batch:
        """A training batch of dataset ``index`` (e.g. replayed from memory): augmented as the
        run's training batches are (`train.augment`), then through the plugins."""
        return self.ctx.plugins.train_batch(self.ctx.augment(self.data.make_batch(index, task)))

    def sample_memory(self, memory: Any, n: int) -> torch.Tensor:
        """Positions of ``memory`` to replay this update (a plugin may compose the draw)."""
        return self.ctx.plugins.memory_draw(memory, n, self.ctx.generator)

    def step(self, loss: torch.Tensor, adjust_gradients: Callable[[], None] | None = None) -> None:
        """Backward and optimizer step (the common tail of `observe`), with the run's gradient
        clipping and fp16 loss scaling (`clbench.strategy.stepper`). ``adjust_gradients``, if
        given, edits the parameters' gradients in place between backward and the step (A-GEM's
        projection)."""
        self.ctx.stepper.step(loss, self.optimizer, adjust_gradients)

    def report(self) -> dict[str, Any]:
        """Strategy-specific facts for ``summary.json`` (under ``strategy_report``)."""
        return {}

    def state_dict(self) -> dict[str, Any]:
        return {"optimizer": self.optimizer.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.optimizer.load_state_dict(state["optimizer"])
