"""When the continual evaluator measures: the ``eval.schedule`` of a run.

``every``: after every ``eval.every`` updates of the ``eval.counter`` (the protocol of De Lange et
al., ICLR 2023, with ``every=1`` their per-update evaluation). ``adaptive``: the stability gap
lives right after a task switch (accuracy on old tasks drops within tens of updates and recovers
over the next tens to hundreds: De Lange et al., "Continual evaluation for lifelong
learning: identifying the stability gap", ICLR 2023), so each phase is evaluated
after each of its first ``dense`` updates, then at spacings that grow geometrically (the k-th
spacing ``min(max_every, round(growth**k))``) and at its last update. With ``eval.refine`` set,
an evaluation past the dense window at which some seen task's accuracy moved by more than
``refine`` since the previous evaluation restarts the spacings at 1 (``round(growth**0)``), so a
curve that keeps moving is followed closely and a flat one sparsely. Evaluation draws no random
numbers, so a run's training is the same under any schedule.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch


def spacing(k: int, growth: float, max_every: int) -> int:
    """The k-th spacing of ``adaptive``: ``min(max_every, round(growth**k))``, at least 1."""
    if k * math.log(growth) > math.log(max_every) + 1:  # past max_every: growth**k would
        return max_every  # overflow a float on long phases (k ~ 1,750 at growth 1.5)
    return min(max_every, max(1, round(growth**k)))


def next_due(at: int, k: int, dense: int, growth: float, max_every: int) -> tuple[int, int]:
    """After an evaluation at phase step ``at`` (0: the phase start) with ``k`` the exponent of
    the next spacing: the next phase step ``adaptive`` evaluates after, and the exponent after it.
    Inside the dense window every update; past it the k-th spacing."""
    if at < dense:
        return at + 1, k
    return at + spacing(k, growth, max_every), k + 1


def adaptive_steps(phase_updates: int, dense: int, growth: float, max_every: int) -> list[int]:
    """The updates of a phase (1-based, counted within the phase) ``adaptive`` evaluates after
    when ``refine`` is off."""
    steps = []
    at, k = next_due(0, 1, dense, growth, max_every)
    while at < phase_updates:
        steps.append(at)
        at, k = next_due(at, k, dense, growth, max_every)
    if phase_updates > 0:
        steps.append(phase_updates)  # the phase end, always
    return steps


class EvalSchedule:
    """Whether to evaluate after the update the loop has just made.

    The loop asks `due` after every update and tells `evaluated` after every continual
    evaluation (with the seen tasks' accuracies when `watches_results`). ``adaptive`` keeps its
    position in the phase (`state_dict`), so a resumed run evaluates where the uninterrupted one
    would have.
    """

    def __init__(self, eval_config: Any) -> None:
        self.config = eval_config
        self.adaptive = eval_config.schedule == "adaptive"
        self.refine: float | None = eval_config.refine if self.adaptive else None
        self._phase = -1  # the phase the state below belongs to
        self._next = 0  # phase_step of the next due evaluation
        self._k = 1  # exponent of the next spacing
        self._previous: torch.Tensor | None = None  # accuracies at the previous evaluation

    @property
    def watches_results(self) -> bool:
        """Whether `evaluated` needs the accuracies (a host sync per evaluation)."""
        return self.refine is not None

    def due(self, phase: int, step: int, phase_step: int, epoch_batch: int, last: bool) -> bool:
        """After update ``step`` of the run (``phase_step`` of ``phase``, ``epoch_batch`` of the
        epoch); ``last`` marks the phase's last update (always evaluated)."""
        if self.adaptive:
            if phase != self._phase:
                self._start(phase)
            return last or phase_step == self._next
        counter = {"global": step, "per_phase": phase_step, "per_epoch": epoch_batch}
        return counter[self.config.counter] % self.config.every == 0 or last

    def evaluated(self, phase_step: int, accuracies: torch.Tensor | None = None) -> None:
        """The evaluation after ``phase_step`` was made (``accuracies``: of tasks 0..seen)."""
        if not self.adaptive:
            return
        moved = False
        if self.refine is not None and accuracies is not None:
            current = accuracies.detach().float().cpu()
            if self._previous is not None and phase_step > self.config.dense:
                n = min(len(current), len(self._previous))  # new tasks join at phase starts
                moved = bool((current[:n] - self._previous[:n]).abs().max() > self.refine)
            self._previous = current
        if moved:
            self._k = 0
        self._advance(phase_step)

    def _start(self, phase: int) -> None:
        self._phase, self._k = phase, 1
        self._advance(0)

    def _advance(self, at: int) -> None:
        c = self.config
        self._next, self._k = next_due(at, self._k, c.dense, c.growth, c.max_every)

    def resume_at(self, phase: int, phase_step: int) -> None:
        """The state at ``phase_step`` of ``phase`` without `refine` (checkpoints made before
        the schedule kept a state)."""
        self._start(phase)
        while self._next <= phase_step:
            self._advance(self._next)

    def state_dict(self) -> dict[str, Any]:
        return {"phase": self._phase, "next": self._next, "k": self._k, "prev": self._previous}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._phase, self._next, self._k = state["phase"], state["next"], state["k"]
        self._previous = state["prev"]
