"""Metrics of continual-evaluation records: pure functions of the record frame, no torch.

Definitions follow De Lange et al., "Continual evaluation for lifelong learning: identifying the
stability gap" (ICLR 2023) and its official code; each module documents its formulas, and
:class:`MetricOptions` the choices between them.
"""

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
    chance_levels,
    gap_analysis,
    gap_depth,
    min_acc,
    per_task_minima,
    recovery_time,
    stability_curves,
    wc_acc,
)
from clbench.metrics.summary import MetricOptions, compute_metrics, curves
from clbench.metrics.windowed import (
    WINDOW_UNITS,
    WfTasks,
    WindowUnit,
    WpMode,
    max_window_decrease,
    max_window_increase,
    windowed_forgetting,
    windowed_forgetting_per_task,
    windowed_plasticity,
    windowed_plasticity_per_task,
)

__all__ = [
    "COLUMN_DTYPES",
    "INT_COLUMNS",
    "KINDS",
    "REQUIRED_COLUMNS",
    "WINDOW_UNITS",
    "AvgAccWeighting",
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
    "average_incremental_accuracy",
    "backward_transfer",
    "chance_levels",
    "compute_metrics",
    "curves",
    "final_accuracy",
    "forgetting",
    "forward_transfer",
    "gap_analysis",
    "gap_depth",
    "learning_curve_area",
    "max_window_decrease",
    "max_window_increase",
    "min_acc",
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
