"""Joint training: the upper-bound reference of any scenario.

``joint`` builds the plan of another scenario (``of``) and trains on all its tasks at once, in one
phase. The tasks, setting, label mapping and outputs stay those of the inner scenario, and the phase
keeps one part per task, so per-task evaluation and task-id masking work as in the inner stream.
"""

from __future__ import annotations

from typing import Any, ClassVar

from clbench.scenarios._common import PREFIX, NestedScenario, invalid, make_plan
from pydantic import BaseModel, Field, field_validator

from clbench.data.dataset import InMemoryDataset
from clbench.registry import SCENARIOS
from clbench.scenario import ScenarioBuilder
from clbench.scenario.plan import Phase, PhasePart, ScenarioPlan, Setting

_INNER = f"{PREFIX}.of"  # parameter path of the inner scenario, used in its error messages


@SCENARIOS.register("joint")
class Joint(ScenarioBuilder):
    """One phase with every task of the inner scenario (offline, i.i.d. upper bound)."""

    summary: ClassVar[str] = (
        "Joint upper bound: all tasks of another scenario (`of`) trained together in one phase."
    )

    class Config(ScenarioBuilder.Config):
        of: dict[str, Any] = Field(
            default_factory=lambda: {"name": "class_incremental"},
            description="The scenario to make joint, as in a run config: {name: <scenario>, "
            "<its parameters>...}, e.g. {name: class_incremental, n_experiences: 5}. Default: "
            "class_incremental with its defaults. Stored resolved (with the inner defaults).",
        )

        @field_validator("of")
        @classmethod
        def _named(cls, of: dict[str, Any]) -> dict[str, Any]:
            name = of.get("name")
            if not isinstance(name, str):
                raise invalid("needs a 'name' key, e.g. {name: class_incremental}")
            if name == "joint":
                raise invalid("joint of a joint scenario: name the inner scenario directly")
            return of

    def __init__(self, config: BaseModel) -> None:
        self.inner = NestedScenario(config.of, _INNER)
        super().__init__(config.model_copy(update={"of": self.inner.resolved}))

    @property
    def setting(self) -> Setting:
        return self.inner.builder.setting

    def build(self, dataset: InMemoryDataset, seed: int) -> ScenarioPlan:
        """The inner plan's tasks, with every task's training samples in a single phase."""
        inner = self.inner.build(dataset, seed)
        parts = tuple(PhasePart(t.id, t.train_indices) for t in inner.tasks)
        # current_task = the last task: every task counts as seen, whichever way the engine
        # derives seen tasks (tasks <= current_task, or tasks with samples in the phase).
        phase = Phase(parts=parts, current_task=inner.num_tasks - 1)
        return make_plan(self, dataset, inner.tasks, inner.num_outputs, phases=[phase])
