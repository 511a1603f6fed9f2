"""Plugins: modifiers that add to any strategy without touching its code.

A plugin (View-Batch, FPF finetuning, a loss term, a sampler) is a class registered with
``@PLUGINS.register("name")``, with a nested pydantic ``Config`` like a strategy. The engine calls
its hooks at named moments; each is optional:

- ``setup(ctx, strategy)``: once, after the strategy's own setup;
- ``phase_batches(parts, batch_size, generator, drop_last, batches)``: the batch iterator of a
  phase (given the strategy's; return another to change batch composition);
- ``before_phase(loop)`` / ``after_phase(loop)``: around each phase, after / before the strategy's;
- ``before_update(batch, loop)`` / ``after_update(batch, loss, loop)``: around each `observe`;
- ``train_batch(batch)``: every training batch the strategy sees (the incoming one and those it
  makes from its memory through `Strategy.make_batch`);
- ``memory_draw(memory, n, generator)``: positions of the strategy's memory to replay
  (`Strategy.sample_memory`), or None for the memory's own draw;
- ``loss_term(logits, batch)``: a term the strategy adds to its training loss once per update
  (`Strategy.loss` / `Strategy.plugin_loss`), or None;
- ``report()``, ``state_dict()`` / ``load_state_dict()``, ``memory()`` (a memory it owns).

Strategies declare which of the routes a plugin may need they honour (`Capabilities.routes`:
``loss_terms``, ``memory_draws``, ``train_batches``, ``model``); `Plugin.needs` says which the
configured plugin needs, and a combination that would silently drop one is refused before the
run starts.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import torch
from pydantic import BaseModel

from clbench.data.stream import Batch
from clbench.scenario.plan import PhasePart, ScenarioPlan
from clbench.strategy.loop import LoopState
from clbench.strategy.spec import PluginSpec

if TYPE_CHECKING:
    from clbench.strategy.base import Strategy, StrategyContext


class Plugin(PluginSpec):
    """Base class of plugins; every hook is optional (the defaults change nothing). Its spec
    (``Config``, summary, `check_run`): `PluginSpec`."""

    def __init__(self, config: BaseModel) -> None:
        self.config = config

    def needs(self, strategy: Strategy) -> frozenset[str]:
        """The strategy routes (`ROUTES`) this configured plugin relies on over ``strategy``."""
        return frozenset()

    def problems_with(self, plan: ScenarioPlan, strategy: Strategy) -> list[str]:
        """Why this plugin cannot run over ``strategy`` on ``plan``; [] if it can."""
        missing = sorted(self.needs(strategy) - strategy.capabilities.routes)
        if not missing:
            return []
        return [
            f"it needs the strategy's {', '.join(missing)}, which {strategy.registered_name!r} "
            "does not route through the strategy API (its effect would silently be lost)"
        ]

    def setup(self, ctx: StrategyContext, strategy: Strategy) -> None:
        self.ctx = ctx

    def phase_batches(
        self,
        parts: Sequence[PhasePart],
        batch_size: int,
        generator: torch.Generator,
        drop_last: bool,
        batches: Any,
    ) -> Any:
        return batches

    def before_phase(self, loop: LoopState) -> None:
        """After the strategy's `before_phase`."""

    def after_phase(self, loop: LoopState) -> None:
        """After the strategy's `after_phase`, before the boundary evaluation."""

    def before_update(self, batch: Batch, loop: LoopState) -> None:
        """Before the strategy observes ``batch`` (already through `train_batch`)."""

    def after_update(self, batch: Batch, loss: torch.Tensor, loop: LoopState) -> None:
        """After the strategy's update on ``batch``."""

    def train_batch(self, batch: Batch) -> Batch:
        return batch

    def memory_draw(self, memory: Any, n: int, generator: torch.Generator) -> torch.Tensor | None:
        return None

    def loss_term(self, logits: torch.Tensor, batch: Batch) -> torch.Tensor | None:
        return None

    def memory(self) -> Any:
        """A memory this plugin owns (counted in the run's budget), or None."""
        return None

    def report(self) -> dict[str, Any]:
        return {}

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what `state_dict` returned."""


class PluginChain:
    """The configured plugins in order; how the engine and strategies call their hooks."""

    def __init__(self, plugins: Sequence[Plugin] = ()) -> None:
        self.plugins = list(plugins)

    def __iter__(self):
        return iter(self.plugins)

    def __len__(self) -> int:
        return len(self.plugins)

    def phase_batches(
        self,
        parts: Sequence[PhasePart],
        batch_size: int,
        generator: torch.Generator,
        drop_last: bool,
        batches: Any,
    ) -> Any:
        for p in self.plugins:
            batches = p.phase_batches(parts, batch_size, generator, drop_last, batches)
        return batches

    def train_batch(self, batch: Batch) -> Batch:
        for p in self.plugins:
            batch = p.train_batch(batch)
        return batch

    def memory_draw(self, memory: Any, n: int, generator: torch.Generator) -> torch.Tensor:
        for p in self.plugins:
            drawn = p.memory_draw(memory, n, generator)
            if drawn is not None:
                return drawn
        return memory.sample(n, generator)

    def loss_term(self, logits: torch.Tensor, batch: Batch) -> torch.Tensor | None:
        total = None
        for p in self.plugins:
            term = p.loss_term(logits, batch)
            if term is not None:
                total = term if total is None else total + term
        return total
