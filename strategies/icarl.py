"""iCaRL: herding exemplars, sigmoid distillation and a nearest-mean-of-exemplars classifier.

Rebuffi, Kolesnikov, Sperl & Lampert, "iCaRL: Incremental Classifier and Representation
Learning", CVPR 2017 (arXiv:1611.07725). A memory of at most K exemplars, split equally over the
classes seen, keeps each class's samples in herding order. Each phase

- trains on the new data and the exemplars with a sigmoid binary cross-entropy whose targets are
  one-hot, except on the classes learned before, where they are the sigmoid outputs of the
  network as it was when the phase began (Alg. 3);
- ends by cutting every old class's exemplar set to its first m = ⌊K / classes seen⌋ samples
  (Alg. 5) and choosing m exemplars of each new class by herding (Alg. 4).

Prediction ignores the head (Alg. 1): the class whose mean exemplar feature is nearest to the
sample's feature wins. Features are L2-normalised, and so are the class means.

As in the official code, aimagelab/mammoth@e75a491c69fd:

- the loss is ``F.binary_cross_entropy_with_logits`` averaged over every output of the
  fixed-width head, those of classes not seen yet included (target 0); the previous network is a
  frozen copy in eval mode, run on the same augmented inputs (models/icarl.py L115-117,
  L146-156; the copy is made after ``net.eval()``, L171-173);
- herding works on the normalised features of the un-augmented samples in eval mode, and each
  step takes the sample not chosen yet that brings the mean of the chosen ones nearest to the
  class mean (utils/buffer.py L741, L801-805, L818-840); the memory per class is
  ``buffer_size // n_seen_classes`` (L765) and an old class keeps its first exemplars (L773-781);
- a class scores minus the squared distance between the normalised feature and its re-normalised
  mean (models/icarl.py L84-96, L183-222).

Where clbench's loop and continual evaluator ask for more (docs/methods/icarl.md):

- iCaRL trains on the union of new data and exemplars (Mammoth's ``icarl_replay``,
  utils/buffer.py L24-63), but a phase's update count is fixed by its new data. Each update
  therefore appends ``ceil(|memory| / batches per epoch)`` exemplars drawn from the memory to the
  new batch, one forward over both: an epoch replays as many exemplars as the memory holds;
- the evaluator also measures mid-phase, before the classes being learned have exemplars. Such a
  class is represented by m of its training samples in the phase, evenly spaced in dataset order
  (the number of exemplars it will get), so a class mean never averages more than the memory
  holds. The means are recomputed at the first evaluation after an update or a memory change,
  and kept in the checkpoint;
- averaging in the features of horizontally flipped exemplars (Mammoth L209-218, Avalanche) is
  off unless ``flip_means``: clbench's default data does not train with flips;
- a class may be trained in one phase only (both references assume it), and K must leave each
  class an exemplar; both are checked before the run.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F

from clbench.data.stream import Batch
from clbench.engine.evaluator import evaluation_mode
from clbench.registry import STRATEGIES
from clbench.scenario.plan import PhasePart, ScenarioPlan
from clbench.strategies.specs.icarl import ICaRLSpec
from clbench.strategy import Strategy, StrategyContext
from clbench.strategy.buffers import IndexBuffer

# samples per feature forward for herding and class means (eval.batch_size's default: the
# evaluator forwards the same model at this size)
FEATURE_BATCH = 1024
# the score of a class with no mean yet: the lowest a class with a mean can get (the squared
# distance between opposite unit vectors), so it never wins and the evaluator's loss stays finite
NO_MEAN_SCORE = -4.0


class ExemplarSets(IndexBuffer):
    """The exemplar sets P_1..P_t: dataset references grouped by class, each in herding order."""

    def add_class(self, index: torch.Tensor, task: torch.Tensor, target: torch.Tensor) -> None:
        """Append one class's exemplars, most important first."""
        self.index = torch.cat([self.index, index.cpu()])
        self.task = torch.cat([self.task, task.cpu()])
        self.target = torch.cat([self.target, target.cpu()])

    def reduce(self, per_class: int) -> None:
        """Keep the first ``per_class`` exemplars of every class (Alg. 5)."""
        rank = torch.zeros_like(self.target)
        for cls in self.target.unique().tolist():  # one iteration per class
            members = self.target == cls
            rank[members] = torch.arange(int(members.sum()))
        keep = rank < per_class
        self.index, self.task, self.target = self.index[keep], self.task[keep], self.target[keep]

    def classes(self) -> torch.Tensor:
        return self.target.unique()


