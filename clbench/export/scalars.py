"""The one mapping from a run's evaluations, losses and phases to tracker scalars.

Used live (`clbench.export.live`, from the engine's observer events) and after the fact
(`clbench.export.run_log`, from a run folder's files), so both write the same tags at the same
update steps. Per step:

* ``acc/task_<t>`` and ``acc/mean_seen``: continual evaluation (the fixed subsets) of each seen
  task and their mean; the pre-update rows of phases >= 1 repeat the previous evaluation's
  weights and are left out, as every metric leaves them out (`clbench.metrics.records`);
* ``acc_full/task_<t>`` and ``acc_full/mean_seen``: the full test sets at each phase end (the
  mean over the seen tasks only, without a forward-transfer task); ``init`` rows are left out;
* ``train/loss``: every update's training loss;
* ``phase/end``: the phase index, at the last update of that phase.

Once per run: ``metric/<name>`` for each scalar metric of the summary, and the hyperparameters
(the identifying config, the seed and the tags).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from clbench.engine.observer import Evaluation
from clbench.metrics.records import record_arrays
from clbench.results.reader import flat_config, identifying_config

Scalar = bool | int | float | str
Steps = dict[int, dict[str, float]]  # update step -> {tag: value}

LOSS = "train/loss"
PHASE_END = "phase/end"
_PREFIX = {"subset": "acc", "full": "acc_full"}


@dataclass
class RunMeta:
    """What identifies a run to a tracker (its name, config, hyperparameters and group)."""

    run_id: str
    config: dict[str, Any]  # the resolved config (config.yaml)
    hparams: dict[str, Scalar] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    setting: str = ""  # equal for the seeds of one setting (a W&B group)
    num_tasks: int = 0


def run_meta(
    run_id: str, config: dict[str, Any], tags: Mapping[str, Any], num_tasks: int
) -> RunMeta:
    identifying = identifying_config(config)
    str_tags = {str(k): str(v) for k, v in tags.items()}
    hparams: dict[str, Scalar] = {k: _scalar(v) for k, v in identifying.items()}
    hparams["seed"] = _scalar(flat_config(config).get("seed"))
    hparams.update({f"tags.{k}": v for k, v in str_tags.items()})
    return RunMeta(
        run_id=run_id,
        config=config,
        hparams=hparams,
        tags=str_tags,
        setting=_setting_name(config, identifying),
        num_tasks=num_tasks,
    )


def scalar_tags(num_tasks: int) -> list[str]:
    """Every per-step tag a run of ``num_tasks`` tasks can log, in a fixed order (CSV columns)."""
    tasks = range(num_tasks)
    return [
        PHASE_END,
        LOSS,
        "acc/mean_seen",
        *(f"acc/task_{t}" for t in tasks),
        "acc_full/mean_seen",
        *(f"acc_full/task_{t}" for t in tasks),
    ]


def evaluation_scalars(evaluation: Evaluation) -> dict[str, float]:
    """The tags of one evaluation (empty for ``init`` and pre-update evaluations)."""
    prefix = _PREFIX.get(evaluation.kind)
    if prefix is None or evaluation.preupdate:
        return {}
    values = {
        f"{prefix}/task_{t}": float(a)
        for t, a in zip(evaluation.tasks, evaluation.accuracies, strict=True)
    }
    mean = evaluation.mean_seen()
    if mean is not None:
        values[f"{prefix}/mean_seen"] = float(mean)
    return values


def loss_scalars(loss: float) -> dict[str, float]:
    return {LOSS: float(loss)}


def phase_end_scalars(phase: int) -> dict[str, float]:
    return {PHASE_END: float(phase)}


def summary_metrics(summary: Mapping[str, Any]) -> dict[str, float]:
    """``metric/<name>`` for each scalar metric of a summary (undefined ones left out)."""
    return {
        f"metric/{name}": float(value)
        for name, value in (summary.get("metrics") or {}).items()
        if isinstance(value, int | float) and not isinstance(value, bool)
    }


def evaluations_from_records(records: pd.DataFrame) -> list[Evaluation]:
    """The evaluations a record frame holds, as the engine's observers received them.

    Raises ValueError for records that break the schema (`clbench.metrics.records`)."""
    if records.empty:
        return []
    ra = record_arrays(records)  # validates
    seen_upto = [max(ra.seen_tasks(p), default=-1) for p in range(ra.n_phases)]
    kind = records["kind"].to_numpy()
    step = records["step"].to_numpy().astype(np.int64)
    phase = records["phase"].to_numpy().astype(np.int64)
    current = records["current_task"].to_numpy().astype(np.int64)
    task = records["task"].to_numpy().astype(np.int64)
    acc = records["correct"].to_numpy() / records["n"].to_numpy()
    evaluations = []
    groups = records.groupby(["kind", "phase", "step"], sort=False).indices
    for rows in groups.values():
        i = int(rows[0])
        k, p, s = str(kind[i]), int(phase[i]), int(step[i])
        tasks = tuple(int(t) for t in task[rows])
        evaluations.append(
            Evaluation(
                kind=k,
                step=s,
                phase=p,
                current_task=int(current[i]),
                tasks=tasks,
                accuracies=tuple(float(a) for a in acc[rows]),
                seen_upto=max(tasks) if k == "subset" else seen_upto[p],
                preupdate=k == "subset" and p >= 1 and s == int(ra.phase_start[p]),
            )
        )
    return evaluations


def history_steps(
    records: pd.DataFrame,
    losses: Iterable[tuple[int, float]],
    phase_end_steps: Sequence[int],
) -> Steps:
    """Every tag of a run's history by step: its records, its training losses as (step, loss)
    and the last update of each finished phase. Steps ascending."""
    steps: Steps = {}

    def put(step: int, values: Mapping[str, float]) -> None:
        if values:
            steps.setdefault(int(step), {}).update(values)

    for evaluation in evaluations_from_records(records):
        put(evaluation.step, evaluation_scalars(evaluation))
    for step, loss in losses:
        put(step, loss_scalars(loss))
    for phase, step in enumerate(phase_end_steps):
        put(step, phase_end_scalars(phase))
    return dict(sorted(steps.items()))


def _scalar(value: Any) -> Scalar:
    return value if isinstance(value, bool | int | float | str) else str(value)


def _setting_name(config: dict[str, Any], identifying: dict[str, Any]) -> str:
    blob = json.dumps(sorted(identifying.items()), default=str).encode()
    names = [str(config.get(s, {}).get("name", "")) for s in ("strategy", "scenario", "data")]
    return "-".join([*filter(None, names), hashlib.sha256(blob).hexdigest()[:8]])
