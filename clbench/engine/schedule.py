"""When the continual evaluator measures: the ``eval.schedule`` of a run.

``every``: after every ``eval.every`` updates of the ``eval.counter`` (the protocol of De Lange et
al., ICLR 2023, with ``every=1`` their per-update evaluation). ``adaptive``: the stability gap
lives right after a task switch (accuracy on old tasks drops within tens of updates and recovers
over the next tens to hundreds: De Lange et al., "Continual evaluation for lifelong
learning: identifying the stability gap", ICLR 2023), so each phase is evaluated
after each of its first ``dense`` updates, then at spacings that grow geometrically (the k-th
spacing ``min(max_every, round(growth**k))``) and at its last update. Evaluation draws no random
numbers, so a run's training is the same under any schedule.
"""

from __future__ import annotations

from typing import Any


def adaptive_steps(phase_updates: int, dense: int, growth: float, max_every: int) -> list[int]:
    """The updates of a phase (1-based, counted within the phase) ``adaptive`` evaluates after."""
    steps = list(range(1, min(dense, phase_updates) + 1))
    at, k, spacing = len(steps), 1, 1
    while True:
        if spacing < max_every:  # growth >= 1: once capped, the spacing stays max_every, and
            # growth**k is no longer computed (it overflows a float past ~1e308: long phases)
            spacing = min(max_every, max(1, round(growth**k)))
        at += spacing
        if at >= phase_updates:
            break
        steps.append(at)
        k += 1
    if phase_updates > 0 and (not steps or steps[-1] != phase_updates):
        steps.append(phase_updates)
    return steps


class EvalSchedule:
    """Whether to evaluate after the update the loop has just made."""

    def __init__(self, eval_config: Any, updates_per_phase: tuple[int, ...]) -> None:
        self.config = eval_config
        self._adaptive: list[frozenset[int]] = []
        if eval_config.schedule == "adaptive":
            c = eval_config
            self._adaptive = [
                frozenset(adaptive_steps(n, c.dense, c.growth, c.max_every))
                for n in updates_per_phase
            ]

    def due(self, phase: int, step: int, phase_step: int, epoch_batch: int, last: bool) -> bool:
        """After update ``step`` of the run (``phase_step`` of ``phase``, ``epoch_batch`` of the
        epoch); ``last`` marks the phase's last update (always evaluated)."""
        if self._adaptive:
            return phase_step in self._adaptive[phase]
        counter = {"global": step, "per_phase": phase_step, "per_epoch": epoch_batch}
        return counter[self.config.counter] % self.config.every == 0 or last
