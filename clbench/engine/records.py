"""The evaluation record log: one row per (evaluation, evaluated task).

Rows are buffered with their per-task counts still on the device and turned into host values in
one transfer per `flush` (phase end), so continual evaluation never syncs per batch. The frame's
columns and dtypes are the record schema of `clbench.metrics.records`, which every reader of
``records.parquet`` validates against.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import torch

from clbench.metrics.records import COLUMN_DTYPES, REQUIRED_COLUMNS


class RecordLog:
    def __init__(self) -> None:
        self._pending: list[
            tuple[str, int, int, int, list[int], torch.Tensor, torch.Tensor, torch.Tensor]
        ] = []
        self._rows: list[tuple[Any, ...]] = []

    def add(
        self,
        kind: str,
        step: int,
        phase: int,
        current_task: int,
        correct: torch.Tensor,
        loss_sum: torch.Tensor,
        n: torch.Tensor,
        tasks: list[int] | None = None,
    ) -> None:
        """Buffer one evaluation; ``tasks`` defaults to ``0..len(correct)-1``."""
        tasks = list(range(correct.shape[0])) if tasks is None else tasks
        self._pending.append((kind, step, phase, current_task, tasks, correct, loss_sum, n))

    def latest(self) -> tuple[str, int, int, int, list[int], torch.Tensor, torch.Tensor]:
        """The evaluation added last, still buffered (call right after `add`): kind, step,
        phase, current task, tasks, per-task correct counts and sample counts (tensors)."""
        kind, step, phase, current, tasks, correct, _loss, n = self._pending[-1]
        return kind, step, phase, current, tasks, correct, n

    def flush(self) -> None:
        """Move buffered evaluations to host rows (one device->host copy)."""
        if not self._pending:
            return
        correct = torch.cat([p[5] for p in self._pending]).cpu().round().long().tolist()
        loss = torch.cat([p[6].float() for p in self._pending]).cpu().tolist()
        n = torch.cat([p[7].cpu() for p in self._pending]).tolist()
        i = 0
        for kind, step, phase, current, tasks, *_ in self._pending:
            for task in tasks:
                self._rows.append(
                    (step, phase, current, task, kind, n[i], correct[i], loss[i] / n[i])
                )
                i += 1
        self._pending.clear()

    def frame(self) -> pd.DataFrame:
        self.flush()
        frame = pd.DataFrame(self._rows, columns=list(REQUIRED_COLUMNS))
        return frame.astype(COLUMN_DTYPES)

    def state_dict(self) -> dict[str, Any]:
        self.flush()
        return {"rows": list(self._rows)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._pending.clear()
        self._rows = [tuple(r) for r in state["rows"]]
