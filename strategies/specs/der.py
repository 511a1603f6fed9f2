"""DER and DER++ specs: parameters with their sources (implementation: `der.py`)."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from clbench.registry import STRATEGIES
from clbench.scenario.plan import ScenarioPlan
from clbench.strategy.spec import Capabilities, SpecPlan, StrategySpec

_BEST_ARGS = "aimagelab/mammoth@e75a491c69fd:utils/best_args.py"


@STRATEGIES.spec("der", "clbench.strategies.der:DarkExperienceReplay")
class DarkExperienceReplaySpec(StrategySpec):
    summary = "DER: replay with the logits stored at insertion (MSE), reservoir memory"
    # loss, memory draws, replayed batches and model all go through the strategy API
    capabilities = Capabilities(uses_buffer=True)

    class Config(StrategySpec.Config):
        buffer_size: int = Field(200, ge=0, description="Memory slots (DER paper: 200/500/5120)")
        alpha: float = Field(
            0.3,
            ge=0,
            description=f"α, weight of the logit MSE (Eq. 6); 0.3 for seq-cifar10 at every "
            f"buffer size ({_BEST_ARGS} L644-658)",
        )
        replay_batch_size: int | None = Field(
            None,
            ge=1,
            description="Samples per memory draw (Mammoth's minibatch_size; default: the train "
            f"batch size, as in {_BEST_ARGS} L644-676 for seq-cifar10)",
        )

    @classmethod
    def spec_plan(cls, params: Any, plan: ScenarioPlan) -> SpecPlan:
        return SpecPlan(params.buffer_size, stored_values=plan.num_outputs)


@STRATEGIES.spec("derpp", "clbench.strategies.der:DarkExperienceReplayPlusPlus")
class DarkExperienceReplayPlusPlusSpec(DarkExperienceReplaySpec):
    summary = "DER++: DER plus CE on a second, independent memory batch's labels"

    class Config(DarkExperienceReplaySpec.Config):
        alpha: float = Field(
            0.1,
            ge=0,
            description=f"α, weight of the logit MSE (Eq. 7); 0.1 for seq-cifar10 with 200 slots "
            f"(0.2 with 500; {_BEST_ARGS} L659-670)",
        )
        beta: float = Field(
            0.5,
            ge=0,
            description=f"β, weight of the CE on replayed labels (Eq. 7); 0.5 for seq-cifar10 "
            f"with 200 and 500 slots ({_BEST_ARGS} L659-670); 0 makes it DER",
        )
