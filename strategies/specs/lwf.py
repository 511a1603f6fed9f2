"""LwF's spec: parameters with their sources (implementation: `lwf.py`)."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from clbench.registry import STRATEGIES
from clbench.scenario.plan import ScenarioPlan
from clbench.strategy.spec import SpecPlan, StrategySpec

_AVALANCHE = "ContinualAI/avalanche@b34abe5c93ad"  # v0.6.0, the version the adapter runs
_MAMMOTH = "aimagelab/mammoth@e75a491c69fd"


@STRATEGIES.spec("lwf", "clbench.strategies.lwf:LearningWithoutForgetting")
class LearningWithoutForgettingSpec(StrategySpec):
    summary = "LwF: distil the phase-start model's old-class outputs on the new data (no memory)"

    class Config(StrategySpec.Config):
        alpha: float = Field(
            1.0,
            ge=0,
            description="Weight of the distillation term (the paper's λ_o = 1; Avalanche's "
            f"default, {_AVALANCHE}:avalanche/training/plugins/lwf.py L13); 0 makes it naive",
        )
        temperature: float = Field(
            2.0,
            gt=0,
            description="T of the softened outputs (the paper's T = 2; Avalanche's default, and "
            f"Mammoth's softmax_temp default, {_MAMMOTH}:models/lwf.py L31-32, and best values)",
        )

    @classmethod
    def spec_plan(cls, params: Any, plan: ScenarioPlan) -> SpecPlan:
        return SpecPlan()
