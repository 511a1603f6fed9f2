"""Model selection for HyperInterval: a held-out validation split and the best-iterate copy.

The official code (gmum/HyperInterval@d42305d, ``train_single_task`` in
`train_non_forced_scenario.py`) checks the current task every 10 iterations and keeps a deepcopy
of the hypernetwork with the best *validation accuracy* (named ``val_loss``); the nested variant
(`train_nested_scenario.py`) keeps the lowest *training loss* among checks made after the ε
warm-up.
The best copy replaces the live networks at the end of the task. clbench datasets have no
validation split, so the validation samples are held out of each task's training data, as the
official hypnettorch handlers do (``no_of_validation_samples`` 500 / 1000 in
`Utils/prepare_non_forced_scenario_params.py`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from clbench.errors import ConfigError
from clbench.scenario.plan import PhasePart, ScenarioPlan


def check_val_size(plan: ScenarioPlan, size: int) -> None:
    """Raise `ConfigError` unless every task keeps some training samples after the hold-out."""
    for task in plan.tasks:
        n = len(task.train_indices)
        if size >= n:
            raise ConfigError(
                "strategy.val_size", size, f"fewer than the {n} training samples of task {task.id}"
            )


def heldout_indices(plan: ScenarioPlan, size: int, seed: int) -> dict[int, np.ndarray]:
    """Per task, ``size`` training indices drawn without replacement (seeded, no shared RNG)."""
    check_val_size(plan, size)
    rng = np.random.default_rng(seed)
    return {
        task.id: np.sort(rng.permutation(np.asarray(task.train_indices))[:size])
        for task in plan.tasks
    }


def without_heldout(
    parts: Sequence[PhasePart], heldout: dict[int, np.ndarray]
) -> tuple[PhasePart, ...]:
    """The phase parts minus each task's held-out samples (order otherwise kept)."""
    return tuple(
        PhasePart(p.task, p.indices[~np.isin(p.indices, heldout[p.task])])
        if p.task in heldout
        else p
        for p in parts
    )


class BestCopy:
    """The best iterate of the current phase: score (higher is better), iteration and tensors."""

    def __init__(self) -> None:
        self.score: float | None = None
        self.iteration: int | None = None
        self.tensors: dict[str, Any] | None = None

    def offer(self, score: float, iteration: int, tensors: dict[str, Any]) -> bool:
        """Keep ``tensors`` (cloned) if ``score`` beats the best so far (ties keep the earlier)."""
        if self.score is not None and score <= self.score:
            return False
        self.score, self.iteration = score, iteration
        self.tensors = _clone(tensors)
        return True

    def state_dict(self) -> dict[str, Any]:
        return {"score": self.score, "iteration": self.iteration, "tensors": self.tensors}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.score, self.iteration = state["score"], state["iteration"]
        self.tensors = _clone(state["tensors"])


def _clone(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.detach().clone()
    if isinstance(value, dict):
        return {k: _clone(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_clone(v) for v in value)
    return value
