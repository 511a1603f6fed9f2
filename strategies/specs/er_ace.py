"""ER-ACE's spec: parameters with their sources, summary, capabilities
(implementation: `er_ace.py`)."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from clbench.registry import STRATEGIES
from clbench.scenario.plan import ScenarioPlan
from clbench.strategy.spec import Capabilities, SpecPlan, StrategySpec

_MAMMOTH = "aimagelab/mammoth@e75a491c69fd"


@STRATEGIES.spec("er_ace", "clbench.strategies.er_ace:ExperienceReplayACE")
class ExperienceReplayACESpec(StrategySpec):
    summary = "ER-ACE: replay, the new batch's CE only over its own and unseen classes"
    # class- and task-incremental as Mammoth's COMPATIBILITY: in domain-incremental streams every
    # class is seen from the first phase, so the mask would only drop absent classes' logits
    capabilities = Capabilities(settings=frozenset({"class", "task"}), uses_buffer=True)

    class Config(StrategySpec.Config):
        buffer_size: int = Field(
            200,
            ge=0,
            description=f"Memory slots (seq-cifar10 with 200 in {_MAMMOTH}:models/config/"
            "er_ace.yaml)",
        )
        replay_batch_size: int | None = Field(
            None,
            ge=1,
            description="Replayed samples per update (Mammoth's minibatch_size; default: the "
            "train batch size)",
        )
        task_free: bool = Field(
            True,
            description="Mask and replay from the first update (official code, which forces it; "
            f"{_MAMMOTH}:models/config/er_ace.yaml for seq-cifar10); false: from the second "
            "phase on (Mammoth's parser default)",
        )

    @classmethod
    def spec_plan(cls, params: Any, plan: ScenarioPlan) -> SpecPlan:
        return SpecPlan(params.buffer_size)
