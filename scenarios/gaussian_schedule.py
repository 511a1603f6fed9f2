"""Gaussian schedule: each class's sampling probability is a Gaussian bump over time, so the class
mix drifts smoothly and the stream has no boundary at all.

The stream is ``n_phases`` phases of ``phase_size`` samples. With C classes in a (seeded) order,
class r's bump is centred at the fraction μ_r = (r + 1/2) / C of the stream and has standard
deviation σ = ``width`` / C (``width`` in units of the spacing between neighbouring centres).
Phase k is drawn at its midpoint t_k = (k + 1/2) / n_phases with the probabilities

    p_r(k) = exp(-(t_k - μ_r)^2 / (2σ^2)) / Σ_c exp(-(t_k - μ_c)^2 / (2σ^2)),

stored as the phase's ``mix`` (rounded to 6 decimals). A phase's class counts are a multinomial
draw of ``phase_size`` samples from p(k) (``counts: sampled``, each sample's class drawn
independently, as Avalanche draws each sample's experience in its continuous-decay stream) or the
counts closest to ``phase_size · p(k)`` (``counts: rounded``, largest remainders). A class's samples
are taken in a random order without replacement and the order restarts, reshuffled, once the
class is used up (Avalanche's ``CyclicSampler``), so a sample comes back only after every other
sample of its class.

This is the smooth counterpart of Avalanche's ``split_continuous_linear_decay_stream``
(avalanche/benchmarks/scenarios/online.py, avalanche-lib 0.6; after Zeno et al., "Task Agnostic
Continual Learning Using Online Variational Bayes", arXiv:1803.10123), whose task probabilities
rise and fall linearly between plateaus; gradually changing class distributions of this kind are
the task-free setting of Shanahan, Kaplanis & Mitrović, "Encoders and Ensembles for Task-Free
Continual Learning" (arXiv:2105.13327). The bump formula above is clbench's own statement of it.

Each class is a task (one head over all classes, ``setting: class``, a class's target is its id's
rank), numbered by first appearance; a phase's current task is the class with the most samples
in it. A class that is never drawn is refused (the stream is too short or too narrow for it), so
no class is silently dropped.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, ClassVar, Literal

import numpy as np
from pydantic import Field

from clbench.registry import SCENARIOS
from clbench.scenario import ScenarioBuilder
from clbench.scenarios._class_streams import class_stream_plan
from clbench.scenarios._common import param_error, seeded_rng
from clbench.scenarios.power_law import apportion

if TYPE_CHECKING:
    from clbench.scenario.base import PlanData
    from clbench.scenario.plan import ScenarioPlan, Setting

_ORDER_STREAM = 50  # `seeded_rng` streams (see scenarios._common.seeded_rng)
_COUNT_STREAM = 51
_SAMPLE_STREAM = 52
MIX_DECIMALS = 6  # a phase's stored mix: enough to plot and to find where a share falls


def gaussian_probs(n_classes: int, n_phases: int, width: float) -> np.ndarray:
    """``P[k, r]``: the probability of class position r in phase k (module doc formula)."""
    centres = (np.arange(n_classes) + 0.5) / n_classes
    times = (np.arange(n_phases) + 0.5) / n_phases
    sigma = width / n_classes
    logits = -((times[:, None] - centres[None, :]) ** 2) / (2 * sigma**2)
    logits -= logits.max(axis=1, keepdims=True)  # a softmax: stable for narrow bumps too
    weights = np.exp(logits)
    return weights / weights.sum(axis=1, keepdims=True)


class CyclicDraws:
    """Samples of one class in a random order without replacement, reshuffled when used up."""

    def __init__(self, pool: np.ndarray, rng: np.random.Generator) -> None:
        if not len(pool):
            raise ValueError("a class without training samples cannot be drawn")
        self.pool, self.rng = pool, rng
        self.order = rng.permutation(pool)
        self.next = 0

    def take(self, n: int) -> np.ndarray:
        taken = []
        while n > 0:
            if self.next == len(self.order):
                self.order, self.next = self.rng.permutation(self.pool), 0
            chunk = self.order[self.next : self.next + n]
            taken.append(chunk)
            self.next += len(chunk)
            n -= len(chunk)
        return np.concatenate(taken) if taken else np.zeros(0, dtype=np.int64)


@SCENARIOS.register("gaussian_schedule")
class GaussianSchedule(ScenarioBuilder):
    """Class probabilities as Gaussian bumps over time: a smoothly drifting class mix."""

    summary: ClassVar[str] = (
        "Gaussian schedule: each class's sampling probability is a Gaussian bump over the "
        "stream (smooth drift, no boundary); short phases drawn from the mix at their time."
    )

    class Config(ScenarioBuilder.Config):
        phase_size: int = Field(
            10,
            ge=1,
            description="Samples per phase; the mix is constant within a phase (10: an online "
            "incoming batch; set train.batch_size to it for one update per phase).",
        )
        n_phases: int | None = Field(
            None,
            ge=1,
            description="Phases of the stream; default: one pass over the training set in "
            "expectation (ceil(training samples / phase_size)).",
        )
        width: float = Field(
            0.5,
            gt=0,
            le=100,
            description="Standard deviation of each bump in units of the spacing between "
            "neighbouring class centres (0.5: each class peaks at ~79% of its phases' samples).",
        )
        counts: Literal["sampled", "rounded"] = Field(
            "sampled",
            description="A phase's class counts: a multinomial draw from the mix (sampled) or "
            "the counts closest to phase_size x mix (rounded, largest remainders).",
        )
        shuffle_classes: bool = Field(
            True, description="Order the bumps by a random class order (seeded); false: by id."
        )

    @property
    def setting(self) -> Setting:
        return "class"

    def build(self, dataset: PlanData, seed: int) -> ScenarioPlan:
        """Probabilities per phase, class counts per phase, then each class's samples in turn."""
        cfg = self.config
        n_classes = dataset.num_classes
        y_train = np.asarray(dataset.train.y)
        n_phases = cfg.n_phases or math.ceil(len(y_train) / cfg.phase_size)
        if cfg.shuffle_classes:
            order = seeded_rng(seed, _ORDER_STREAM).permutation(n_classes).tolist()
        else:
            order = list(range(n_classes))
        probs = gaussian_probs(n_classes, n_phases, cfg.width)  # by bump position
        count_rng = seeded_rng(seed, _COUNT_STREAM)
        caps = np.full(n_classes, cfg.phase_size)
        counts = np.stack(
            [
                count_rng.multinomial(cfg.phase_size, p)
                if cfg.counts == "sampled"
                else apportion(cfg.phase_size, p, caps)
                for p in probs
            ]
        )
        never = [order[r] for r in np.flatnonzero(counts.sum(axis=0) == 0)]
        if never:
            raise param_error(
                "n_phases",
                n_phases,
                f"a stream long enough for every class to be drawn (classes {never} never are "
                f"at width {cfg.width}); raise scenario.n_phases, phase_size or width",
            )
        sample_rng = seeded_rng(seed, _SAMPLE_STREAM)
        # class position = class id: every class is used, a class's target is its id
        draws = [CyclicDraws(np.flatnonzero(y_train == c), sample_rng) for c in range(n_classes)]
        phases, mixes = [], []
        for k in range(n_phases):
            phase = {}
            for r in np.flatnonzero(counts[k]):
                phase[order[r]] = draws[order[r]].take(int(counts[k, r]))
            phases.append(phase)
            mix = np.zeros(n_classes)
            mix[order] = np.round(probs[k], MIX_DECIMALS)
            mixes.append(mix)
        return class_stream_plan(self, dataset, list(range(n_classes)), phases, mixes)
