"""What an export logs for one run folder, tracker-independent.

Per update step: ``acc/task_<t>`` (continual-evaluation subset accuracy; the pre-update rows of
phases >= 1 repeat the previous evaluation and are left out), ``acc_full/task_<t>`` (full test
set at each phase end) and ``train/loss``. Once per run: the summary's scalar metrics as
``metric/<name>`` and the hyperparameters (the identifying config, seed and tags).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from clbench.errors import CorruptedResultError
from clbench.metrics.records import accuracy_curve, validate_records
from clbench.results.reader import RunFolder, flat_config, identifying_config

Scalar = bool | int | float | str


@dataclass
class RunLog:
    run_id: str
    config: dict[str, Any]  # the resolved config (config.yaml)
    steps: dict[int, dict[str, float]]  # update step -> {tag: value}, ascending steps
    metrics: dict[str, float]  # metric/<name> -> value (undefined metrics left out)
    hparams: dict[str, Scalar]
    tags: dict[str, str] = field(default_factory=dict)
    setting: str = ""  # equal for the seeds of one setting (a W&B group)

    @property
    def last_step(self) -> int:
        return max(self.steps, default=0)


def run_log(run: RunFolder) -> RunLog:
    records = run.records()
    try:
        validate_records(records)
    except ValueError as exc:
        raise CorruptedResultError(run.file("records.parquet"), str(exc)) from None
    steps: dict[int, dict[str, float]] = {}

    def put(step: int, tag: str, value: float) -> None:
        steps.setdefault(int(step), {})[tag] = float(value)

    curve = accuracy_curve(records).droplevel("phase")
    for task in curve.columns:
        for step, value in curve[task].dropna().items():
            put(step, f"acc/task_{task}", value)
    full = records[records["kind"] == "full"]
    for step, task, acc in zip(
        full["step"], full["task"], full["correct"] / full["n"], strict=True
    ):
        put(step, f"acc_full/task_{task}", acc)
    loss = run.train_loss()
    for step, value in zip(loss["step"], loss["loss"], strict=True):
        put(step, "train/loss", value)

    summary = run.summary
    metrics = {
        f"metric/{name}": float(value)
        for name, value in summary["metrics"].items()
        if isinstance(value, int | float) and not isinstance(value, bool)
    }
    identifying = identifying_config(run.config)
    tags = {str(k): str(v) for k, v in (summary.get("tags") or {}).items()}
    hparams: dict[str, Scalar] = {k: _scalar(v) for k, v in identifying.items()}
    hparams["seed"] = _scalar(flat_config(run.config).get("seed"))
    hparams.update({f"tags.{k}": v for k, v in tags.items()})
    return RunLog(
        run_id=str(summary.get("run_id") or run.path.name),
        config=run.config,
        steps=dict(sorted(steps.items())),
        metrics=metrics,
        hparams=hparams,
        tags=tags,
        setting=_setting_name(run.config, identifying),
    )


def _scalar(value: Any) -> Scalar:
    return value if isinstance(value, bool | int | float | str) else str(value)


def _setting_name(config: dict[str, Any], identifying: dict[str, Any]) -> str:
    blob = json.dumps(sorted(identifying.items()), default=str).encode()
    names = [str(config.get(s, {}).get("name", "")) for s in ("strategy", "scenario", "data")]
    return "-".join([*filter(None, names), hashlib.sha256(blob).hexdigest()[:8]])
