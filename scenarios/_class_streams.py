"""Plan assembly shared by the boundary-free streams (private: the registry does not scan ``_``
modules): one task per class, numbered by first appearance, so the seen tasks are always a prefix
``0..k`` and the continual evaluator measures exactly the classes exposed so far (the "exposed
classes" that i-Blurry's anytime inference evaluates; Koh et al., ICLR 2022)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np

from clbench.scenario.plan import Phase, PhasePart, ScenarioPlan, Task
from clbench.scenarios._common import indices_of_classes, make_plan

if TYPE_CHECKING:
    from clbench.scenario import ScenarioBuilder
    from clbench.scenario.base import PlanData


def focus_task(counts: Mapping[int, int]) -> int:
    """The task a phase focuses on: the one with the most samples, ties to the newest (highest
    id). Always a task present in the phase, so it never marks an unseen task as seen."""
    return max(counts, key=lambda task: (counts[task], task))


def class_tasks(
    dataset: PlanData, classes: Sequence[int], phases: Sequence[Iterable[int]]
) -> tuple[dict[int, int], list[Task]]:
    """One task per class position, numbered by first appearance in ``phases`` (each the class
    positions present in a phase; ties within a phase by position): ``({position: task id},
    tasks by id)``. A class's position in ``classes`` is its target and its only output."""
    task_of: dict[int, int] = {}
    for phase in phases:
        for position in sorted(phase):
            task_of.setdefault(position, len(task_of))
    y_train, y_test = np.asarray(dataset.train.y), np.asarray(dataset.test.y)
    names = dataset.class_names
    tasks = [
        Task(
            id=task_of[position],
            name=f"class {names[classes[position]] if names else classes[position]}",
            classes=(classes[position],),
            train_indices=indices_of_classes(y_train, [classes[position]]),
            test_indices=indices_of_classes(y_test, [classes[position]]),
            label_map={classes[position]: position},
            output_ids=(position,),
        )
        for position in sorted(task_of, key=task_of.__getitem__)
    ]
    return task_of, tasks


def class_stream_plan(
    builder: ScenarioBuilder,
    dataset: PlanData,
    classes: Sequence[int],
    phases: Sequence[Mapping[int, np.ndarray]],
    mixes: Sequence[np.ndarray] | None = None,
) -> ScenarioPlan:
    """The plan of a stream given, per phase, each class's training indices.

    ``classes``: base class ids in their order; a class's position in it is its target, so a
    class keeps its output wherever it appears. ``phases[k]`` maps a class position to the
    indices phase k trains on (empty arrays are left out). ``mixes[k]``, when given, is the
    probability of each class position in the distribution phase k was drawn from; it is stored
    as the phase's ``mix``, reordered by task id. Tasks are numbered by first appearance (ties
    within a phase by class position); a phase's current task is its `focus_task`.
    """
    phases = [{c: idx for c, idx in phase.items() if len(idx)} for phase in phases]
    task_of, tasks = class_tasks(dataset, classes, phases)
    order = [task.output_ids[0] for task in tasks]  # class positions by task id
    plan_phases = []
    for k, phase in enumerate(phases):
        if not phase:
            continue
        parts = tuple(
            PhasePart(task_of[c], np.sort(np.asarray(phase[c], dtype=np.int64)))
            for c in sorted(phase, key=task_of.__getitem__)
        )
        mix = None
        if mixes is not None:
            mix = tuple(float(mixes[k][position]) for position in order)
        counts = {part.task: len(part.indices) for part in parts}
        plan_phases.append(Phase(parts=parts, current_task=focus_task(counts), mix=mix))
    return make_plan(builder, dataset, tasks, num_outputs=len(classes), phases=plan_phases)
