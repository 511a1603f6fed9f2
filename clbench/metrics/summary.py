"""Metric options and the flat, JSON-serialisable metric summary of one run."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from clbench.metrics.boundary_free import boundary_free_metrics
from clbench.metrics.classic import (
    average_incremental_accuracy,
    backward_transfer,
    final_accuracy,
    forgetting,
    forward_transfer,
    per_task_final_accuracy,
)
from clbench.metrics.lca import learning_curve_area
from clbench.metrics.options import MetricOptions
from clbench.metrics.records import RecordArrays, record_arrays
from clbench.metrics.stability import (
    Chance,
    boundary_min_acc,
    gap_analysis,
    per_task_minima,
    stability_curves,
)
from clbench.metrics.windowed import (
    windowed_forgetting,
    windowed_plasticity,
)


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
    mix: np.ndarray | None = None,
) -> dict[str, Any]:
    """All summary metrics of one run as a flat JSON-serialisable dict.

    Keys: ``final_acc``, ``aia``, ``forgetting``, ``bwt``, ``fwt``, ``min_acc``, ``wc_acc``,
    ``boundary_min_acc`` and ``hidden_gap`` (its excess over ``min_acc``),
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

    Metrics without boundaries (`clbench.metrics.boundary_free`): ``online_acc`` (from
    ``online`` rows), ``anytime_acc`` and, given the stream's ``mix`` (e.g.
    ``plan.mix_matrix()``, a row per phase), the ``decline_*`` gap metrics and ``declines``.
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
        "boundary_min_acc": boundary_min_acc(ra),
    }
    if out["min_acc"] is not None and out["boundary_min_acc"] is not None:
        out["hidden_gap"] = out["boundary_min_acc"] - out["min_acc"]
    else:
        out["hidden_gap"] = None
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
    out.update(boundary_free_metrics(ra, mix, opts.recovery_eps, chance))
    return _json(out)


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
