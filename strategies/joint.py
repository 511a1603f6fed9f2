"""Joint (cumulative) training: each phase trains on all data of the phases so far (upper bound).

Unlike a one-phase joint scenario, this keeps the stream's phase structure, so the continual
evaluator still records a curve per task and the final accuracy is the usual upper reference.
"""

from __future__ import annotations

from collections.abc import Sequence

from clbench.registry import STRATEGIES
from clbench.scenario.plan import PhasePart
from clbench.strategies.naive import Naive
from clbench.strategies.specs.joint import JointSpec


@STRATEGIES.register("joint")
class Joint(JointSpec, Naive):
    def training_parts(self, phase_index: int) -> Sequence[PhasePart]:
        return [part for phase in self.ctx.plan.phases[: phase_index + 1] for part in phase.parts]
