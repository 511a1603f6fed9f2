"""EWC and online EWC specs: parameters with their sources (implementation: `ewc.py`)."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from clbench.registry import STRATEGIES
from clbench.scenario.plan import ScenarioPlan
from clbench.strategy.spec import SpecPlan, StrategySpec

_BEST_ARGS = "aimagelab/mammoth@e75a491c69fd:utils/best_args.py"


@STRATEGIES.spec("ewc", "clbench.strategies.ewc:ElasticWeightConsolidation")
class ElasticWeightConsolidationSpec(StrategySpec):
    summary = "EWC: one Fisher-weighted quadratic penalty per earlier phase"

    class Config(StrategySpec.Config):
        ewc_lambda: float = Field(
            10.0,
            ge=0,
            description="λ of the penalty λ·Σ F(θ−θ*)² (the paper's λ/2); 10 as Mammoth's best "
            f"online EWC on seq-cifar10 ({_BEST_ARGS} L502-506; its Fisher is per-sample too); "
            "0 makes it naive. Large λ·lr diverges under SGD: see docs/methods/ewc.md",
        )
        fisher_batch_size: int | None = Field(
            None,
            ge=1,
            description="Samples per batch of per-sample gradients when the Fisher is computed "
            "(memory: this many copies of the gradient; default: the train batch size, as "
            "Avalanche's train_mb_size); it does not change the result",
        )

    @classmethod
    def spec_plan(cls, params: Any, plan: ScenarioPlan) -> SpecPlan:
        return SpecPlan()


@STRATEGIES.spec("online_ewc", "clbench.strategies.ewc:OnlineElasticWeightConsolidation")
class OnlineElasticWeightConsolidationSpec(ElasticWeightConsolidationSpec):
    summary = (
        "Online EWC: one penalty, its Fisher a decayed running sum, anchored at the last phase"
    )

    class Config(ElasticWeightConsolidationSpec.Config):
        decay_factor: float = Field(
            1.0,
            ge=0,
            le=1,
            description="γ in F ← γ·F + F_new (Avalanche's decay_factor); 1.0 as Mammoth's "
            f"gamma on seq-cifar10 and in every other ewc_on entry ({_BEST_ARGS} L502-506)",
        )
