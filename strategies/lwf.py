"""Learning without Forgetting (LwF): distil the outputs of the classes learned before a phase.

Li & Hoiem, "Learning without Forgetting", IEEE TPAMI 2017 (ECCV 2016; arXiv:1606.09282). No
memory: each update adds to the cross-entropy on the new batch a distillation term that keeps the
old outputs of the network close to those the network gave *when the phase began*, on the same
new inputs (the paper's L_old: cross-entropy between temperature-softened probabilities of the
recorded and the current outputs, weighted by λ_o). Equation numbers are not re-checked against
the paper's text; see docs/methods/lwf.md.

As Avalanche's `LearningWithoutForgetting`
(ContinualAI/avalanche@b34abe5c93ad:avalanche/training/regularization.py L57-164, v0.6.0, and
``plugins/lwf.py``):

- the teacher is a frozen copy of the model as the phase begins (Avalanche copies it at the end
  of the previous experience: the same weights), run on the very batch the student trains on
  (augmented inputs included);
- the term is ``alpha · KL(softmax(teacher/T) ‖ softmax(student/T))`` (``batchmean``) over the
  outputs seen before the phase only, with no T² factor: the same gradient as Mammoth's
  ``modified_kl_div`` (aimagelab/mammoth@e75a491c69fd:models/lwf.py L13-19, L76-77), which is the
  cross-entropy and differs from the KL by the teacher's entropy, a constant;
- in task-incremental runs each old task's outputs form their own softmax and the terms are
  summed (Avalanche's multi-head branch, the paper's one L_old per old task); otherwise all old
  outputs form one softmax (Avalanche's single-head branch).

Unlike Avalanche (a train-mode copy), the teacher runs in eval mode, as Mammoth's recorded
logits are (``self.net.eval()`` in ``begin_task``): BatchNorm uses its running statistics and
dropout is off, so the targets are the deterministic outputs of the phase-start network. With
``alpha = 0`` the teacher is never built or run, so ``lwf`` is exactly ``naive``.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
import torch.nn.functional as F

from clbench.data.stream import Batch
from clbench.registry import STRATEGIES
from clbench.strategies.specs.lwf import LearningWithoutForgettingSpec
from clbench.strategy import Strategy, StrategyContext


@STRATEGIES.register("lwf")
class LearningWithoutForgetting(LearningWithoutForgettingSpec, Strategy):
    config: LearningWithoutForgettingSpec.Config

    def setup(self, ctx: StrategyContext) -> None:
        super().setup(ctx)
        # the model as the current phase began; rebuilt by `before_phase`, also on a resume (the
        # engine replays the phase start), so it is not checkpointed
        self.teacher: torch.nn.Module | None = None
        # output indices learned before the current phase, one group per softmax
        self.old_groups: list[torch.Tensor] = []

    def before_phase(self, phase_index: int) -> None:
        self.teacher = None
        if self.old_groups and self.config.alpha > 0:
            self.teacher = copy.deepcopy(self.model).eval().requires_grad_(False)
            self.teacher.zero_grad(set_to_none=True)  # the copy took the last update's grads

    def observe(self, batch: Batch) -> torch.Tensor:
        logits = self.model(batch.x)
        loss = self.loss(logits, batch)  # cross-entropy, plus any plugin's loss terms
        if self.teacher is not None:
            with torch.no_grad():
                target = self.teacher(batch.x)
            loss = loss + self.config.alpha * self.distillation(logits, target)
        self.step(loss)
        return loss.detach()

    def distillation(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Σ over old-output groups of KL(softmax(target/T) ‖ softmax(logits/T)), batch mean."""
        t = self.config.temperature
        terms = [
            F.kl_div(
                F.log_softmax(logits[:, group].float() / t, dim=1),
                F.softmax(target[:, group].float() / t, dim=1),
                reduction="batchmean",
            )
            for group in self.old_groups
        ]
        return torch.stack(terms).sum()

    def after_phase(self, phase_index: int) -> None:
        loop = self.ctx.loop
        if self.ctx.plan.task_ids_at_test:  # one softmax per old task, as at test time
            masks = {
                tuple(loop.output_mask[t].nonzero().flatten().tolist()) for t in loop.seen_tasks
            }
            groups = [torch.tensor(group) for group in sorted(masks) if group]
        else:
            groups = [loop.seen_outputs.nonzero().flatten()]
        self.old_groups = [g.to(device=self.ctx.device, dtype=torch.long) for g in groups]

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "old_groups": [g.cpu() for g in self.old_groups]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.old_groups = [g.to(self.ctx.device) for g in state["old_groups"]]
