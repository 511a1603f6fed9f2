"""SI's spec: parameters with their sources (implementation: `si.py`)."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from clbench.registry import STRATEGIES
from clbench.scenario.plan import ScenarioPlan
from clbench.strategy.spec import SpecPlan, StrategySpec

_PATHINT = "ganguli-lab/pathint@86c5e07c5603"
_BEST_ARGS = "aimagelab/mammoth@e75a491c69fd:utils/best_args.py"


@STRATEGIES.spec("si", "clbench.strategies.si:SynapticIntelligence")
class SynapticIntelligenceSpec(StrategySpec):
    summary = "SI: quadratic penalty weighted by each parameter's path-integral contribution"

    class Config(StrategySpec.Config):
        c: float = Field(
            0.5,
            ge=0,
            description=f"c, weight of the surrogate penalty; 0.5 as Mammoth's best SI on "
            f"seq-cifar10 ({_BEST_ARGS} L507-511; the official split-MNIST run used 1.0, "
            f"{_PATHINT}:fig_split_mnist/Figure split MNIST.ipynb); 0 makes it naive",
        )
        xi: float = Field(
            1.0,
            gt=0,
            description=f"ξ, damping of the importance's denominator (Δθ)² + ξ; 1.0 as Mammoth's "
            f"best SI on seq-cifar10 with SGD ({_BEST_ARGS} L507-511). The official run's 1e-3 "
            "goes with Adam; under SGD it can make Ω, the penalty's curvature, large enough to "
            "diverge",
        )

    @classmethod
    def spec_plan(cls, params: Any, plan: ScenarioPlan) -> SpecPlan:
        return SpecPlan()
