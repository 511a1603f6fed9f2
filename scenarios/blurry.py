"""Blurry task boundaries: i-Blurry-N-M (Koh, Kim, Ha & Choi, "Online Continual Learning on Class
Incremental Blurry Task Configuration with Anytime Inference", ICLR 2022).

The classes are split into N % *disjoint* classes, which appear in one task only, and (100 - N) %
*blurry* classes. Both groups are dealt to the ``n_tasks`` tasks in equal shares: a task's *home*
classes. M % of every task's blurry-class samples leave their home task: they are pooled,
shuffled and dealt to all tasks equally (the home task included). So a blurry class is mostly
learned in its home task and leaks into every other one, earlier ones included, and a disjoint
class is never seen outside its home task.

The i-Blurry authors publish the splits as files (naver-ai/i-Blurry@4446d95:collections/, defaults
5 tasks, N = 50, M = 10 in scripts/clib.sh L7-9); the code that draws them is the sampler of
Si-Blurry's code, which extends i-Blurry (moonjunyyy/Si-Blurry@c4024ce:utils/online_sampler.py
L32-76, the branch without ``varing_NM``). This module follows that sampler, with three
deviations, all so that nothing is silently dropped or order-dependent:

* the official code floors the disjoint and blurry class counts to multiples of ``n_tasks`` and
  drops the classes left over; here a split that does not divide evenly is refused, naming the
  parameter and the values that work;
* the official code takes the *first* M % of a task's blurry samples in dataset order; here they
  are drawn at random (the same thing on a shuffled dataset);
* the official code deals ``len(pool) // n_tasks`` blurred samples to each task and drops the
  remainder; here the remainder goes one sample each to tasks drawn at random.

Si-Blurry's stochastic variant (task sizes and N, M varying per task, the ``varing_NM`` branch)
is not implemented.

Each class is a task (one head over all classes, ``setting: class``, a class's target is its
id's rank), numbered by first appearance: a blurry class that leaks into the first phase is seen
from the start, as it is an *exposed class* in i-Blurry, and the continual evaluator measures
exactly the classes exposed so far. A phase's current task is the class with the most samples in
it, one of its home classes. Phase k holds all samples of task k of the stream: train it online
with ``scenario: {name: online, of: {name: blurry, ...}}`` (`clbench.scenarios.online`), as the
paper does, or for several epochs per phase as an offline blurry stream.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

import numpy as np
from pydantic import Field

from clbench.registry import SCENARIOS
from clbench.scenario import ScenarioBuilder
from clbench.scenarios._class_streams import class_stream_plan
from clbench.scenarios._common import param_error, seeded_rng

if TYPE_CHECKING:
    from clbench.scenario.base import PlanData
    from clbench.scenario.plan import ScenarioPlan, Setting

_ORDER_STREAM = 40  # `seeded_rng` streams (see scenarios._common.seeded_rng)
_BLURRED_STREAM = 41
_DEAL_STREAM = 42


def class_split(n_classes: int, n_tasks: int, disjoint_percent: int) -> tuple[int, int]:
    """(disjoint, blurry) classes per task; raises `ConfigError` unless N % of the classes and
    the rest both split evenly over the tasks (the error names the values that would)."""

    def fits(percent: int, tasks: int) -> bool:
        disjoint, rest = divmod(n_classes * percent, 100)
        return rest == 0 and disjoint % tasks == 0 and (n_classes - disjoint) % tasks == 0

    if fits(disjoint_percent, n_tasks):
        disjoint = n_classes * disjoint_percent // 100
        return disjoint // n_tasks, (n_classes - disjoint) // n_tasks
    never = "classes are never dropped: the disjoint and the blurry classes each split evenly"
    if n_classes % n_tasks:  # then no percentage fits
        divisors = [t for t in range(1, n_classes + 1) if n_classes % t == 0]
        raise param_error("n_tasks", n_tasks, f"a divisor of the {n_classes} classes {divisors}")
    percents = [n for n in range(101) if fits(n, n_tasks)]
    tasks = [t for t in range(1, n_classes + 1) if fits(disjoint_percent, t)]
    other = f", or scenario.n_tasks one of {tasks}" if tasks else ""
    raise param_error(
        "disjoint_percent",
        disjoint_percent,
        f"one of {percents} for {n_tasks} tasks of {n_classes} classes{other} ({never})",
    )


def blurred_deal(
    pools: list[np.ndarray], blurry_percent: int, seed: int
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Each task's blurry-class samples split into (kept at home, received from the pool).

    ``pools[j]``: the samples of task j's blurry classes. ``floor(len · M / 100)`` of them,
    drawn at random, join a pool that is shuffled and dealt to the tasks in equal shares, the
    remainder one each to tasks drawn at random.
    """
    chosen_rng = seeded_rng(seed, _BLURRED_STREAM)
    kept, leaving = [], []
    for pool in pools:
        n_out = len(pool) * blurry_percent // 100
        out = chosen_rng.choice(len(pool), n_out, replace=False)
        mask = np.zeros(len(pool), dtype=bool)
        mask[out] = True
        kept.append(pool[~mask])
        leaving.append(pool[mask])
    deal_rng = seeded_rng(seed, _DEAL_STREAM)
    blurred = deal_rng.permutation(np.concatenate(leaving))
    n_tasks = len(pools)
    shares = np.full(n_tasks, len(blurred) // n_tasks)
    shares[deal_rng.permutation(n_tasks)[: len(blurred) % n_tasks]] += 1
    received = np.split(blurred, np.cumsum(shares)[:-1])
    return kept, received


@SCENARIOS.register("blurry")
class Blurry(ScenarioBuilder):
    """i-Blurry-N-M: disjoint classes in one task, M % of blurry-class samples in every task."""

    summary: ClassVar[str] = (
        "i-Blurry-N-M (Koh et al., ICLR 2022): N % of classes in one task only, M % of the other "
        "classes' samples dealt to every task; one task per class, by first appearance."
    )

    class Config(ScenarioBuilder.Config):
        n_tasks: int = Field(
            5, ge=1, description="Tasks (phases) of the stream (i-Blurry's scripts: 5)."
        )
        disjoint_percent: int = Field(
            50,
            ge=0,
            le=100,
            description="N: percentage of the classes that appear in their home task only "
            "(i-Blurry50-10: 50); the rest are blurry classes.",
        )
        blurry_percent: int = Field(
            10,
            ge=0,
            le=100,
            description="M: percentage of each task's blurry-class samples dealt to all tasks "
            "instead of their home task (i-Blurry50-10: 10).",
        )

    @property
    def setting(self) -> Setting:
        return "class"

    def build(self, dataset: PlanData, seed: int) -> ScenarioPlan:
        """Home classes per task, M % of the blurry samples dealt out, one phase per task."""
        cfg = self.config
        n_classes = dataset.num_classes
        per_task_disjoint, per_task_blurry = class_split(
            n_classes, cfg.n_tasks, cfg.disjoint_percent
        )
        order = seeded_rng(seed, _ORDER_STREAM).permutation(n_classes)
        n_disjoint = per_task_disjoint * cfg.n_tasks
        disjoint = order[:n_disjoint].reshape(cfg.n_tasks, per_task_disjoint)
        blurry = order[n_disjoint:].reshape(cfg.n_tasks, per_task_blurry)
        y_train = np.asarray(dataset.train.y)
        pools = [np.flatnonzero(np.isin(y_train, home)).astype(np.int64) for home in blurry]
        kept, received = blurred_deal(pools, cfg.blurry_percent, seed)
        phases = []
        for j in range(cfg.n_tasks):
            samples = np.concatenate(
                [np.flatnonzero(np.isin(y_train, disjoint[j])), kept[j], received[j]]
            )
            labels = y_train[samples]
            # class position = class id: every class is used, a class's target is its id
            phases.append({int(c): samples[labels == c] for c in np.unique(labels)})
        return class_stream_plan(self, dataset, list(range(n_classes)), phases)
