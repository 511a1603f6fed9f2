"""Scenario plans: a serialisable description of a stream over one base dataset.

A plan never copies data. It lists tasks (classes, train/test indices into the base dataset, an
input transform and a label mapping) and a schedule of training phases, each a set of
(task, indices) parts. Classic class/domain/task-incremental scenarios have phase k = task k;
rehearsal and recurrence streams are the same structure with phases that mix earlier tasks.
Two plans with the same `content_hash` describe the same data in the same order.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

if TYPE_CHECKING:
    from collections.abc import Sequence

Setting = Literal["class", "domain", "task"]
SETTINGS: tuple[str, ...] = ("class", "domain", "task")


@dataclass(frozen=True)
class InputTransform:
    """A deterministic per-task input transform, applied batched on the device.

    kind: ``identity``; ``permutation`` (pixel permutation drawn from ``seed``); ``rotation`` by
    ``degrees``; ``noise``: additive Gaussian noise of standard deviation ``std`` (in [0, 1] pixel
    units), fixed per sample through a seeded noise bank so evaluations are repeatable.
    """

    kind: Literal["identity", "permutation", "rotation", "noise"] = "identity"
    seed: int | None = None
    degrees: float = 0.0
    std: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "seed": self.seed, "degrees": self.degrees, "std": self.std}


IDENTITY = InputTransform()


@dataclass(frozen=True, eq=False)
class Task:
    """One task (experience/context) of a scenario.

    ``label_map`` maps base-dataset class ids to model targets; ``output_ids`` lists the model
    outputs this task owns (used to mask logits when task ids are given at test time).
    """

    id: int
    classes: tuple[int, ...]
    train_indices: np.ndarray
    test_indices: np.ndarray
    label_map: dict[int, int]
    output_ids: tuple[int, ...]
    transform: InputTransform = IDENTITY
    name: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "classes": list(self.classes),
            "train_indices": self.train_indices.tolist(),
            "test_indices": self.test_indices.tolist(),
            "label_map": {str(k): v for k, v in sorted(self.label_map.items())},
            "output_ids": list(self.output_ids),
            "transform": self.transform.to_dict(),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Task:
        return cls(
            id=int(d["id"]),
            name=d.get("name", ""),
            classes=tuple(d["classes"]),
            train_indices=np.asarray(d["train_indices"], dtype=np.int64),
            test_indices=np.asarray(d["test_indices"], dtype=np.int64),
            label_map={int(k): int(v) for k, v in d["label_map"].items()},
            output_ids=tuple(d["output_ids"]),
            transform=InputTransform(**d["transform"]),
        )


@dataclass(frozen=True, eq=False)
class PhasePart:
    """Samples of one task trained on in one phase (indices into the base train split)."""

    task: int
    indices: np.ndarray


@dataclass(frozen=True, eq=False)
class Phase:
    """One training phase. ``current_task`` is the task the phase introduces (or focuses on).

    ``mix``: the probability of each task (indexed by id) in the distribution a generator drew
    the phase's samples from (boundary-free streams: `clbench.scenarios.gaussian_schedule`,
    `clbench.scenarios.online`); ``None`` when the phase's own counts are its distribution.
    """

    parts: tuple[PhasePart, ...]
    current_task: int
    mix: tuple[float, ...] | None = None

    @property
    def size(self) -> int:
        return int(sum(len(p.indices) for p in self.parts))

    def task_counts(self) -> dict[int, int]:
        counts: dict[int, int] = {}
        for p in self.parts:
            counts[p.task] = counts.get(p.task, 0) + len(p.indices)
        return counts

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "current_task": self.current_task,
            "parts": [{"task": p.task, "indices": p.indices.tolist()} for p in self.parts],
        }
        if self.mix is not None:  # only then: plans without one keep their content hash
            out["mix"] = list(self.mix)
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Phase:
        parts = tuple(
            PhasePart(int(p["task"]), np.asarray(p["indices"], dtype=np.int64)) for p in d["parts"]
        )
        mix = d.get("mix")
        mix = None if mix is None else tuple(float(m) for m in mix)
        return cls(parts=parts, current_task=int(d["current_task"]), mix=mix)


@dataclass(frozen=True, eq=False)
class ScenarioPlan:
    """A whole scenario: tasks, phases and how labels and task ids are exposed."""

    scenario: str
    setting: Setting
    dataset: str
    dataset_checksum: str
    num_outputs: int
    tasks: tuple[Task, ...]
    phases: tuple[Phase, ...]
    params: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.setting not in SETTINGS:
            raise ValueError(f"setting must be one of {SETTINGS}, got {self.setting!r}")
        for i, t in enumerate(self.tasks):
            if t.id != i:
                raise ValueError(f"task ids must be 0..K-1 in order; task {i} has id {t.id}")
        for phase in self.phases:
            for part in phase.parts:
                if not 0 <= part.task < len(self.tasks):
                    raise ValueError(f"phase part refers to unknown task {part.task}")
            if phase.mix is not None and len(phase.mix) != len(self.tasks):
                n = len(self.tasks)
                raise ValueError(f"a phase mix has {len(phase.mix)} entries for {n} tasks")

    @property
    def num_tasks(self) -> int:
        return len(self.tasks)

    @property
    def task_ids_at_test(self) -> bool:
        """Task-incremental: the task id is given at test time (logits are masked)."""
        return self.setting == "task"

    def to_dict(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario,
            "setting": self.setting,
            "dataset": self.dataset,
            "dataset_checksum": self.dataset_checksum,
            "num_outputs": self.num_outputs,
            "params": self.params,
            "tasks": [t.to_dict() for t in self.tasks],
            "phases": [p.to_dict() for p in self.phases],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ScenarioPlan:
        return cls(
            scenario=d["scenario"],
            setting=d["setting"],
            dataset=d["dataset"],
            dataset_checksum=d["dataset_checksum"],
            num_outputs=int(d["num_outputs"]),
            params=d.get("params", {}),
            tasks=tuple(Task.from_dict(t) for t in d["tasks"]),
            phases=tuple(Phase.from_dict(p) for p in d["phases"]),
        )

    @property
    def content_hash(self) -> str:
        """SHA-256 (16 hex chars) of the canonical JSON form: same hash, same data, same order."""
        cached = self.__dict__.get("_hash")
        if cached is None:
            blob = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":")).encode()
            cached = hashlib.sha256(blob).hexdigest()[:16]
            object.__setattr__(self, "_hash", cached)
        return cached

    def count_matrix(self) -> np.ndarray:
        """``N[phase, task]``: number of training samples of each task in each phase."""
        counts = np.zeros((len(self.phases), self.num_tasks), dtype=np.int64)
        for i, phase in enumerate(self.phases):
            for task, n in phase.task_counts().items():
                counts[i, task] += n
        return counts

    def mix_matrix(self) -> np.ndarray:
        """``Q[phase, task]``: the share of each task in the distribution each phase was drawn
        from: its ``mix`` where a generator gave one, else its counts (rows sum to 1)."""
        counts = self.count_matrix().astype(np.float64)
        for i, phase in enumerate(self.phases):
            if phase.mix is not None:
                counts[i] = phase.mix
        totals = counts.sum(axis=1, keepdims=True)
        return np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)

    def describe(self) -> str:
        """A stable, human-readable summary: setting, classes per task and sizes."""
        lines = [
            f"{self.scenario} ({self.setting}-incremental) on {self.dataset} "
            f"[{self.dataset_checksum}], {self.num_tasks} tasks, {len(self.phases)} phases, "
            f"{self.num_outputs} outputs, hash {self.content_hash}"
        ]
        for t in self.tasks:
            transform = (
                "" if t.transform.kind == "identity" else f" transform={t.name or t.transform.kind}"
            )
            lines.append(
                f"  task {t.id}: classes {list(t.classes)} train {len(t.train_indices)} "
                f"test {len(t.test_indices)}{transform}"
            )
        if any(len(p.parts) != 1 or p.parts[0].task != p.current_task for p in self.phases):
            for i, p in enumerate(self.phases):
                counts = ", ".join(f"t{k}:{n}" for k, n in sorted(p.task_counts().items()))
                lines.append(f"  phase {i} (current task {p.current_task}): {counts}")
        return "\n".join(lines)


def sequential_phases(tasks: Sequence[Task]) -> tuple[Phase, ...]:
    """Phase k trains on all training samples of task k (classic incremental streams)."""
    return tuple(Phase((PhasePart(t.id, t.train_indices),), current_task=t.id) for t in tasks)
