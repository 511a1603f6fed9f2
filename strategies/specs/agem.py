"""A-GEM's spec: parameters with their sources, summary, capabilities
(implementation: `agem.py`)."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from clbench.registry import STRATEGIES
from clbench.scenario.plan import ScenarioPlan
from clbench.strategy.spec import Capabilities, SpecPlan, StrategySpec

_AVALANCHE = "avalanche-lib 0.6.0 avalanche/training/plugins/agem.py"


@STRATEGIES.spec("agem", "clbench.strategies.agem:AveragedGEM")
class AveragedGEMSpec(StrategySpec):
    summary = "A-GEM: project the gradient when it conflicts with a memory batch's (Eq. 11)"
    # loss, memory draws, replayed batches and model all go through the strategy API
    capabilities = Capabilities(uses_buffer=True)

    class Config(StrategySpec.Config):
        patterns_per_phase: int = Field(
            256,
            ge=0,
            description="Samples of each phase stored at its end (Avalanche's "
            f"patterns_per_experience, {_AVALANCHE} L108-143, which has no default; 256 as "
            "clbench's avl_agem)",
        )
        sample_size: int = Field(
            64,
            ge=1,
            description="Memory samples per reference gradient (Mammoth's minibatch_size; "
            "Avalanche's sample_size, 64 by default in avalanche-lib 0.6.0 "
            "avalanche/training/supervised/strategy_wrappers.py L916)",
        )

    @classmethod
    def spec_plan(cls, params: Any, plan: ScenarioPlan) -> SpecPlan:
        return SpecPlan(params.patterns_per_phase * len(plan.phases))
