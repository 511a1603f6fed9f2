"""SLCA: Slow Learner with Classifier Alignment, plus its `seq_ft` and `linear_probe` baselines.

Zhang et al., "SLCA: Slow Learner with Classifier Alignment for Continual Learning on a
Pre-trained Model", ICCV 2023 (arXiv:2303.05118); official code GengDavid/SLCA @ 169d4e6b91e3
(``models/slca.py``, ``convs/linears.py``, ``exps/slca/*.json``).

Per task (the rows of ``model.head`` owned by a task are that task's head):

1. Slow learner: SGD with two parameter groups, backbone at ``lr * backbone_lr_scale`` (1/100
   in the paper) and head at ``lr``; cross-entropy over the current task's logits only; all other
   head rows are frozen (no gradient, no weight decay, as ``requires_grad=False`` heads are).
2. Class statistics: per class learned in the phase, mean and covariance (+ ridge) of the
   backbone features of its training images in eval mode (`class_stats`); frozen after.
3. From the second task on, classifier alignment: Gaussian pseudo-features (256 per seen class)
   train all seen head rows for a few epochs (cosine lr), with logit normalisation (tau 0.1).
4. Official quirk (``restore_heads``): the aligned heads are used for the evaluation at the end
   of the phase, then restored to their pre-alignment values before the next task trains.

`seq_ft` is the same code with the backbone at the full lr and no alignment; `linear_probe`
freezes the backbone (``backbone_lr_scale: 0``, official ``fix_bcb``) without alignment.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from clbench.data.stream import Batch
from clbench.registry import STRATEGIES
from clbench.strategies.slca.class_stats import ClassGaussians
from clbench.strategies.specs.slca import LinearProbeSpec, SeqFTSpec, SLCASpec
from clbench.strategy import Strategy

_FEATURE_BATCH = 256  # batch size of the statistics pass (no gradients)


@STRATEGIES.register("slca")
class SLCA(SLCASpec, Strategy):
    def setup(self, ctx: Any) -> None:
        self.stats = ClassGaussians(ctx.model.feature_dim, self.config.cov_ridge)
        self.learned_tasks: list[int] = []  # task ids in the order they were first trained
        self._backup: dict[str, torch.Tensor] | None = None
        self._train_rows: torch.Tensor | None = None  # bool [num_outputs]: rows updated now
        self.ca_losses: list[float] = []
        if self.config.backbone_lr_scale == 0:
            ctx.model.backbone.requires_grad_(False)
        super().setup(ctx)

    # --------------------------------------------------------------------- slow learner
    @property
    def backbone_frozen(self) -> bool:
        return self.config.backbone_lr_scale == 0

    def configure_optimizer(self) -> torch.optim.Optimizer:
        """Two groups: backbone at ``lr * backbone_lr_scale``, head at ``lr``."""
        opt, head = self.ctx.optimizer, self.model.head
        groups = [{"params": list(head.parameters()), "lr": opt.lr, "name": "head"}]
        if not self.backbone_frozen:
            groups.insert(
                0,
                {
                    "params": list(self.model.backbone.parameters()),
                    "lr": opt.lr * self.config.backbone_lr_scale,
                    "name": "backbone",
                },
            )
        return opt.build(groups)

    def before_phase(self, phase_index: int) -> None:
        if self._backup is not None:  # official fc.recall(): undo the last alignment
            with torch.no_grad():
                for name, p in self.model.head.named_parameters():
                    p.copy_(self._backup[name])
            self._backup = None
        # fresh optimizer per task, as the official code (no momentum carried across tasks)
        self.optimizer = self.configure_optimizer()
        rows = torch.zeros(self.model.num_outputs, dtype=torch.bool, device=self.ctx.device)
        for part in self.training_parts(phase_index):
            rows[list(self.ctx.plan.tasks[part.task].output_ids)] = True
        self._train_rows = rows

    def _set_train_mode(self) -> None:
        self.model.train()
        if self.backbone_frozen:
            self.model.backbone.eval()  # BatchNorm statistics and dropout stay pretrained

    def observe(self, batch: Batch) -> torch.Tensor:
        self._set_train_mode()
        logits = self.model(batch.x)
        if self.config.current_task_logits:
            # current-task (per-sample task) logits only: CE of the task's own head
            logits = logits.masked_fill(~self.data.output_mask[batch.task], float("-inf"))
            loss = F.cross_entropy(logits, batch.y)
            term = self.plugin_loss(logits, batch)
            if term is not None:
                loss = loss + term
        else:
            loss = self.loss(logits, batch)
        if self.config.freeze_old_heads and self._train_rows is not None:
            head = self.model.head
            frozen = ~self._train_rows
            kept = (head.weight[frozen].detach().clone(), head.bias[frozen].detach().clone())
            self.step(loss)
            with torch.no_grad():
                head.weight[frozen] = kept[0]
                head.bias[frozen] = kept[1]
        else:
            self.step(loss)
        return loss.detach()

    # --------------------------------------------------------------- statistics and CA
    def after_phase(self, phase_index: int) -> None:
        parts = self.training_parts(phase_index)
        for part in parts:
            if part.task not in self.learned_tasks:
                self.learned_tasks.append(part.task)
        if self.config.ca_epochs == 0:
            return  # statistics serve only the alignment
        self._fit_statistics(parts)
        if len(self.learned_tasks) > 1:
            if self.config.restore_heads:
                self._backup = {
                    n: p.detach().clone() for n, p in self.model.head.named_parameters()
                }
            self._align_classifier()

    @torch.no_grad()
    def _fit_statistics(self, parts: Any) -> None:
        """Mean/cov of the features of classes first learned now (old ones stay frozen)."""
        known = set(self.stats.classes)
        was_training = self.model.training
        self.model.eval()
        for part in parts:
            index = torch.as_tensor(part.indices, dtype=torch.long)
            for chunk in index.split(_FEATURE_BATCH):
                task = torch.full_like(chunk, part.task)
                batch = self.data.make_batch(chunk, task)
                keep = torch.tensor([int(y) not in known for y in batch.y.tolist()])
                if not bool(keep.any()):
                    continue
                keep = keep.to(batch.x.device)
                feats = self.model.features(batch.x[keep]).float()
                self.stats.accumulate(feats, batch.y[keep])
        self.stats.finalize()
        self.model.train(was_training)

    def _mean_scales(self) -> dict[int, float]:
        """Official "decay": after task t, class of learned task t_c -> 0.9 + 0.1(t_c+1)/(t+1)."""
        if not self.config.shrink_old_means:
            return {}
        t = len(self.learned_tasks) - 1
        scales = {}
        for t_c, task_id in enumerate(self.learned_tasks):
            for c in self.ctx.plan.tasks[task_id].output_ids:
                scales[c] = 0.9 + 0.1 * (t_c + 1) / (t + 1)
        return scales

    def _task_groups(self, seen: list[int]) -> list[torch.Tensor]:
        """Positions (within the seen outputs) of each learned task's outputs."""
        pos = {c: i for i, c in enumerate(seen)}
        groups = []
        for task_id in self.learned_tasks:
            ids = [pos[c] for c in self.ctx.plan.tasks[task_id].output_ids if c in pos]
            if ids:
                groups.append(torch.tensor(ids, device=self.ctx.device))
        return groups

    def _align_classifier(self) -> None:
        """Train all seen head rows on Gaussian pseudo-features (backbone unused)."""
        cfg = self.config
        head = self.model.head
        device = self.ctx.device
        seen = self.stats.classes
        seen_t = torch.tensor(seen, device=device)
        groups = self._task_groups(seen)
        target_of = torch.full((self.model.num_outputs,), -1, dtype=torch.long, device=device)
        target_of[seen_t] = torch.arange(len(seen), device=device)
        unseen = torch.ones(self.model.num_outputs, dtype=torch.bool, device=device)
        unseen[seen_t] = False
        kept = (head.weight[unseen].detach().clone(), head.bias[unseen].detach().clone())

        o = self.ctx.optimizer
        lr = cfg.ca_lr if cfg.ca_lr is not None else o.lr
        opt = torch.optim.SGD(
            head.parameters(), lr=lr, momentum=o.momentum, weight_decay=o.weight_decay
        )
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cfg.ca_epochs)
        scales = self._mean_scales()
        gen = self.ctx.generator
        was_training = self.model.training
        self.model.eval()
        for _ in range(cfg.ca_epochs):
            x, y = self.stats.sample(seen, cfg.ca_samples_per_class, gen, scales, device)
            order = torch.randperm(len(y), generator=gen).to(device)
            x, y = x[order], target_of[y[order]]
            for xb, yb in zip(x.split(cfg.ca_batch_size), y.split(cfg.ca_batch_size), strict=True):
                z = head(xb)[:, seen_t]
                loss = F.cross_entropy(self._normalise(z, groups), yb)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                self.ca_losses.append(float(loss.detach()))
            sched.step()
        with torch.no_grad():  # rows of classes not seen yet stay untouched (weight decay)
            head.weight[unseen] = kept[0]
            head.bias[unseen] = kept[1]
        self.model.train(was_training)

    def _normalise(self, z: torch.Tensor, groups: list[torch.Tensor]) -> torch.Tensor:
        tau = self.config.ca_logit_norm
        if tau == 0:
            return z
        if self.config.logit_norm_mode == "global":
            norm = z.norm(dim=1, keepdim=True) + 1e-7
        else:  # official: mean over tasks of per-task norms (each + 1e-7)
            norms = torch.stack([z[:, g].norm(dim=1) + 1e-7 for g in groups], dim=1)
            norm = norms.mean(dim=1, keepdim=True)
        return z / norm / tau

    # ------------------------------------------------------------------------ bookkeeping
    def report(self) -> dict[str, Any]:
        lrs = {g.get("name", str(i)): g["lr"] for i, g in enumerate(self.optimizer.param_groups)}
        return {
            "lr": lrs,
            "backbone_frozen": self.backbone_frozen,
            "classes_with_statistics": len(self.stats.classes),
            "statistics_bytes": self.stats.nbytes(),
            "ca_updates": len(self.ca_losses),
            "ca_final_loss": self.ca_losses[-1] if self.ca_losses else None,
        }

    def state_dict(self) -> dict[str, Any]:
        return {
            **super().state_dict(),
            "stats": self.stats.state_dict(),
            "learned_tasks": list(self.learned_tasks),
            "backup": self._backup,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.stats.load_state_dict(state["stats"])
        self.learned_tasks = list(state["learned_tasks"])
        self._backup = state["backup"]


@STRATEGIES.register("seq_ft")
class SeqFT(SeqFTSpec, SLCA):
    """SLCA with its spec's defaults: the backbone at the full lr, no alignment."""


@STRATEGIES.register("linear_probe")
class LinearProbe(LinearProbeSpec, SLCA):
    """SLCA with its spec's defaults: a frozen backbone, no alignment."""
