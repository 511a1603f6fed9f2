"""Joint training: the upper-bound reference of any scenario.

``joint`` builds the plan of another scenario (``of``) and trains on all its tasks at once, in one
phase. The tasks, setting, label mapping and outputs stay those of the inner scenario, and the phase
keeps one part per task, so per-task evaluation and task-id masking work as in the inner stream.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import field_validator

from clbench.registry import SCENARIOS
from clbench.scenario.plan import Phase, PhasePart, ScenarioPlan
from clbench.scenarios._common import ScenarioOf, invalid, make_plan

if TYPE_CHECKING:
    from clbench.scenario.base import PlanData


@SCENARIOS.register("joint")
class Joint(ScenarioOf):
    """One phase with every task of the inner scenario (offline, i.i.d. upper bound)."""

    summary: ClassVar[str] = (
        "Joint upper bound: all tasks of another scenario (`of`) trained together in one phase."
    )

    class Config(ScenarioOf.Config):
        @field_validator("of")
        @classmethod
        def _not_joint(cls, of: dict[str, Any]) -> dict[str, Any]:
            if of.get("name") == "joint":
                raise invalid("joint of a joint scenario: name the inner scenario directly")
            return of

    def build(self, dataset: PlanData, seed: int) -> ScenarioPlan:
        """The inner plan's tasks, with every task's training samples in a single phase."""
        inner = self.inner.build(dataset, seed)
        parts = tuple(PhasePart(t.id, t.train_indices) for t in inner.tasks)
        # current_task = the last task: every task counts as seen, whichever way the engine
        # derives seen tasks (tasks <= current_task, or tasks with samples in the phase).
        phase = Phase(parts=parts, current_task=inner.num_tasks - 1)
        return make_plan(self, dataset, inner.tasks, inner.num_outputs, phases=[phase])
