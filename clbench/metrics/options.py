"""How metrics are computed from records (`MetricOptions`, the ``metrics`` config section) and the
names of the choices; torch- and pandas-free, so validating a config stays cheap."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

AvgAccWeighting = Literal["task_mean", "sample_pooled"]
ForgettingReference = Literal["end_of_task", "max"]
LcaMode = Literal["official", "chaudhry"]
WfTasks = Literal["all", "previous"]
WpMode = Literal["exact", "official_pruned"]
WindowUnit = Literal["updates", "evaluations"]
WINDOW_UNITS: tuple[str, ...] = ("updates", "evaluations")


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
