"""Metric options and the flat, JSON-serialisable metric summary of one run."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, field_validator

from clbench.metrics.classic import (
    AvgAccWeighting,
    ForgettingReference,
    average_incremental_accuracy,
    backward_transfer,
    final_accuracy,
    forgetting,
    forward_transfer,
    per_task_final_accuracy,
)
from clbench.metrics.lca import LcaMode, learning_curve_area
from clbench.metrics.records import RecordArrays, record_arrays
from clbench.metrics.stability import Chance, gap_analysis, per_task_minima, stability_curves
from clbench.metrics.windowed import (
    WfTasks,
    WindowUnit,
    WpMode,
    windowed_forgetting,
    windowed_plasticity,
)


class MetricOptions(BaseModel):
    """How metrics are computed from records: clbench's defaults, with the official code's
    choices (De Lange et al.'s repository) one option away."""

    model_config = ConfigDict(extra="forbid")

    avg_acc_weighting: AvgAccWeighting = Field(
        "task_mean",
        description="Final accuracy: mean over tasks (task_mean) or pooled over all test samples "
        "(sample_pooled, official code)",
    )
    forgetting_reference: ForgettingReference = Field(
        "end_of_task",
        description="Forgetting reference: accuracy right after the task (end_of_task, official) "
        "or its maximum over later boundaries (max, Chaudhry)",
    )
    window_unit: WindowUnit = Field(
        "updates",
        description="Unit of the WF^w/WP^w windows and of LCA's β: updates (a window of w holds "
        "the evaluations less than w updates apart, whatever eval.every is) or evaluations (w "
        "consecutive evaluations, the official code; w·eval.every updates)",
    )
    window_sizes: list[int] = Field(
        default_factory=lambda: [10, 100],
        description="Window sizes w for WF^w and WP^w, in window_unit",
    )
    wf_tasks: WfTasks = Field(
        "all",
        description="WF^w averages over all evaluated tasks (all, official) or all but the last "
        "task (previous)",
    )
    wp_mode: WpMode = Field(
        "exact",
        description="WP^w: exact max over window pairs (exact) or the official running-max "
        "pruning (official_pruned)",
    )
    lca_beta: int = Field(
        10,
        ge=1,
        description="LCA window β, in window_unit: the first β updates (or evaluations) of a task "
        "being current",
    )
    lca_mode: LcaMode = Field(
        "official",
        description="LCA window: b = 0..β-1 for the first task and b = 1..β for later ones "
        "(official) or the pre-update point and b = 1..β (chaudhry; needs preupdate_every_task)",
    )
    recovery_eps: float = Field(
        0.02,
        ge=0,
        description="Absolute accuracy tolerance ε for stability-gap recovery time (in updates)",
    )

    @field_validator("window_sizes")
    @classmethod
    def _check_windows(cls, value: list[int]) -> list[int]:
        if any(w < 1 for w in value):
            raise ValueError("window sizes must be >= 1")
        if len(set(value)) != len(value):
            raise ValueError("window sizes must be distinct")
        return value


def _to_options(options: MetricOptions | Mapping[str, Any] | None) -> MetricOptions:
    if options is None:
        return MetricOptions()
    if isinstance(options, MetricOptions):
        return options
    return MetricOptions.model_validate(dict(options))


def _json(value: Any) -> Any:
    """Plain Python values with ``None`` for NaN: no numpy scalars, no NaN in the output."""
    if isinstance(value, Mapping):
        return {str(k): _json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [_json(v) for v in value]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return None if math.isnan(value) else float(value)
    return value


def _mean(values: list[float]) -> float | None:
    return float(np.mean(values)) if values else None


def compute_metrics(
    records: pd.DataFrame | RecordArrays,
    options: MetricOptions | Mapping[str, Any] | None = None,
    chance: Chance = None,
) -> dict[str, Any]:
    """All summary metrics of one run as a flat JSON-serialisable dict.

    Keys: ``final_acc``, ``aia``, ``forgetting``, ``bwt``, ``fwt``, ``min_acc``, ``wc_acc``,
    ``wf_<w>`` and ``wp_<w>`` per window size, ``lca``, the gap metrics, ``per_task_final_acc``,
    ``per_task_min_acc`` (lists indexed by task), ``accuracy_matrix`` (R[phase][task]) and
    ``gaps`` (every (task, phase) pair, excluded ones marked ``forgotten``). Undefined values are
    ``None``.

    Gap metrics: a pair whose reference is at or below the task's chance level has nothing left
    to lose and is excluded (``forgotten_pairs``); ``gap_pairs`` counts the others and
    ``recovered_pairs`` those of them that recover. ``gap_depth_mean`` and
    ``recovered_fraction = recovered_pairs / gap_pairs`` are over ``gap_pairs``,
    ``recovery_time_mean`` over the recovered pairs. ``chance``: the chance level per task (e.g.
    :func:`clbench.metrics.stability.chance_levels` of the run's plan) or one value for all
    tasks; ``None`` (records alone) takes 0, which excludes only references of 0.
    """
    opts = _to_options(options)
    ra = record_arrays(records)
    curve = stability_curves(ra)
    last = curve.iloc[-1] if not curve.empty else None
    minima = per_task_minima(ra)
    gaps = gap_analysis(ra, opts.recovery_eps, chance)
    counted = [g for g in gaps if not g.forgotten]
    recovered = [g.recovery_time for g in counted if g.recovery_time is not None]
    unit = opts.window_unit

    out: dict[str, Any] = {
        "final_acc": final_accuracy(ra, opts.avg_acc_weighting),
        "aia": average_incremental_accuracy(ra),
        "forgetting": forgetting(ra, opts.forgetting_reference),
        "bwt": backward_transfer(ra),
        "fwt": forward_transfer(ra),
        "min_acc": None if last is None else last["min_acc"],
        "wc_acc": None if last is None else last["wc_acc"],
    }
    for w in opts.window_sizes:
        out[f"wf_{w}"] = windowed_forgetting(ra, w, opts.wf_tasks, unit)
        out[f"wp_{w}"] = windowed_plasticity(ra, w, opts.wp_mode, unit)
    out.update(
        {
            "lca": learning_curve_area(ra, opts.lca_beta, opts.lca_mode, unit),
            "gap_depth_mean": _mean([g.depth for g in counted]),
            "recovery_time_mean": _mean([float(r) for r in recovered]),
            "recovered_fraction": len(recovered) / len(counted) if counted else None,
            "gap_pairs": len(counted),
            "forgotten_pairs": len(gaps) - len(counted),
            "recovered_pairs": len(recovered),
            "per_task_final_acc": per_task_final_accuracy(ra),
            "per_task_min_acc": [minima.get(t) for t in range(max(minima, default=-1) + 1)],
            "accuracy_matrix": ra.full_acc.tolist(),
            "gaps": [g.to_dict() for g in gaps],
        }
    )
    return _json(out)


# The summary metrics shown first (the console table of `clbench run`, `clbench info`), with
# what each means.
HEADLINE: tuple[tuple[str, str], ...] = (
    ("final_acc", "final accuracy (full test sets, task mean)"),
    ("aia", "average incremental accuracy"),
    ("forgetting", "average forgetting"),
    ("bwt", "backward transfer"),
    ("fwt", "forward transfer (vs initial model)"),
    ("min_acc", "min-ACC (worst accuracy of old tasks)"),
    ("wc_acc", "WC-ACC (worst-case accuracy)"),
    ("wf_10", "windowed forgetting WF^10"),
    ("wf_100", "windowed forgetting WF^100"),
    ("wp_10", "windowed plasticity WP^10"),
    ("wp_100", "windowed plasticity WP^100"),
    ("lca", "learning curve area LCA"),
    ("gap_depth_mean", "stability-gap depth (mean over boundaries)"),
    ("recovery_time_mean", "gap recovery time, updates (mean of recovered)"),
)


def format_value(value: Any) -> str:
    """A summary value as shown in plain text: ``null`` for None, floats to 4 decimals."""
    if value is None:
        return "null"
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


def curves(
    records: pd.DataFrame | RecordArrays, options: MetricOptions | Mapping[str, Any] | None = None
) -> pd.DataFrame:
    """Per-evaluation min-ACC and WC-ACC for plotting.

    Columns ``phase``, ``step``, ``current_task``, ``min_acc``, ``wc_acc``; undefined values
    (min-ACC during the first task) are NaN, pandas' null. ``options`` is validated but no option
    changes these curves.
    """
    _to_options(options)
    return stability_curves(records)
