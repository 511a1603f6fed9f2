"""Evaluation records: schema, validation and the array views every metric is computed from.

This module is the one definition of the record schema: the engine's `RecordLog` writes
`REQUIRED_COLUMNS` in that order with `COLUMN_DTYPES`, and every reader validates against it.

A record frame (``records.parquet``) has one row per (evaluation, evaluated task). ``kind`` is
``subset`` (continual evaluation on the fixed per-task subset), ``full`` (full test set at the end
of a phase), ``init`` (full test set with the untrained model, step 0) or ``online`` (with
``eval.online_accuracy``: the incoming training batch of update ``step + 1`` before that update,
one row per task in it; ``n`` is that task's number of samples in it, so these rows are the
stream's task mix per update). Online rows are kept apart: `RecordArrays` sums them per update
and every other metric ignores them.

Conventions shared by all metrics:

* ``|T_k|``, the end step of phase k, is the largest ``step`` of any row with ``phase == k``; the
  start step of phase k is ``|T_{k-1}|`` (0 for phase 0).
* A ``subset`` row of phase k >= 1 at the phase start step is a *pre-update* row (written when
  ``preupdate_every_task`` is on). It evaluates the same weights as the last evaluation of phase
  k-1, and the official code has no such point, so only ``lca_mode="chaudhry"`` uses it; every
  other metric ignores it and is therefore unaffected by that option. The step-0 row of phase 0 is
  the official pre-update point and is used everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

REQUIRED_COLUMNS: tuple[str, ...] = (
    "step",
    "phase",
    "current_task",
    "task",
    "kind",
    "n",
    "correct",
    "loss",
)
INT_COLUMNS: tuple[str, ...] = ("step", "phase", "current_task", "task", "n", "correct")
KINDS: tuple[str, ...] = ("subset", "full", "init", "online")
# the dtypes a run writes (``records.parquet``); ``kind`` is a string column. Reading accepts any
# integer-valued numbers in INT_COLUMNS (`validate_records`).
COLUMN_DTYPES: dict[str, str] = {**dict.fromkeys(INT_COLUMNS, "int64"), "loss": "float64"}


def _fail(message: str) -> None:
    raise ValueError(f"records: {message}")


def _examples(values: pd.Series | np.ndarray, limit: int = 3) -> str:
    unique = pd.unique(np.asarray(values)).tolist()  # plain Python scalars for the message
    return ", ".join(repr(v) for v in unique[:limit])


def validate_records(records: pd.DataFrame) -> None:
    """Check that ``records`` follows the record schema (module doc).

    Raises ``ValueError`` naming the missing column(s) or the offending column and values.
    """
    if not isinstance(records, pd.DataFrame):
        raise TypeError(f"records: expected a pandas DataFrame, got {type(records).__name__}")
    missing = [c for c in REQUIRED_COLUMNS if c not in records.columns]
    if missing:
        _fail(f"missing column(s): {', '.join(missing)}")
    if records.empty:
        _fail("no rows")

    for col in INT_COLUMNS:
        values = records[col]
        if pd.api.types.is_bool_dtype(values) or not pd.api.types.is_numeric_dtype(values):
            _fail(f"column '{col}' must be integer, got dtype {values.dtype}")
        if not pd.api.types.is_integer_dtype(values):
            arr = values.to_numpy(dtype=float)
            bad = ~np.isfinite(arr) | (arr != np.round(arr))
            if bad.any():
                _fail(f"column '{col}' must hold integers, got {_examples(arr[bad])}")
        if (values < 0).any():
            _fail(f"column '{col}' must be >= 0, got {_examples(values[values < 0])}")
    if not pd.api.types.is_numeric_dtype(records["loss"]):
        _fail(f"column 'loss' must be numeric, got dtype {records['loss'].dtype}")

    kind = records["kind"]
    bad_kind = ~kind.isin(KINDS)
    if bad_kind.any():
        _fail(f"column 'kind' must be one of {', '.join(KINDS)}, got {_examples(kind[bad_kind])}")
    n, correct = records["n"], records["correct"]
    if (n < 1).any():
        _fail(f"column 'n' must be >= 1, got {_examples(n[n < 1])}")
    if (correct > n).any():
        _fail(f"column 'correct' must be <= 'n', rows {_examples(records.index[correct > n])}")

    is_init = kind == "init"
    if (records.loc[is_init, "step"] != 0).any():
        _fail("'init' rows must have step 0")
    if records.duplicated(subset=["kind", "phase", "step", "task"]).any():
        dup = records[records.duplicated(subset=["kind", "phase", "step", "task"], keep=False)]
        first = dup.iloc[0]
        _fail(
            "duplicate rows for (kind, phase, step, task) = "
            f"({first['kind']!r}, {first['phase']}, {first['step']}, {first['task']})"
        )
    if records.loc[is_init].duplicated(subset=["task"]).any():
        _fail("more than one 'init' row for a task")
    full = records[kind == "full"]
    if full.duplicated(subset=["phase", "task"]).any():
        _fail("more than one 'full' row for a (phase, task); full rows belong at the phase end")

    trained = records[~is_init]
    if not kind.isin(("subset", "full")).any():
        _fail("no 'subset' or 'full' rows")
    phases = np.sort(trained["phase"].unique())
    if not np.array_equal(phases, np.arange(len(phases))):
        _fail(f"column 'phase' must cover 0..P-1 without gaps, got {phases.tolist()}")
    per_phase = trained.groupby("phase")["current_task"].nunique()
    if (per_phase > 1).any():
        bad_phases = per_phase[per_phase > 1].index.tolist()
        _fail(f"column 'current_task' varies within phase(s) {bad_phases}")
    lo = trained.groupby("phase")["step"].min().to_numpy()
    hi = trained.groupby("phase")["step"].max().to_numpy()
    back = np.nonzero(lo[1:] < hi[:-1])[0] + 1
    if back.size:
        p = int(back[0])
        _fail(
            f"column 'step' goes backwards: phase {p} starts at step {lo[p]} "
            f"but phase {p - 1} ends at step {hi[p - 1]}"
        )
    ends = hi[full["phase"].to_numpy()]
    off = full["step"].to_numpy() != ends
    if off.any():
        _fail("'full' rows must be at the last step of their phase")


@dataclass(frozen=True)
class RecordArrays:
    """Validated records as arrays; build with :func:`record_arrays`.

    ``acc[e, i]`` is the subset accuracy of task i at evaluation point e (NaN where task i was not
    evaluated); points are chronological (sorted by phase, then step) and exclude the pre-update
    rows of phases >= 1, which are kept separately in ``preupdate``.
    """

    n_phases: int
    n_tasks: int
    phase_task: np.ndarray  # (P,) current task of each phase
    phase_end: np.ndarray  # (P,) |T_k|
    phase_start: np.ndarray  # (P,) |T_{k-1}|, 0 for phase 0
    intro_phase: dict[int, int]  # first phase in which a task is current or evaluated
    point_phase: np.ndarray  # (E,)
    point_step: np.ndarray  # (E,)
    point_task: np.ndarray  # (E,) current task at each point
    acc: np.ndarray  # (E, T)
    preupdate: dict[tuple[int, int], float]  # (phase, task) -> accuracy, phases >= 1
    full_acc: np.ndarray  # (P, T), NaN where missing
    full_n: np.ndarray  # (P, T), 0 where missing
    full_correct: np.ndarray  # (P, T)
    init_acc: np.ndarray  # (T,), NaN where missing
    # online rows summed over the tasks of each incoming batch, by step (empty without them)
    online_step: np.ndarray  # (U,) updates made before the batch was evaluated
    online_n: np.ndarray  # (U,) samples of the batch
    online_correct: np.ndarray  # (U,) of them predicted right

    def seen_tasks(self, phase: int) -> list[int]:
        """Tasks current or evaluated in a phase <= ``phase`` (the tasks averaged at its end)."""
        return sorted(t for t, p in self.intro_phase.items() if p <= phase)


def record_arrays(records: pd.DataFrame | RecordArrays) -> RecordArrays:
    """Validate ``records`` and build the array view the metrics use (idempotent)."""
    if isinstance(records, RecordArrays):
        return records
    validate_records(records)
    is_online = (records["kind"] == "online").to_numpy()
    online = records[is_online].groupby("step")[["n", "correct"]].sum()
    records = records[~is_online]
    kind = records["kind"].to_numpy()
    step = records["step"].to_numpy().astype(np.int64)
    phase = records["phase"].to_numpy().astype(np.int64)
    task = records["task"].to_numpy().astype(np.int64)
    cur = records["current_task"].to_numpy().astype(np.int64)
    n = records["n"].to_numpy().astype(np.int64)
    correct = records["correct"].to_numpy().astype(np.int64)
    acc = correct / n

    is_init = kind == "init"
    is_sub = kind == "subset"
    is_full = kind == "full"
    trained = ~is_init
    n_phases = int(phase[trained].max()) + 1
    n_tasks = int(max(task.max(), cur[trained].max())) + 1

    phase_end = np.zeros(n_phases, dtype=np.int64)
    np.maximum.at(phase_end, phase[trained], step[trained])
    phase_start = np.concatenate(([0], phase_end[:-1])).astype(np.int64)
    phase_task = np.zeros(n_phases, dtype=np.int64)
    phase_task[phase[trained]] = cur[trained]

    pre = is_sub & (phase >= 1) & (step == phase_start[phase])
    core = is_sub & ~pre

    intro: dict[int, int] = {}
    for p, t in enumerate(phase_task.tolist()):
        intro.setdefault(t, p)
    if core.any():
        first_eval = pd.Series(phase[core]).groupby(task[core]).min()
        for t, p in first_eval.items():
            intro[int(t)] = min(intro.get(int(t), n_phases), int(p))

    # Chronological evaluation points: one per distinct (phase, step) among core subset rows.
    stride = int(step.max()) + 1
    keys, inverse = np.unique(phase[core] * stride + step[core], return_inverse=True)
    acc_mat = np.full((keys.size, n_tasks), np.nan)
    acc_mat[inverse, task[core]] = acc[core]
    point_phase = keys // stride

    full_acc = np.full((n_phases, n_tasks), np.nan)
    full_n = np.zeros((n_phases, n_tasks), dtype=np.int64)
    full_correct = np.zeros((n_phases, n_tasks), dtype=np.int64)
    full_acc[phase[is_full], task[is_full]] = acc[is_full]
    full_n[phase[is_full], task[is_full]] = n[is_full]
    full_correct[phase[is_full], task[is_full]] = correct[is_full]
    init_acc = np.full(n_tasks, np.nan)
    init_acc[task[is_init]] = acc[is_init]

    return RecordArrays(
        n_phases=n_phases,
        n_tasks=n_tasks,
        phase_task=phase_task,
        phase_end=phase_end,
        phase_start=phase_start,
        intro_phase=intro,
        point_phase=point_phase,
        point_step=keys % stride,
        point_task=phase_task[point_phase],
        acc=acc_mat,
        preupdate={
            (int(p), int(t)): float(a)
            for p, t, a in zip(phase[pre], task[pre], acc[pre], strict=True)
        },
        full_acc=full_acc,
        full_n=full_n,
        full_correct=full_correct,
        init_acc=init_acc,
        online_step=online.index.to_numpy().astype(np.int64),
        online_n=online["n"].to_numpy().astype(np.int64),
        online_correct=online["correct"].to_numpy().astype(np.int64),
    )


def phase_end_steps(records: pd.DataFrame | RecordArrays) -> dict[int, int]:
    """``{phase: |T_k|}``, the largest step of any row of each phase."""
    ra = record_arrays(records)
    return {p: int(s) for p, s in enumerate(ra.phase_end)}


def accuracy_curve(records: pd.DataFrame | RecordArrays) -> pd.DataFrame:
    """Subset accuracy per task as a wide frame: index (phase, step), one column per task.

    NaN where a task was not evaluated. Pre-update rows of phases >= 1 are left out (module doc).
    """
    ra = record_arrays(records)
    index = pd.MultiIndex.from_arrays([ra.point_phase, ra.point_step], names=["phase", "step"])
    frame = pd.DataFrame(ra.acc, index=index, columns=pd.Index(range(ra.n_tasks), name="task"))
    return frame.dropna(axis=1, how="all")


def accuracy_matrix(records: pd.DataFrame | RecordArrays) -> pd.DataFrame:
    """``R[phase, task]``: full-test-set accuracy at the end of each phase (kind ``full``).

    Index: every phase 0..P-1; columns: every task 0..T-1; NaN where not evaluated.
    """
    ra = record_arrays(records)
    return pd.DataFrame(
        ra.full_acc,
        index=pd.Index(range(ra.n_phases), name="phase"),
        columns=pd.Index(range(ra.n_tasks), name="task"),
    )
