"""Task-incremental streams: the class-incremental split with the task id given at test time.

The split, class order and targets are exactly those of ``class_incremental`` (same parameters,
same seed, same tasks): targets stay global ranks, and each task's ``output_ids`` are the outputs
the engine keeps when it masks logits with the task id, at train and at test time (van de Ven's
"active classes" multi-head). Only the plan's ``setting`` differs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from clbench.registry import SCENARIOS
from clbench.scenarios.class_incremental import ClassIncremental

if TYPE_CHECKING:
    from clbench.scenario.plan import Setting


@SCENARIOS.register("task_incremental")
class TaskIncremental(ClassIncremental):
    """Class-incremental split whose task ids are exposed (logits masked to the task's outputs)."""

    summary: ClassVar[str] = (
        "Task-incremental: disjoint class groups in sequence, task id given (masked heads)."
    )

    @property
    def setting(self) -> Setting:
        return "task"
