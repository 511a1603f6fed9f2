"""Run folders -> one pandas frame, one row per run.

Columns: ``run``, ``path``, ``status``, ``seed``, the identifying config keys as flat dotted names
(``strategy.name``, ``train.lr``, ...), ``tags.<k>`` (free labels such as ``tags.phase``), every
scalar metric of ``summary.json`` (``final_acc``, ``wf_10``, ...), every scalar budget entry
(``updates``, ``train_time_s``, ``buffer_size``, ``params_total``, ...) and every number of the
strategy's own report, flattened to ``strategy_report.<key>[.<key>...]``
(``strategy_report.train_macs.total``, ``strategy_report.statistics_bytes``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from clbench.reporting.columns import STRATEGY_REPORT_PREFIX
from clbench.results.labels import value_text
from clbench.results.reader import RunFolder, identifying_config

RUN_COLUMNS = ("run", "path", "status", "seed")


@dataclass
class RunFrame:
    """The per-run frame plus what its columns are."""

    frame: pd.DataFrame
    config_keys: list[str]
    tag_keys: list[str]
    value_columns: list[str]  # metrics, then budget entries: the numbers a report aggregates
    configs: list[dict[str, Any]]  # resolved config of each row, in row order
    # strategy_report.* numbers: columns only when named (``all`` leaves them out)
    strategy_columns: list[str] = field(default_factory=list)
    # the value columns that come from summary.json "budget" (what a run cost, not how it did)
    budget_columns: list[str] = field(default_factory=list)

    @property
    def key_columns(self) -> list[str]:
        """Columns a report may group, split or pick a baseline by."""
        return [*self.config_keys, *self.tag_keys, "seed"]

    def key_value(self, row: int, key: str) -> Any:
        """The value of a key column in one row, ``None`` where the run does not have it."""
        value = self.frame.at[row, key]
        return None if isinstance(value, float) and math.isnan(value) else value


def _is_scalar(value: Any) -> bool:
    return value is None or (isinstance(value, int | float) and not isinstance(value, bool))


def flatten_numbers(report: Any, prefix: str = STRATEGY_REPORT_PREFIX) -> dict[str, float]:
    """The numbers of a nested report as ``{prefix + "a.b": value}``; text, flags (bools) and
    lists are left out (they are no column)."""
    if not isinstance(report, dict):
        return {}
    flat: dict[str, float] = {}
    for key, value in report.items():
        if isinstance(value, dict):
            flat.update(flatten_numbers(value, f"{prefix}{key}."))
        elif isinstance(value, int | float) and not isinstance(value, bool):
            flat[f"{prefix}{key}"] = value
    return flat


def _summary(run: RunFolder) -> dict[str, Any]:
    """The summary of a finished run; an unfinished one contributes no numbers (a summary left
    by an earlier attempt, e.g. of a forced re-run, describes another run)."""
    return run.summary if run.finished else {}


def build_frame(runs: Sequence[RunFolder]) -> RunFrame:
    """One row per run; config and tag columns keep Python values (no int -> float upcasts)."""
    keys_rows, value_rows, fact_rows, configs = [], [], [], []
    budget_names: dict[str, None] = {}
    for run in runs:
        config, summary = run.config, _summary(run)
        tags = {**((config.get("output") or {}).get("tags") or {}), **(summary.get("tags") or {})}
        keys_rows.append(
            {
                "run": run.path.name,
                "path": str(run.path),
                "status": run.status,
                "seed": config.get("seed"),
                **identifying_config(config),
                **{f"tags.{k}": v for k, v in tags.items()},
            }
        )
        values = {k: v for k, v in summary.get("metrics", {}).items() if _is_scalar(v)}
        budget = {k: v for k, v in (summary.get("budget") or {}).items() if _is_scalar(v)}
        values.update(budget)
        budget_names.update(dict.fromkeys(budget))
        value_rows.append(values)
        fact_rows.append(flatten_numbers(summary.get("strategy_report")))
        configs.append(config)

    key_names = list(dict.fromkeys(k for row in keys_rows for k in row))
    value_columns = list(dict.fromkeys(k for row in value_rows for k in row))
    strategy_columns = sorted({k for row in fact_rows for k in row})
    columns: dict[str, pd.Series] = {
        k: pd.Series([row.get(k) for row in keys_rows], dtype=object) for k in key_names
    }
    for names, rows in ((value_columns, value_rows), (strategy_columns, fact_rows)):
        for name in names:
            values = [row.get(name) for row in rows]
            columns[name] = pd.Series([math.nan if v is None else v for v in values], dtype=float)
    frame = pd.DataFrame(columns, index=pd.RangeIndex(len(keys_rows)))
    config_keys = [k for k in key_names if k not in RUN_COLUMNS and not k.startswith("tags.")]
    return RunFrame(
        frame=frame,
        config_keys=sorted(config_keys),
        tag_keys=sorted(k for k in key_names if k.startswith("tags.")),
        value_columns=value_columns,
        configs=configs,
        strategy_columns=strategy_columns,
        budget_columns=[k for k in value_columns if k in budget_names],
    )


def value_sort_key(value: Any) -> tuple[int, Any]:
    """Numbers in numeric order, then other values by their text, then missing values."""
    if value is None:
        return (3, "")
    if isinstance(value, bool) or not isinstance(value, int | float):
        return (2, value_text(value))
    return (1, value)