def herding_order(features: torch.Tensor, m: int) -> torch.Tensor:
    """Positions of ``min(m, n)`` of the ``n`` rows of ``features`` (one class, L2-normalised),
    in the order herding picks them (Alg. 4): the k-th pick is the sample not chosen yet that
    brings the mean of the k chosen nearest to the mean of all ``n``."""
    n = features.shape[0]
    class_mean = features.mean(0)
    chosen_sum = torch.zeros_like(class_mean)
    free = torch.ones(n, dtype=torch.bool, device=features.device)
    picks = []
    for k in range(1, min(m, n) + 1):
        cost = (class_mean - (features + chosen_sum) / k).norm(dim=1)
        pick = int(cost.masked_fill(~free, math.inf).argmin())
        picks.append(pick)
        free[pick] = False
        chosen_sum = chosen_sum + features[pick]
    return torch.tensor(picks, dtype=torch.long)


def nme_scores(features: torch.Tensor, means: torch.Tensor, has_mean: torch.Tensor) -> torch.Tensor:
    """Minus the squared distance of each normalised feature to each (unit) class mean (Alg. 1);
    classes without a mean get `NO_MEAN_SCORE`."""
    f = F.normalize(features.float(), dim=1)
    squared = f.pow(2).sum(1, keepdim=True) - 2 * f @ means.T + means.pow(2).sum(1)
    return (-squared).masked_fill(~has_mean, NO_MEAN_SCORE)


