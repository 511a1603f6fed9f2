"""GDumb's spec: parameters with their sources, summary, capabilities
(implementation: `gdumb.py`)."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from clbench.registry import STRATEGIES
from clbench.scenario.plan import ScenarioPlan
from clbench.strategy.spec import Capabilities, SpecPlan, StrategySpec

_OFFICIAL = "drimpossible/GDumb@4f412d7fcb13"


@STRATEGIES.spec("gdumb", "clbench.strategies.gdumb:GDumb")
class GDumbSpec(StrategySpec):
    summary = "GDumb: greedy class-balanced memory, model retrained from scratch on it per phase"
    # it trains only on memory batches (make_batch, sample_memory), with `loss` and ctx.model
    capabilities = Capabilities(uses_buffer=True)

    class Config(StrategySpec.Config):
        buffer_size: int = Field(
            200,
            ge=0,
            description="Memory slots k (paper: 200/500/1000 on CIFAR-10, 300-4400 on MNIST; "
            f"{_OFFICIAL}:scripts/replicate.sh)",
        )
        epochs: int = Field(
            128,
            ge=1,
            le=10_000,
            description="Epochs of each retraining over the memory (official: 128 for MNIST, "
            f"256 for CIFAR-10 with CutMix; {_OFFICIAL}:scripts/replicate.sh L4-7, L13-15)",
        )
        max_lr: float = Field(
            0.05, gt=0, description=f"Peak learning rate ({_OFFICIAL}:src/opts.py L24)"
        )
        min_lr: float = Field(
            0.0005, ge=0, description=f"Floor of the cosine schedule ({_OFFICIAL}:src/opts.py L25)"
        )

    @classmethod
    def spec_plan(cls, params: Any, plan: ScenarioPlan) -> SpecPlan:
        return SpecPlan(params.buffer_size)
