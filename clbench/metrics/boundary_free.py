"""Metrics that need no task boundary: online accuracy, anytime average accuracy, and the
stability gap measured where a task's share of the stream starts to fall.

**Online accuracy** (Cai, Sener & Koltun, "Online Continual Learning with Natural Distribution
Shifts: An Empirical Study with Visual Data", ICCV 2021: the accuracy on each incoming batch
before the model trains on it, averaged over the stream): the fraction of incoming samples
predicted right by the weights of the update before the one that first trains on them, pooled
over the stream (the mean over batches when they are equally large). Read from ``online``
rows (``eval.online_accuracy``); ``None`` without them.

**Anytime average accuracy** (Koh et al., "Online Continual Learning on Class Incremental Blurry
Task Configuration with Anytime Inference", ICLR 2022: A_AUC = Σ_i f(i·Δn)·Δn, the area
under the accuracy-over-time curve, with f the accuracy on the seen classes; the official code,
naver-ai/i-Blurry@4446d95:main.py L136-138 and L163, averages f over evaluations every Δn samples):

    anytime_acc = Σ_e f(e) · (s_e - s_{e-1}) / s_E,

over the continual evaluations e after the first update, at steps s_1 < ... < s_E (s_0 = 0), with
f(e) the mean subset accuracy of the tasks evaluated at e (the seen ones). Each evaluation stands
for the updates since the one before, so evenly spaced evaluations give their plain mean and the
value does not depend on ``eval.every``'s spacing beyond sampling. Pre-update rows are left out.

**Decline gaps.** A stream's *mix* ``Q[k, i]`` is task i's share of the distribution phase k was
drawn from (`clbench.scenario.plan.ScenarioPlan.mix_matrix`). Task i is *in focus* in phase k
when ``Q[k, i] >= FOCUS_FRACTION · max_k Q[k, i]`` (half its peak share); each maximal run of
focus phases is an episode. An episode's *onset* is its last phase at the episode's highest share:
where the task's share starts to fall. Its *window* is every phase after the onset up to the start
of the task's next episode (or the stream's end). For each (task, onset) pair, with a(i, n) the
subset accuracy of task i after n updates and |T_k| the last update of phase k,

    reference = a(i, |T_onset|),  minimum = min over the window's evaluations of a(i, n),
    depth = reference - minimum,

the recovery time counts the updates from the first arg-min to the first evaluation at or after
it with ``a >= reference - recovery_eps``, within the window (``None`` if none), and a pair whose
reference is at or below the task's chance level is *forgotten* and left out of the means, as in
`clbench.metrics.stability.gap_analysis`. ``decline_min_acc`` is the mean over tasks of the
lowest a(i, n) in any of their windows.

On a plain sequential stream each task is in focus in its own phase only: the onset is the end of
that phase and the window is every later phase, so ``decline_min_acc`` equals ``min_acc`` (the
official "old task" rule); the gap depth differs from ``gap_depth_mean``, which takes a reference
per later phase. On a Gaussian schedule the onset is the phase at the top of the class's bump; on
a blurry stream the end of the class's home task; on a recurrence stream the end of each stay.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from clbench.metrics.records import RecordArrays, record_arrays
from clbench.metrics.stability import RECOVERY_SLACK, Chance, chance_of

if TYPE_CHECKING:
    import pandas as pd

FOCUS_FRACTION = 0.5  # in focus: at least half the task's peak share
_SHARE_TOLERANCE = 1e-12  # shares are floats: equal peaks within this count as equal


def online_accuracy(records: pd.DataFrame | RecordArrays) -> float | None:
    """Fraction of the incoming samples predicted right before training on them (module doc);
    ``None`` without ``online`` rows."""
    ra = record_arrays(records)
    n = int(ra.online_n.sum())
    return float(ra.online_correct.sum() / n) if n else None


def anytime_average_accuracy(records: pd.DataFrame | RecordArrays) -> float | None:
    """Anytime average accuracy: the seen tasks' mean subset accuracy averaged over time
    (module doc); ``None`` without an evaluation after the first update."""
    ra = record_arrays(records)
    later = ra.point_step > 0
    if not later.any():
        return None
    mean_seen = np.nanmean(ra.acc[later], axis=1)
    steps = ra.point_step[later]
    spans = np.diff(steps, prepend=0)  # points are chronological, steps distinct
    return float((mean_seen * spans).sum() / steps[-1])


@dataclass(frozen=True)
class Decline:
    """A task's share of the stream starting to fall after phase ``onset_phase``; the gap is
    measured over phases ``onset_phase + 1 .. end_phase`` (module doc)."""

    task: int
    onset_phase: int
    end_phase: int


def declines(mix: np.ndarray) -> list[Decline]:
    """Every (task, onset) of a mix ``Q[phase, task]`` whose window holds a phase, by task then
    onset (module doc)."""
    n_phases, n_tasks = mix.shape
    out = []
    for task in range(n_tasks):
        share = mix[:, task]
        peak = share.max()
        if peak <= 0:
            continue
        focus = share >= FOCUS_FRACTION * peak - _SHARE_TOLERANCE
        starts = np.flatnonzero(focus & ~np.concatenate(([False], focus[:-1])))
        for n, start in enumerate(starts):
            stop = start
            while stop + 1 < n_phases and focus[stop + 1]:
                stop += 1
            episode = share[start : stop + 1]
            onset = start + int(np.flatnonzero(episode >= episode.max() - _SHARE_TOLERANCE)[-1])
            end = starts[n + 1] - 1 if n + 1 < len(starts) else n_phases - 1
            if end > onset:
                out.append(Decline(task, int(onset), int(end)))
    return out


@dataclass(frozen=True)
class DeclineGap:
    """The stability gap of ``task`` after its share starts to fall (module doc)."""

    task: int
    onset_phase: int
    onset_step: int  # |T_onset|: the reference evaluation
    end_step: int  # the window's last update
    reference: float
    minimum: float
    depth: float
    min_step: int  # step of the first arg-min
    recovery_time: int | None  # updates from min_step to recovery; None = not recovered
    chance: float
    forgotten: bool  # reference <= chance: excluded from the means

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _checked(ra: RecordArrays, mix: np.ndarray) -> np.ndarray:
    mix = np.asarray(mix, dtype=np.float64)
    if mix.ndim != 2 or mix.shape[0] != ra.n_phases or mix.shape[1] < ra.n_tasks:
        raise ValueError(
            f"mix: expected one row per phase ({ra.n_phases}) and a column per task (at least "
            f"{ra.n_tasks}), got shape {mix.shape}"
        )
    return mix


def _window_points(ra: RecordArrays, decline: Decline) -> tuple[np.ndarray, np.ndarray]:
    """Evaluation points of the task: the last one up to the onset, and those in the window."""
    if decline.task >= ra.n_tasks:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    evaluated = ~np.isnan(ra.acc[:, decline.task])
    phase = ra.point_phase
    before = np.flatnonzero(evaluated & (phase <= decline.onset_phase))[-1:]
    inside = (phase > decline.onset_phase) & (phase <= decline.end_phase)
    return before, np.flatnonzero(evaluated & inside)


def decline_gaps(
    records: pd.DataFrame | RecordArrays,
    mix: np.ndarray,
    recovery_eps: float = 0.02,
    chance: Chance = None,
) -> list[DeclineGap]:
    """The gap of every (task, onset) of ``mix`` with a reference and a window evaluation."""
    ra = record_arrays(records)
    gaps = []
    for decline in declines(_checked(ra, mix)):
        before, during = _window_points(ra, decline)
        if before.size == 0 or during.size == 0:
            continue
        col = ra.acc[:, decline.task]
        reference = float(col[before[0]])
        values, steps = col[during], ra.point_step[during]
        j_min = int(np.argmin(values))  # first arg-min on ties
        ok = np.flatnonzero(values[j_min:] >= reference - recovery_eps - RECOVERY_SLACK)
        level = chance_of(chance, decline.task)
        forgotten = reference <= level + RECOVERY_SLACK
        recovered = ok.size > 0 and not forgotten
        gaps.append(
            DeclineGap(
                task=decline.task,
                onset_phase=decline.onset_phase,
                onset_step=int(ra.phase_end[decline.onset_phase]),
                end_step=int(ra.phase_end[decline.end_phase]),
                reference=reference,
                minimum=float(values[j_min]),
                depth=reference - float(values[j_min]),
                min_step=int(steps[j_min]),
                recovery_time=int(steps[j_min + ok[0]] - steps[j_min]) if recovered else None,
                chance=level,
                forgotten=forgotten,
            )
        )
    return gaps


def decline_minima(records: pd.DataFrame | RecordArrays, mix: np.ndarray) -> dict[int, float]:
    """``{task: lowest subset accuracy in any of its decline windows}``."""
    ra = record_arrays(records)
    minima: dict[int, float] = {}
    for decline in declines(_checked(ra, mix)):
        _, during = _window_points(ra, decline)
        if during.size:
            low = float(ra.acc[during, decline.task].min())
            minima[decline.task] = min(low, minima.get(decline.task, low))
    return dict(sorted(minima.items()))


def _mean(values: list[float]) -> float | None:
    return float(np.mean(values)) if values else None


def boundary_free_metrics(
    records: pd.DataFrame | RecordArrays,
    mix: np.ndarray | None,
    recovery_eps: float = 0.02,
    chance: Chance = None,
) -> dict[str, Any]:
    """The summary entries of this module: ``online_acc``, ``anytime_acc`` and, given the stream's
    ``mix``, ``decline_min_acc``, ``decline_gap_depth_mean``, ``decline_recovery_time_mean``,
    ``decline_recovered_fraction``, the pair counts and ``declines`` (every pair, as dicts).
    Without a mix the decline entries are ``None``: they are undefined, not zero."""
    ra = record_arrays(records)
    out: dict[str, Any] = {
        "online_acc": online_accuracy(ra),
        "anytime_acc": anytime_average_accuracy(ra),
    }
    keys = ("min_acc", "gap_depth_mean", "recovery_time_mean", "recovered_fraction", "pairs")
    keys += ("forgotten_pairs", "recovered_pairs")
    if mix is None:
        return {**out, **{f"decline_{k}": None for k in keys}, "declines": None}
    gaps = decline_gaps(ra, mix, recovery_eps, chance)
    counted = [g for g in gaps if not g.forgotten]
    recovered = [g.recovery_time for g in counted if g.recovery_time is not None]
    minima = decline_minima(ra, mix)
    out.update(
        {
            "decline_min_acc": _mean(list(minima.values())),
            "decline_gap_depth_mean": _mean([g.depth for g in counted]),
            "decline_recovery_time_mean": _mean([float(r) for r in recovered]),
            "decline_recovered_fraction": len(recovered) / len(counted) if counted else None,
            "decline_pairs": len(counted),
            "decline_forgotten_pairs": len(gaps) - len(counted),
            "decline_recovered_pairs": len(recovered),
            "declines": [g.to_dict() for g in gaps],
        }
    )
    return out
