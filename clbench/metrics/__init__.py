"""Metrics of continual-evaluation records: pure functions of the record frame, no torch.

Definitions follow De Lange et al., "Continual evaluation for lifelong learning: identifying the
stability gap" (ICLR 2023) and its official code; each module documents its formulas, and
:class:`MetricOptions` the choices between them. Names load on first use (PEP 562): importing
`clbench.metrics.options` for a config does not import pandas.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from clbench.metrics.boundary_free import (
        Decline,
        DeclineGap,
        anytime_average_accuracy,
        boundary_free_metrics,
        decline_gaps,
        decline_minima,
        declines,
        online_accuracy,
    )
    from clbench.metrics.classic import (
        average_incremental_accuracy,
        backward_transfer,
        final_accuracy,
        forgetting,
        forward_transfer,
        per_task_final_accuracy,
    )
    from clbench.metrics.lca import learning_curve_area
    from clbench.metrics.options import (
        WINDOW_UNITS,
        AvgAccWeighting,
        ForgettingReference,
        LcaMode,
        MetricOptions,
        WfTasks,
        WindowUnit,
        WpMode,
    )
    from clbench.metrics.records import (
        COLUMN_DTYPES,
        INT_COLUMNS,
        KINDS,
        REQUIRED_COLUMNS,
        RecordArrays,
        accuracy_curve,
        accuracy_matrix,
        phase_end_steps,
        record_arrays,
        validate_records,
    )
    from clbench.metrics.stability import (
        Gap,
        boundary_min_acc,
        chance_levels,
        gap_analysis,
        gap_depth,
        min_acc,
        per_task_minima,
        recovery_time,
        stability_curves,
        wc_acc,
    )
    from clbench.metrics.summary import compute_metrics, curves
    from clbench.metrics.windowed import (
        max_window_decrease,
        max_window_increase,
        windowed_forgetting,
        windowed_forgetting_per_task,
        windowed_plasticity,
        windowed_plasticity_per_task,
    )

_WHERE = {
    "online_accuracy": "boundary_free",
    "anytime_average_accuracy": "boundary_free",
    "Decline": "boundary_free",
    "declines": "boundary_free",
    "DeclineGap": "boundary_free",
    "decline_gaps": "boundary_free",
    "decline_minima": "boundary_free",
    "boundary_free_metrics": "boundary_free",
    "AvgAccWeighting": "options",
    "COLUMN_DTYPES": "records",
    "ForgettingReference": "options",
    "Gap": "stability",
    "INT_COLUMNS": "records",
    "KINDS": "records",
    "LcaMode": "options",
    "MetricOptions": "options",
    "REQUIRED_COLUMNS": "records",
    "RecordArrays": "records",
    "WINDOW_UNITS": "options",
    "WfTasks": "options",
    "WindowUnit": "options",
    "WpMode": "options",
    "accuracy_curve": "records",
    "accuracy_matrix": "records",
    "average_incremental_accuracy": "classic",
    "backward_transfer": "classic",
    "chance_levels": "stability",
    "compute_metrics": "summary",
    "curves": "summary",
    "final_accuracy": "classic",
    "forgetting": "classic",
    "forward_transfer": "classic",
    "boundary_min_acc": "stability",
    "gap_analysis": "stability",
    "gap_depth": "stability",
    "learning_curve_area": "lca",
    "max_window_decrease": "windowed",
    "max_window_increase": "windowed",
    "min_acc": "stability",
    "per_task_final_accuracy": "classic",
    "per_task_minima": "stability",
    "phase_end_steps": "records",
    "record_arrays": "records",
    "recovery_time": "stability",
    "stability_curves": "stability",
    "validate_records": "records",
    "wc_acc": "stability",
    "windowed_forgetting": "windowed",
    "windowed_forgetting_per_task": "windowed",
    "windowed_plasticity": "windowed",
    "windowed_plasticity_per_task": "windowed",
}

__all__ = [
    "COLUMN_DTYPES",
    "INT_COLUMNS",
    "KINDS",
    "REQUIRED_COLUMNS",
    "WINDOW_UNITS",
    "AvgAccWeighting",
    "Decline",
    "DeclineGap",
    "ForgettingReference",
    "Gap",
    "LcaMode",
    "MetricOptions",
    "RecordArrays",
    "WfTasks",
    "WindowUnit",
    "WpMode",
    "accuracy_curve",
    "accuracy_matrix",
    "anytime_average_accuracy",
    "average_incremental_accuracy",
    "backward_transfer",
    "boundary_free_metrics",
    "boundary_min_acc",
    "chance_levels",
    "compute_metrics",
    "curves",
    "decline_gaps",
    "decline_minima",
    "declines",
    "final_accuracy",
    "forgetting",
    "forward_transfer",
    "gap_analysis",
    "gap_depth",
    "learning_curve_area",
    "max_window_decrease",
    "max_window_increase",
    "min_acc",
    "online_accuracy",
    "per_task_final_accuracy",
    "per_task_minima",
    "phase_end_steps",
    "record_arrays",
    "recovery_time",
    "stability_curves",
    "validate_records",
    "wc_acc",
    "windowed_forgetting",
    "windowed_forgetting_per_task",
    "windowed_plasticity",
    "windowed_plasticity_per_task",
]


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(import_module(f"clbench.metrics.{_WHERE[name]}"), name)
    raise AttributeError(f"module 'clbench.metrics' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
