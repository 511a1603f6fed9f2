"""Online streams: another scenario's phases cut into small incoming batches, one phase each.

``online`` builds the plan of any scenario (``of``), shuffles the samples of each of its phases
(seeded; ``shuffle: false`` keeps the plan's order) and cuts them into consecutive phases of
``phase_size`` samples, the last one of each inner phase taking what is left: every sample once,
none dropped. This is Avalanche's ``split_online_stream`` (avalanche-lib 0.6,
avalanche/benchmarks/scenarios/online.py, ``FixedSizeExperienceSplitter``: shuffle, then fixed-size
sub-experiences of each experience, ``drop_last`` false) over a clbench plan.

With ``train.batch_size`` equal to ``phase_size`` a phase is one incoming batch: ``train.epochs``
is then the number of updates made on it before the next batch arrives (the online-CL
"iterations per incoming batch": Si-Blurry's ``online_iter``,
moonjunyyy/Si-Blurry@c4024ce:methods/er_baseline.py L35-39; i-Blurry counts ``online_iter``
updates per *sample*, i.e. ``online_iter · phase_size`` per batch,
naver-ai/i-Blurry@4446d95:methods/er_baseline.py L96-100), and the first of them sees the batch
unseen, which is where ``eval.online_accuracy`` measures. A smaller ``train.batch_size`` makes
several updates per phase.

Every phase keeps the distribution it was cut from as its ``mix``: the inner phase's own mix
where it has one (a generated stream), else the inner phase's task shares. The inner tasks are
kept, renumbered by first appearance in the cut stream when a cut reorders it (an inner phase
that holds several tasks, e.g. ``blurry``), so the seen tasks stay a prefix of the task ids. A
phase's current task is the inner phase's, once that task has appeared; before, the task with
the most samples in the phase.

Strategies get ``before_phase``/``after_phase`` at every incoming batch, as Avalanche's online
experiences trigger its experience hooks; the stream's own boundaries are not announced.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, ClassVar

import numpy as np
from pydantic import Field

from clbench.registry import SCENARIOS
from clbench.scenario.plan import Phase, PhasePart
from clbench.scenarios._class_streams import focus_task
from clbench.scenarios._common import ScenarioOf, make_plan, seeded_rng

if TYPE_CHECKING:
    from clbench.scenario.base import PlanData
    from clbench.scenario.plan import ScenarioPlan

_SHUFFLE_STREAM = 30  # `seeded_rng` stream (see scenarios._common.seeded_rng)


def cut_phases(
    plan: ScenarioPlan, phase_size: int, rng: np.random.Generator | None
) -> list[tuple[int, np.ndarray, np.ndarray]]:
    """(inner phase, indices, task ids) of each cut phase, in stream order; ``rng`` shuffles
    each inner phase's samples first (``None``: the plan's order)."""
    cut = []
    for k, phase in enumerate(plan.phases):
        index = np.concatenate([p.indices for p in phase.parts])
        task = np.concatenate([np.full(len(p.indices), p.task) for p in phase.parts])
        if rng is not None:
            order = rng.permutation(len(index))
            index, task = index[order], task[order]
        for start in range(0, len(index), phase_size):
            cut.append((k, index[start : start + phase_size], task[start : start + phase_size]))
    return cut


def first_appearance(cut: list[tuple[int, np.ndarray, np.ndarray]], n_tasks: int) -> np.ndarray:
    """``new[old]``: task ids renumbered by first appearance in the cut stream (ties, and tasks
    that never appear, in their old order)."""
    first = np.full(n_tasks, len(cut))
    for i, (_, _, task) in enumerate(reversed(cut)):
        first[np.unique(task)] = len(cut) - 1 - i
    order = np.lexsort((np.arange(n_tasks), first))  # old ids by first appearance
    new = np.empty(n_tasks, dtype=np.int64)
    new[order] = np.arange(n_tasks)
    return new


@SCENARIOS.register("online")
class Online(ScenarioOf):
    """Another scenario as an online stream: its phases cut into small incoming batches."""

    summary: ClassVar[str] = (
        "Online stream: another scenario's (`of`) phases shuffled and cut into phases of "
        "`phase_size` samples (one incoming batch each), every sample once."
    )

    class Config(ScenarioOf.Config):
        phase_size: int = Field(
            10,
            ge=1,
            description="Samples per incoming batch, i.e. per phase (online CL: 10); set "
            "train.batch_size to it for one update per incoming batch.",
        )
        shuffle: bool = Field(
            True, description="Shuffle each inner phase's samples (seeded) before cutting it."
        )

    def build(self, dataset: PlanData, seed: int) -> ScenarioPlan:
        """The inner plan, each phase shuffled and cut; tasks renumbered by first appearance."""
        cfg = self.config
        inner = self.inner.build(dataset, seed)
        rng = seeded_rng(seed, _SHUFFLE_STREAM) if cfg.shuffle else None
        cut = cut_phases(inner, cfg.phase_size, rng)
        new = first_appearance(cut, inner.num_tasks)
        tasks = sorted(
            (dataclasses.replace(t, id=int(new[t.id])) for t in inner.tasks), key=lambda t: t.id
        )
        inner_mix = inner.mix_matrix()
        mixes = np.zeros_like(inner_mix)
        mixes[:, new] = inner_mix  # columns by the new task ids
        phases, seen = [], -1
        for k, index, old in cut:
            task = new[old]
            parts = tuple(PhasePart(int(t), np.sort(index[task == t])) for t in np.unique(task))
            seen = max(seen, int(task.max()))
            current = int(new[inner.phases[k].current_task])
            if current > seen:  # the inner phase's task has not arrived yet
                current = focus_task({p.task: len(p.indices) for p in parts})
            phases.append(Phase(parts=parts, current_task=current, mix=tuple(mixes[k].tolist())))
        return make_plan(self, dataset, tasks, inner.num_outputs, phases=phases)