@STRATEGIES.register("icarl")
class ICaRL(ICaRLSpec, Strategy):
    config: ICaRLSpec.Config

    def problems_with(self, plan: ScenarioPlan) -> list[str]:
        problems = super().problems_with(plan)
        first_phase: dict[int, int] = {}
        for k, phase in enumerate(plan.phases):
            for output in {o for p in phase.parts for o in plan.tasks[p.task].output_ids}:
                if first_phase.setdefault(output, k) != k:
                    problems.append(
                        f"trains each class in one phase only (exemplar sets and distillation, "
                        f"Alg. 2-3), but this plan trains output {output} in phases "
                        f"{first_phase[output]} and {k}"
                    )
                    return problems
        if self.config.buffer_size < plan.num_outputs:
            problems.append(
                f"strategy.buffer_size {self.config.buffer_size} leaves some of the "
                f"{plan.num_outputs} classes without an exemplar; use at least {plan.num_outputs}"
            )
        return problems

    def setup(self, ctx: StrategyContext) -> None:
        super().setup(ctx)
        self.buffer = ExemplarSets(self.config.buffer_size)
        self.revision = 0  # bumped at every memory change: the class means depend on it
        self.teacher: torch.nn.Module | None = None  # the network as this phase began
        self.old = torch.zeros(ctx.plan.num_outputs, dtype=torch.bool, device=ctx.device)
        # the class means, cached with the (update, memory revision) they were computed at
        self.means: torch.Tensor | None = None
        self.has_mean: torch.Tensor | None = None
        self.means_key: tuple[int, int] | None = None

    def memory(self) -> ExemplarSets:
        return self.buffer

    # -- training (Alg. 3) -------------------------------------------------------------------
    def before_phase(self, phase_index: int) -> None:
        if len(self.buffer):
            self.teacher = self._frozen_copy()
            self.old = torch.zeros_like(self.old)
            self.old[self.buffer.classes().to(self.old.device)] = True

    def observe(self, batch: Batch) -> torch.Tensor:
        joined = batch
        n_replay = self._replay_size()
        if n_replay:
            pos = self.sample_memory(self.buffer, n_replay)
            replay = self.make_batch(self.buffer.index[pos], self.buffer.task[pos])
            joined = Batch.joined(batch, replay)
        logits = self.model(joined.x)
        targets = F.one_hot(joined.y, logits.shape[1]).float()
        if self.teacher is not None:
            with torch.no_grad():
                previous = torch.sigmoid(self.teacher(joined.x).float())
            targets = torch.where(self.old, previous, targets)
        loss = F.binary_cross_entropy_with_logits(logits.float(), targets)
        term = self.plugin_loss(logits, joined)  # once, on the whole forward
        if term is not None:
            loss = loss + term
        self.step(loss)
        return loss.detach()

    def _replay_size(self) -> int:
        if not len(self.buffer):
            return 0
        if self.config.replay_batch_size is not None:
            return self.config.replay_batch_size
        loop = self.ctx.loop
        return math.ceil(len(self.buffer) / loop.plan.batches_per_epoch[loop.phase])

    def _frozen_copy(self) -> torch.nn.Module:
        teacher = copy.deepcopy(self.model).eval()
        return teacher.requires_grad_(False)

    # -- exemplar sets (Alg. 4-5) ------------------------------------------------------------
    def after_phase(self, phase_index: int) -> None:
        index, task = _flatten(self.ctx.loop.plan.parts[phase_index])
        features, target = self._features(index, task)
        new_classes = target.unique()
        seen = torch.cat([self.buffer.classes(), new_classes]).unique()
        per_class = self.config.buffer_size // len(seen)
        self.buffer.reduce(per_class)
        for cls in new_classes.tolist():
            members = torch.nonzero(target == cls).squeeze(1)
            chosen = members[herding_order(features[members], per_class)]
            self.buffer.add_class(index[chosen], task[chosen], target[chosen])
        self.revision += 1

    def _features(
        self, index: torch.Tensor, task: torch.Tensor, flip: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """L2-normalised features (eval mode, un-augmented) of samples ``index`` and their
        targets, on the CPU; with ``flip``, the features of the horizontally mirrored images
        follow (image inputs only), with the same targets."""
        plain, mirrored, targets = [], [], []
        with evaluation_mode(self.model):
            for start in range(0, len(index), FEATURE_BATCH):
                sl = slice(start, start + FEATURE_BATCH)
                b = self.data.make_batch(index[sl], task[sl])
                plain.append(self._embed(b.x))
                targets.append(b.y.cpu())
                if flip and b.x.dim() == 4:
                    mirrored.append(self._embed(b.x.flip(-1)))
        target = torch.cat(targets)
        if mirrored:
            return torch.cat(plain + mirrored), torch.cat([target, target])
        return torch.cat(plain), target

    def _embed(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.model.features(x).float(), dim=1).cpu()

    # -- prediction (Alg. 1) -----------------------------------------------------------------
    def predict(self, x: torch.Tensor, task: torch.Tensor) -> torch.Tensor:
        means, has_mean = self._class_means()
        return nme_scores(self.model.features(x), means, has_mean)

    def _class_means(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The unit mean feature of each class and which classes have one, for the network and
        memory as they are now (recomputed once per update and memory change)."""
        key = (self.ctx.loop.step, self.revision)
        if self.means is None or self.has_mean is None or self.means_key != key:
            index, task = self._mean_samples()
            features, target = self._features(index, task, self.config.flip_means)
            outputs = self.ctx.plan.num_outputs
            sums = torch.zeros(outputs, features.shape[1]).index_add_(0, target, features)
            counts = torch.bincount(target, minlength=outputs)
            device = self.ctx.device
            self.means = F.normalize(sums, dim=1).to(device)  # the mean, re-normalised
            self.has_mean = (counts > 0).to(device)
            self.means_key = key
        return self.means, self.has_mean

    def _mean_samples(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The exemplars, and for each class of the current phase that has none yet, ``m`` of
        its training samples evenly spaced in dataset order."""
        index, task = _flatten(self.ctx.loop.phase_parts)
        table = self.data.label_table  # [task, base class] -> model target
        base = self.data.dataset.train.y[index].to(table.device)
        target = table[task.to(table.device), base].cpu()
        stored = self.buffer.classes()
        waiting = target.unique()
        waiting = waiting[~torch.isin(waiting, stored)]
        per_class = self.config.buffer_size // max(len(stored) + len(waiting), 1)
        picks = [index.new_empty(0)]
        for cls in waiting.tolist():
            members = torch.nonzero(target == cls).squeeze(1)
            k = min(per_class, len(members))
            picks.append(members[torch.arange(k) * len(members) // k])
        chosen = torch.cat(picks)
        return torch.cat([self.buffer.index, index[chosen]]), torch.cat(
            [self.buffer.task, task[chosen]]
        )

    # -- checkpoint --------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        teacher = None if self.teacher is None else self.teacher.state_dict()
        return {
            **super().state_dict(),
            "buffer": self.buffer.state_dict(),
            "revision": self.revision,
            "teacher": teacher,
            "old": self.old,
            "means": self.means,
            "has_mean": self.has_mean,
            "means_key": None if self.means_key is None else list(self.means_key),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.buffer.load_state_dict(state["buffer"])
        self.revision = int(state["revision"])
        self.teacher = None
        if state["teacher"] is not None:
            self.teacher = self._frozen_copy()
            self.teacher.load_state_dict(state["teacher"])
        device = self.ctx.device
        self.old = state["old"].to(device)
        self.means = None if state["means"] is None else state["means"].to(device)
        self.has_mean = None if state["has_mean"] is None else state["has_mean"].to(device)
        key = state["means_key"]
        self.means_key = None if key is None else (int(key[0]), int(key[1]))


def _flatten(parts: Sequence[PhasePart]) -> tuple[torch.Tensor, torch.Tensor]:
    """The (dataset index, task id) of every sample of ``parts``, on the CPU."""
    index = torch.cat([torch.as_tensor(p.indices, dtype=torch.long) for p in parts])
    task = torch.cat([torch.full((len(p.indices),), p.task, dtype=torch.long) for p in parts])
    return index, task
