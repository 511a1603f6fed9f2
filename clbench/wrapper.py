"""Strategies that wrap a base strategy (modifiers such as View-Batch and FPF).

A modifier composes with any registered strategy instead of copying it: ``base: {name: er, ...}``
names the wrapped strategy and its parameters (validated like a top-level strategy, errors naming
``strategy.base.<field>``), and every hook is delegated to it unless the modifier overrides it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from pydantic import Field, field_validator

from clbench.data.batches import PhaseBatches
from clbench.data.stream import Batch
from clbench.registry import STRATEGIES, validate_params
from clbench.scenario.plan import PhasePart, ScenarioPlan
from clbench.strategy import Strategy, StrategyContext

BASE_FIELD = "strategy.base"


class StrategyWrapper(Strategy):
    """Delegates every hook to ``self.base``; subclasses override what they change."""

    class Config(Strategy.Config):
        base: dict[str, Any] = Field(
            default_factory=lambda: {"name": "er"},
            validate_default=True,
            description="the wrapped strategy and its parameters, e.g. "
            "{name: er, buffer_size: 200}",
        )

        @field_validator("base")
        @classmethod
        def _validate_base(cls, value: dict[str, Any]) -> dict[str, Any]:
            params = dict(value)
            name = params.pop("name", None)
            if not isinstance(name, str):
                raise ValueError("needs a 'name', e.g. {name: er}")
            base_cls = STRATEGIES.get(name, field=f"{BASE_FIELD}.name")
            if issubclass(base_cls.Config, cls):
                raise ValueError(f"{name} cannot wrap itself")
            validated = validate_params(base_cls.Config, params, BASE_FIELD)
            return {"name": name, **validated.model_dump(mode="json")}

    def __init__(self, config: Any) -> None:
        super().__init__(config)
        params = dict(config.base)
        base_cls = STRATEGIES.get(params.pop("name"), field=f"{BASE_FIELD}.name")
        self.base: Strategy = base_cls(base_cls.Config.model_validate(params))

    def problems_with(self, plan: ScenarioPlan) -> list[str]:
        name = self.config.base["name"]
        base = [f"its base {name!r} {p}" for p in self.base.problems_with(plan)]
        return super().problems_with(plan) + base

    def setup(self, ctx: StrategyContext) -> None:
        self.ctx, self.model, self.data = ctx, ctx.model, ctx.data
        self.base.setup(ctx)
        self.optimizer = getattr(self.base, "optimizer", None)
        buffer = getattr(self.base, "buffer", None)
        if buffer is not None:
            self.buffer = buffer  # the run summary reports the memory's size and bytes

    def training_parts(self, phase_index: int) -> Sequence[PhasePart]:
        return self.base.training_parts(phase_index)

    def phase_batches(
        self,
        parts: Sequence[PhasePart],
        batch_size: int,
        generator: torch.Generator,
        drop_last: bool,
    ) -> PhaseBatches:
        return self.base.phase_batches(parts, batch_size, generator, drop_last)

    def before_phase(self, phase_index: int) -> None:
        self.base.before_phase(phase_index)

    def observe(self, batch: Batch) -> torch.Tensor:
        return self.base.observe(batch)

    def after_phase(self, phase_index: int) -> None:
        self.base.after_phase(phase_index)

    def predict(self, x: torch.Tensor, task: torch.Tensor) -> torch.Tensor:
        return self.base.predict(x, task)

    def loss(self, logits: torch.Tensor, batch: Batch) -> torch.Tensor:
        return self.base.loss(logits, batch)

    def step(self, loss: torch.Tensor) -> None:
        self.base.step(loss)

    def report(self) -> dict[str, Any]:
        return {"base": self.config.base["name"], "base_report": self.base.report()}

    def state_dict(self) -> dict[str, Any]:
        return {"base": self.base.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.base.load_state_dict(state["base"])
