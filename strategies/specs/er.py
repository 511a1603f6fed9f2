"""Experience replay's spec: parameters, summary, capabilities (implementation: `er.py`)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from clbench.registry import STRATEGIES
from clbench.scenario.plan import ScenarioPlan
from clbench.strategy.spec import Capabilities, SpecPlan, StrategySpec


@STRATEGIES.spec("er", "clbench.strategies.er:ExperienceReplay")
class ExperienceReplaySpec(StrategySpec):
    summary = "Experience replay with a reservoir or class-balanced index memory"
    capabilities = Capabilities(uses_buffer=True)

    class Config(StrategySpec.Config):
        buffer_size: int = Field(200, ge=0, description="Memory slots (Mammoth/DER ER: 200 or 500)")
        buffer: Literal["reservoir", "class_balanced"] = Field(
            "reservoir",
            description="reservoir: updated every batch (Chaudhry 2019); class_balanced: refilled "
            "at each phase end with an equal share per class (stability-gap paper's ER)",
        )
        replay_batch_size: int | None = Field(
            None,
            ge=1,
            description="Replayed samples per update (default: the train batch size, as in "
            "the official code)",
        )
        new_weight: float | None = Field(
            None,
            ge=0,
            le=1,
            description="w in w·CE(new) + (1−w)·CE(replay) (`Lw_new`; 0.3 for Split-MNIST in the "
            "stability-gap configs); None: one CE over the concatenated batch",
        )

    @classmethod
    def spec_plan(cls, params: Any, plan: ScenarioPlan) -> SpecPlan:
        return SpecPlan(params.buffer_size)
