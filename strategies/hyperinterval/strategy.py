"""HyperInterval: a hypernetwork maps per-task embedding intervals to target-weight intervals.

Krukowski et al. 2024, "HyperInterval: Hypernetwork approach to training weight interval regions
in continual learning" (arXiv:2405.15444; official code gmum/HyperInterval@d42305d, whose files
are named below).

- ``variant: standard`` (`train_non_forced_scenario.py`, TIL): task t has an embedding centre
  e_t ~ N(0, 1) and a learnable ρ_t (init softmax(1_M)); the box is e_t ± ε_it·softmax(ρ_t).
- ``variant: nested`` (`train_nested_scenario.py`): the centre is c_t = σ·cos(e_t) with
  σ = ε_it/(2M) and the radius is fixed at ε_it/M, so every box contains [−ε/(2M), ε/(2M)]^M and the
  intersection of all boxes is never empty; e_t starts as a copy of e_{t−1}; the regulariser covers
  lower, middle and upper outputs.
- ε_it is warmed up linearly over the first half of each task. The hypernetwork (MLP, ReLU) maps
  the box by IBP to a box of target weights; the target (`targets`: an MLP with
  exact interval propagation, or a CNN with the official relaxed three-pass bounds or exact IBP)
  gives logits (zL, zM, zU); the loss is κ·CE(zM) + (1−κ)·CE(ẑ), ẑ the worst case, κ as official.
- A hypernet output regulariser keeps earlier embeddings' outputs (targets computed once per task
  at ε), with the official extra division by t (`reg_scaling`). A fresh Adam per task.
- Model selection (`selection` option, `selection.py`): last iterate, or the official best
  copy (validation accuracy on held-out training samples; nested: lowest training loss after the
  warm-up).

Design: the strategy owns its networks. clbench still builds ``ctx.model`` from the ``model:``
config, but it is never trained or used for prediction. The target has as many outputs as the
largest task (2 for Split (Fashion-)MNIST); task t's outputs are written into its ``output_ids``
(a per-task multi-head).

Inference: task-incremental uses each sample's own embedding (middle weights at ε); otherwise
(``inference: entropy``) the task with the smallest output entropy is chosen per sample
(`entropy.py`). After the last phase the universal embedding (centre of the intersection of all task
boxes, `calculate_interval_intersection`, fed to the hypernet without the cos map) gives one weight
set, evaluated on every task's full test set (`report()`).

Resume: `state_dict` holds everything `observe` mutates (hypernet, embeddings, ρ, Adam state,
iteration counter, regulariser targets, best copy); `load_state_dict` rebuilds the optimizer over
the same parameters before loading its state, so loading the phase-start state, calling
``before_phase(k)`` and loading a mid-phase state continues bit-identically.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from clbench.data.stream import Batch
from clbench.errors import ConfigError
from clbench.registry import STRATEGIES
from clbench.scenario.plan import PhasePart, ScenarioPlan
from clbench.strategies.hyperinterval.hnet import HyperNet, eps_at, kappa_at
from clbench.strategies.hyperinterval.interval import (
    entropy,
    interval_intersection,
    split_flat,
    worst_case_logits,
)
from clbench.strategies.hyperinterval.selection import (
    BestCopy,
    check_val_size,
    heldout_indices,
    without_heldout,
)
from clbench.strategies.hyperinterval.targets import (
    CNNTarget,
    MLPTarget,
    TargetNet,
    cnn_feature_size,
)
from clbench.strategies.specs.hyperinterval import HyperIntervalSpec
from clbench.strategy import Strategy

FILL = -1e4  # logits of outputs a sample's (selected) task does not own (finite: loss stays finite)


@STRATEGIES.register("hyperinterval")
class HyperInterval(HyperIntervalSpec, Strategy):
    def problems_with(self, plan: ScenarioPlan) -> list[str]:
        if self._uses_validation():  # refused before any work, naming the field
            check_val_size(plan, self.config.val_size)
        return super().problems_with(plan)

    # ------------------------------------------------------------------ setup
    def setup(self, ctx: Any) -> None:
        self.ctx = ctx
        self.model = ctx.model  # built by clbench, unused (the hypernet generates the weights)
        self.data = ctx.data
        cfg = self.config
        plan = ctx.plan
        self.num_tasks = plan.num_tasks
        self.n_local = max(len(t.output_ids) for t in plan.tasks)
        dataset = ctx.data.dataset
        self.target: TargetNet = self._build_target(tuple(dataset.input_shape), dataset.is_image)
        self.shapes = self.target.shapes
        n_params = sum(int(s.numel()) for s in self.shapes)
        dev = ctx.device
        self.hnet = HyperNet(cfg.embedding_dim, cfg.hnet_hidden, n_params).to(dev)
        m = cfg.embedding_dim
        self.embeddings = nn.ParameterList(
            nn.Parameter(torch.randn(m, generator=ctx.generator).to(dev))
            for _ in range(self.num_tasks)
        )
        # nested: ρ stays at softmax(1_M), i.e. radius ε/M per coordinate (official)
        self.rhos = nn.ParameterList(
            nn.Parameter(torch.softmax(torch.ones(m), 0).to(dev)) for _ in range(self.num_tasks)
        )
        # output_ids[t, j] = model output of task t's local output j; local[t, target] = j
        # padding slots (tasks smaller than the largest) point at a spare column, dropped later
        out_ids = torch.full((self.num_tasks, self.n_local), plan.num_outputs, dtype=torch.long)
        valid = torch.zeros(self.num_tasks, self.n_local, dtype=torch.bool)
        local = torch.full((self.num_tasks, plan.num_outputs), -1, dtype=torch.long)
        for t in plan.tasks:
            ids = list(t.output_ids)
            out_ids[t.id, : len(ids)] = torch.tensor(ids)
            valid[t.id, : len(ids)] = True
            local[t.id, ids] = torch.arange(len(ids))
        self.out_ids, self.valid, self.local = out_ids.to(dev), valid.to(dev), local.to(dev)
        self._unnormalise: tuple[torch.Tensor, torch.Tensor] | None = None
        if cfg.inputs == "unit" and dataset.is_image:
            shape = (1, -1) + (1,) * (len(dataset.input_shape) - 1)
            std = torch.tensor(dataset.std, dtype=torch.float32).view(shape).to(dev)
            mean = torch.tensor(dataset.mean, dtype=torch.float32).view(shape).to(dev)
            self._unnormalise = (std, mean)
        self.learned: list[int] = []  # tasks trained so far, in order
        self.current: list[int] = []  # tasks of the phase being trained
        self.opt_tasks: list[int] = []  # tasks whose embeddings the optimizer holds
        self.reg_targets: dict[int, torch.Tensor] = {}
        self.optimizer = self.configure_optimizer()
        self._cache: dict[int, list[torch.Tensor]] = {}
        self.universal_report: dict[str, Any] | None = None
        self.best = BestCopy()
        self.selected: list[dict[str, Any]] = []  # per phase: iteration kept and its score
        self.it = 0
        self.n_updates = 1

    def _build_target(self, input_shape: tuple[int, ...], is_image: bool) -> TargetNet:
        cfg = self.config
        if cfg.target == "mlp":
            return MLPTarget(input_shape, cfg.target_hidden, self.n_local)
        if not is_image or len(input_shape) != 3:
            raise ConfigError(
                "strategy.target", "cnn", f"mlp for non-image inputs of shape {input_shape}"
            )
        if cnn_feature_size(input_shape, cfg.cnn_channels) == 0:
            raise ConfigError(
                "strategy.cnn_channels",
                cfg.cnn_channels,
                f"at most {int(math.log2(min(input_shape[1:])))} convolutions (each halves the "
                f"{input_shape[1]}×{input_shape[2]} images)",
            )
        return CNNTarget(
            input_shape, cfg.cnn_channels, cfg.cnn_fc_hidden, self.n_local, cfg.cnn_bounds
        )

    def _uses_validation(self) -> bool:
        return self.config.selection != "last" and self.config.variant == "standard"

    @property
    def heldout(self) -> dict[int, Any]:
        """Per task, the training samples held out for validation (none without selection).

        Drawn on first use (`training_parts` runs before `setup`), seeded apart from the shared
        RNGs."""
        if not hasattr(self, "_heldout"):
            seed = self.ctx.generator.initial_seed() + 1
            self._heldout = (
                heldout_indices(self.ctx.plan, self.config.val_size, seed)
                if self._uses_validation()
                else {}
            )
        return self._heldout

    def training_parts(self, phase_index: int) -> Sequence[PhasePart]:
        parts = self.ctx.plan.phases[phase_index].parts
        return without_heldout(parts, self.heldout) if self.heldout else parts

    def networks(self) -> list[nn.Module]:
        """The hypernetwork and the task embeddings (and radii); clbench's model is unused."""
        return [self.hnet, self.embeddings, self.rhos]

    def configure_optimizer(self) -> torch.optim.Optimizer:
        return self._optimizer_for(self.opt_tasks)

    def _optimizer_for(self, tasks: list[int]) -> torch.optim.Optimizer:
        """Adam over the hypernet and ``tasks``' embeddings (+ ρ in the standard variant)."""
        params = [*self.hnet.parameters()] + [self.embeddings[t] for t in tasks]
        if self.config.variant == "standard":
            params += [self.rhos[t] for t in tasks]
        return torch.optim.Adam(params, lr=self.config.lr)

    def _set_trainable(self, tasks: list[int]) -> None:
        for t in range(self.num_tasks):
            self.embeddings[t].requires_grad_(t in tasks)
            self.rhos[t].requires_grad_(t in tasks and self.config.variant == "standard")

    def _inputs(self, x: torch.Tensor) -> torch.Tensor:
        """Target-network inputs (pixels back in [0, 1] with ``inputs: unit``)."""
        x = x.float()
        if self._unnormalise is not None:
            std, mean = self._unnormalise
            x = x * std + mean
        return x

    # ------------------------------------------------------------------ weights
    def _radius(self, task: int, eps: float) -> torch.Tensor:
        return eps * torch.softmax(self.rhos[task], 0)

    def _centre(self, task: int, eps: float) -> torch.Tensor:
        """Box centre: e_t (standard) or (ε/2M)·cos(e_t) (nested, official; ε warms up too)."""
        if self.config.variant == "nested":
            return eps / (2 * self.config.embedding_dim) * torch.cos(self.embeddings[task])
        return self.embeddings[task]

    def _box(self, tasks: list[int], eps: float) -> tuple[torch.Tensor, torch.Tensor]:
        """Hypernet output box (middle, radius) for ``tasks`` in one batched forward ([T, P])."""
        centres = torch.stack([self._centre(t, eps) for t in tasks])
        radii = torch.stack([self._radius(t, eps) for t in tasks])
        return self.hnet.ibp(centres, radii)

    def _weights(self, centre: torch.Tensor, radius: torch.Tensor) -> tuple[list, list, list]:
        """(lower, middle, upper) target parameter lists for the embedding box."""
        mid, rad = self.hnet.ibp(centre[None], radius[None])
        mid, rad = mid[0], rad[0]
        return (
            split_flat(mid - rad, self.shapes),
            split_flat(mid, self.shapes),
            split_flat(mid + rad, self.shapes),
        )

    def _task_weights(self, task: int, eps: float) -> tuple[list, list, list]:
        return self._weights(self._centre(task, eps), self._radius(task, eps))

    def _reg_outputs(self, tasks: list[int]) -> torch.Tensor:
        """What the regulariser keeps at ε: middle outputs [T, P] (standard, as the official
        `Utils/hnet_middle_regularizer.py`) or lower, middle and upper [T, 3, P] (nested,
        `Utils/hnet_interval_regularizer.py`)."""
        mid, rad = self._box(tasks, self.config.eps)
        if self.config.variant == "nested":
            return torch.stack([mid - rad, mid, mid + rad], 1)
        return mid

    # ------------------------------------------------------------------ training
    def before_phase(self, phase_index: int) -> None:
        self.it = 0
        self.n_updates = max(1, self.ctx.loop.plan.updates_per_phase[phase_index])
        tasks = sorted({p.task for p in self.training_parts(phase_index)})
        self.current = tasks
        previous = [t for t in self.learned if t not in tasks]
        with torch.no_grad():
            if self.config.custom_init and self.learned:
                for t in tasks:  # official custom_init: start from the last learned embedding
                    if t not in self.learned:
                        self.embeddings[t].copy_(self.embeddings[self.learned[-1]])
            self.reg_targets = (
                dict(zip(previous, self._reg_outputs(previous).detach(), strict=True))
                if previous
                else {}
            )
        self._set_trainable(tasks)
        self.opt_tasks = tasks
        self.optimizer = self._optimizer_for(tasks)  # new Adam per task (as official)
        self.best = BestCopy()

    def _task_loss(self, batch: Batch, eps: float, kappa: float) -> torch.Tensor:
        x = self._inputs(batch.x)
        task_loss = x.new_zeros(())
        for t in torch.unique(batch.task).tolist():
            rows = batch.task == t
            zl, zm, zu = self.target.bounds(x[rows], *self._task_weights(t, eps))
            y = self.local[t, batch.y[rows]]
            invalid = ~self.valid[t]
            zm = zm.masked_fill(invalid, float("-inf"))
            worst = worst_case_logits(zl, zu, y).masked_fill(invalid, float("-inf"))
            ce = kappa * F.cross_entropy(zm, y, reduction="sum") + (1 - kappa) * F.cross_entropy(
                worst, y, reduction="sum"
            )
            task_loss = task_loss + ce / len(batch)
        return task_loss

    def observe(self, batch: Batch) -> torch.Tensor:
        cfg = self.config
        n_half = self.n_updates // 2
        kappa = kappa_at(self.it, n_half, cfg.kappa_schedule, cfg.kappa_final, cfg.kappa_decay)
        eps = eps_at(self.it, n_half, cfg.eps)
        loss = self._task_loss(batch, eps, kappa)
        if self.reg_targets and cfg.beta > 0:
            prev = list(self.reg_targets)
            diff = self._reg_outputs(prev) - torch.stack([self.reg_targets[t] for t in prev])
            outputs = 3 if cfg.variant == "nested" else 1  # nested: mean over L, M, U too
            reg = diff.pow(2).sum() / (len(prev) * outputs)
            scale = len(prev) if cfg.reg_scaling == "official" else 1
            loss = loss + cfg.beta * reg / max(1, scale)
        self.step(loss)
        self.it += 1
        self._cache.clear()
        loss = loss.detach()
        if cfg.selection != "last" and (self.it % cfg.val_every == 0 or self.it == self.n_updates):
            self._check(float(loss), eps)
        return loss

    def _check(self, loss: float, eps: float) -> None:
        """One selection check after an update (official cadence): offer the live tensors."""
        cfg = self.config
        # nested (official) and after_warmup: only iterates generated at the full ε compete
        if (cfg.variant == "nested" or cfg.selection == "after_warmup") and eps < cfg.eps:
            return
        if cfg.variant == "nested":
            score = -loss
        else:  # validation accuracy of the middle net at the current ε_it (the official quirk)
            with torch.no_grad():
                score = self.validation_accuracy(eps)
        self.best.offer(score, self.it, self._live_tensors())

    def _live_tensors(self) -> dict[str, Any]:
        return {
            "hnet": self.hnet.state_dict(),
            "embeddings": {t: self.embeddings[t] for t in self.current},
            "rhos": {t: self.rhos[t] for t in self.current},
        }

    def validation_accuracy(self, eps: float) -> float:
        """Accuracy of the middle target net on the current tasks' held-out samples."""
        counts = [
            self._count_correct(t, self._task_weights(t, eps)[1], self.heldout[t], "train")
            for t in self.current
        ]
        return sum(c for c, _ in counts) / max(1, sum(n for _, n in counts))

    def _count_correct(
        self, task: int, params: list[torch.Tensor], index: Any, split: str
    ) -> tuple[int, int]:
        """(correct, total) of the target with ``params`` on samples ``index`` of ``task``."""
        index = torch.as_tensor(index, dtype=torch.long)
        correct = 0
        for start in range(0, len(index), 1024):
            chunk = index[start : start + 1024]
            b = self.data.make_batch(chunk, torch.full_like(chunk, task), split=split)
            z = self.target.forward(self._inputs(b.x), params)
            z = z.masked_fill(~self.valid[task], float("-inf"))
            correct += int((z.argmax(1) == self.local[task, b.y]).sum())
        return correct, len(index)

    def after_phase(self, phase_index: int) -> None:
        if self.config.selection != "last" and self.best.tensors is not None:
            kept = self.best.tensors
            self.hnet.load_state_dict(kept["hnet"])
            with torch.no_grad():
                for t, v in kept["embeddings"].items():
                    self.embeddings[t].copy_(v)
                for t, v in kept["rhos"].items():
                    self.rhos[t].copy_(v)
            self.selected.append({"iteration": self.best.iteration, "score": self.best.score})
        for t in self.current:
            if t not in self.learned:
                self.learned.append(t)
        self._set_trainable([])
        self._cache.clear()
        if self.config.universal and phase_index == len(self.ctx.plan.phases) - 1:
            self.universal_report = self.evaluate_universal()

    # ------------------------------------------------------------------ inference
    def _middle_params(self, task: int) -> list[torch.Tensor]:
        if task not in self._cache:
            self._cache[task] = self._task_weights(task, self.config.eps)[1]
        return self._cache[task]

    def _scatter(self, local_logits: torch.Tensor, task: torch.Tensor) -> torch.Tensor:
        """Write each row's local logits into its task's output slots; FILL elsewhere."""
        n_out = self.ctx.plan.num_outputs
        out = local_logits.new_full((local_logits.shape[0], n_out + 1), FILL)
        return out.scatter(1, self.out_ids[task], local_logits)[:, :n_out]

    def _task_logits(self, x: torch.Tensor, task: int, bounds: bool = False):
        if bounds:
            return self.target.bounds(x, *self._task_weights(task, self.config.eps))
        return self.target.forward(x, self._middle_params(task))

    def _use_entropy(self) -> bool:
        if self.config.inference == "auto":
            return not self.ctx.plan.task_ids_at_test
        return self.config.inference == "entropy"

    def select_tasks(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-sample minimum-entropy task among learned ones (official `entropy.py`): (task ids,
        local logits)."""
        training = [t for t in self.current if t not in self.learned]
        candidates = self.learned + training or [0]  # tasks learned or being learned
        scores, logits = [], []
        for t in candidates:
            if self.config.entropy_weighting == "interval":
                zl, zm, zu = self._task_logits(x, t, bounds=True)
                weight = 1.0 / (1e-3 + (zu - zl).abs())
            else:
                zm, weight = self._task_logits(x, t), None
            zm = zm.masked_fill(~self.valid[t], float("-inf"))
            scores.append(entropy(zm, weight))
            logits.append(zm)
        best = torch.stack(scores, 1).argmin(1)
        chosen = torch.stack(logits, 1)[torch.arange(x.shape[0], device=x.device), best]
        ids = torch.as_tensor(candidates, device=x.device)[best]
        return ids, chosen

    def predict(self, x: torch.Tensor, task: torch.Tensor) -> torch.Tensor:
        x = self._inputs(x)
        with torch.no_grad():
            if self._use_entropy():
                ids, local_logits = self.select_tasks(x)
                return self._scatter(local_logits, ids)
            local_logits = x.new_empty((x.shape[0], self.n_local))
            for t in torch.unique(task).tolist():
                rows = task == t
                local_logits[rows] = self._task_logits(x[rows], t)
            return self._scatter(local_logits, task)

    # ------------------------------------------------------------------ universal embedding
    def universal_embedding(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Centre, radius and empty mask of the intersection of the learned tasks' boxes at ε
        (nested: boxes around the cos-mapped centres; the centre is fed as is, as official)."""
        tasks = self.learned or list(range(self.num_tasks))
        eps = self.config.eps
        centres = torch.stack([self._centre(t, eps).detach() for t in tasks])
        radii = torch.stack([self._radius(t, eps).detach() for t in tasks])
        return interval_intersection(centres, radii)

    @torch.no_grad()
    def evaluate_universal(self) -> dict[str, Any]:
        """Accuracy of the single universal-embedding weight set on every task's test set."""
        centre, radius, empty = self.universal_embedding()
        params = self._weights(centre, radius)[1]
        accs = []
        for t in range(self.num_tasks):
            correct, n = self._count_correct(t, params, self.data.task_indices(t, "test"), "test")
            accs.append(correct / max(1, n))
        return {
            "per_task_acc": accs,
            "mean_acc": sum(accs) / len(accs),
            "empty_coordinates": int(empty.sum()),
            "radius_l1": float(radius.sum()),
        }

    def report(self) -> dict[str, Any]:
        cfg = self.config
        return {
            "variant": cfg.variant,
            "target": cfg.target if cfg.target == "mlp" else f"cnn ({cfg.cnn_bounds} bounds)",
            "target_params": sum(int(s.numel()) for s in self.shapes),
            "hnet_params": sum(p.numel() for p in self.hnet.parameters()),
            "inference": "entropy" if self._use_entropy() else "task",
            "selection": {"rule": cfg.selection, "kept": self.selected},
            "universal": self.universal_report,
        }

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        """Everything `observe` and the phase hooks mutate (tensors are live references)."""
        return {
            "hnet": self.hnet.state_dict(),
            "embeddings": [e.detach().clone() for e in self.embeddings],
            "rhos": [r.detach().clone() for r in self.rhos],
            "learned": list(self.learned),
            "current": list(self.current),
            "opt_tasks": list(self.opt_tasks),
            "trainable": [t for t in range(self.num_tasks) if self.embeddings[t].requires_grad],
            "optimizer": self.optimizer.state_dict(),
            "it": self.it,
            "n_updates": self.n_updates,
            "reg_targets": dict(self.reg_targets),
            "best": self.best.state_dict(),
            "selected": list(self.selected),
            "universal": self.universal_report,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.hnet.load_state_dict(state["hnet"])
        with torch.no_grad():
            for p, v in zip(self.embeddings, state["embeddings"], strict=True):
                p.copy_(v)
            for p, v in zip(self.rhos, state["rhos"], strict=True):
                p.copy_(v)
        self.learned = list(state["learned"])
        self.current = list(state["current"])
        self._set_trainable(list(state["trainable"]))
        # the optimizer must hold the same parameters, in the same order, as the saved one
        self.opt_tasks = list(state["opt_tasks"])
        self.optimizer = self._optimizer_for(self.opt_tasks)
        self.optimizer.load_state_dict(state["optimizer"])
        self.it, self.n_updates = int(state["it"]), int(state["n_updates"])
        self.reg_targets = {int(t): v.clone() for t, v in state["reg_targets"].items()}
        self.best = BestCopy()
        self.best.load_state_dict(state["best"])
        self.selected = list(state["selected"])
        self.universal_report = state["universal"]
        self._cache.clear()
