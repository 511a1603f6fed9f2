"""HyperInterval: a hypernetwork maps per-task embedding intervals to target-weight intervals.

Krukowski et al. 2024, "HyperInterval: Hypernetwork approach to training weight interval regions
in continual learning" (arXiv:2405.15444; official code gmum/HyperInterval @ d42305d), spec
`strategies.md` Part D. The TIL, non-forced variant (D.3):

- each task t has an embedding centre e_t ~ N(0, 1) and a learnable ρ_t (init softmax(1_M)); the
  box is e_t ± ε_it·softmax(ρ_t), ε_it warmed up linearly over the first half of each task;
- the hypernetwork (MLP, ReLU) maps the box by IBP to a box of target-MLP weights;
- the target MLP runs with exact interval propagation; the loss is κ·CE(z^M) + (1−κ)·CE(ẑ) with
  ẑ the worst case (lower bound for the true class, upper for the rest), κ as in D.3.b;
- a hypernet output regulariser keeps the middle weights of earlier embeddings (targets computed
  once per task at ε), with the official extra division by t (`reg_scaling`);
- a fresh Adam per task over the hypernet and the current e_t, ρ_t (earlier ones frozen).

Design: the strategy owns its networks. clbench still builds ``ctx.model`` from the ``model:``
config, but it is never trained or used for prediction; the hypernetwork and the target-MLP
shape come from this Config. The target has as many outputs as the largest task (2 for Split
(Fashion-)MNIST); task t's outputs are written into its ``output_ids`` (a per-task multi-head).

Inference: task-incremental uses each sample's own embedding (middle weights at ε); otherwise
(``inference: entropy``) the task with the smallest output entropy is chosen per sample (D.5).
After the last phase the universal embedding (centre of the intersection of all task boxes,
D.4.5) gives one weight set, evaluated on every task's full test set (`report()`).

Not implemented: the CNN target with the three-pass relaxed bounds (helper in `clbench.interval`
only), the nested (cos-map) variant, and validation-based model selection (`selection: last`).
"""

from __future__ import annotations

import itertools
import math
from typing import Any, Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from clbench.data.stream import Batch
from clbench.interval import (
    entropy,
    hypernet_ibp,
    interval_intersection,
    interval_mlp,
    mlp_shapes,
    plain_mlp,
    split_flat,
    worst_case_logits,
)
from clbench.registry import STRATEGIES
from clbench.strategy import Capabilities, Strategy

FILL = -1e4  # logits of outputs a sample's (selected) task does not own (finite: loss stays finite)


class HyperNet(nn.Module):
    """MLP hypernetwork: embedding (M) → hidden (ReLU) → all target parameters, flat."""

    def __init__(self, emb_dim: int, hidden: list[int], n_out: int) -> None:
        super().__init__()
        sizes = [emb_dim, *hidden, n_out]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in itertools.pairwise(sizes))

    def ibp(self, centre: torch.Tensor, radius: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return hypernet_ibp([(m.weight, m.bias) for m in self.layers], centre, radius)


def kappa_at(it: int, n_half: int, schedule: str, final: float, decay: float) -> float:
    """κ at iteration ``it`` of a task (spec D.3.b / D.7)."""
    if it >= n_half:
        return final
    if schedule == "official":  # falls by `decay` per iteration, then jumps to `final`
        return max(1.0 - decay * it, final)
    return 1.0 - (1.0 - final) * it / max(1, n_half)  # linear_to_final


def eps_at(it: int, n_half: int, eps: float) -> float:
    """Radius warm-up: ``it/(N_half − 1)·ε`` over the first half, then ε (D.3.b)."""
    if it >= n_half:
        return eps
    return eps * it / max(1, n_half - 1)


@STRATEGIES.register("hyperinterval")
class HyperInterval(Strategy):
    summary = "HyperInterval: hypernetwork-generated weight intervals with interval embeddings"
    capabilities = Capabilities(settings=frozenset({"task", "class", "domain"}))

    class Config(Strategy.Config):
        embedding_dim: int = Field(
            24, ge=1, description="M (D.6: 24 Permuted MNIST; D.9 reduced configuration)"
        )
        hnet_hidden: list[int] = Field(
            [50, 50],
            description="Hypernet hidden widths (D.9 reduced; paper [100,100] PMNIST, [75,75] "
            "Split MNIST, D.6)",
        )
        target_hidden: list[int] = Field(
            [100, 100],
            description="Target MLP hidden widths (D.9 reduced; paper [1000,1000] / [400,400])",
        )
        eps: float = Field(1.0, ge=0, description="Radius budget ε (D.6 Split MNIST TIL: 1.0)")
        beta: float = Field(0.01, ge=0, description="Output regulariser weight β (D.6: 0.01)")
        lr: float = Field(1e-3, gt=0, description="Adam learning rate (D.6: 1e-3); fresh per task")
        kappa_final: float = Field(0.5, ge=0, le=1, description="κ after the warm-up (D.6)")
        kappa_decay: float = Field(5e-5, ge=0, description="κ decrease per iteration (D.3.b)")
        kappa_schedule: Literal["official", "linear_to_final"] = Field(
            "official",
            description="official: κ = max(1 − 5e-5·it, κ_final) then a jump to κ_final at "
            "N/2; linear_to_final: a linear ramp reaching κ_final at N/2 (D.7)",
        )
        reg_scaling: Literal["official", "mean_over_tasks"] = Field(
            "official",
            description="official: β·L_reg/max(1,t) with L_reg already a mean over t tasks "
            "(β/t² on the sum); mean_over_tasks: β·L_reg (D.7)",
        )
        selection: Literal["last"] = Field(
            "last",
            description="Model kept at the end of a task: the last one. The official "
            "best-validation-accuracy copy ('official', 'after_warmup', D.7) needs a validation "
            "split and is not implemented",
        )
        inference: Literal["auto", "task", "entropy"] = Field(
            "auto",
            description="task: each sample's own embedding; entropy: per-sample minimum output "
            "entropy over learned tasks (D.5); auto: task iff task ids are given at test",
        )
        entropy_weighting: Literal["vanilla", "interval"] = Field(
            "vanilla",
            description="vanilla: w_j = 1 (official default); interval: w_j = 1/(0.001+|zU−zL|)",
        )
        inputs: Literal["unit", "normalised"] = Field(
            "unit",
            description="unit: undo clbench's mean/std normalisation of images so pixels are in "
            "[0, 1] as in the official code (D.7 note: IntervalLinear expects x ≥ 0; zero-mean "
            "inputs widen the intervals); normalised: use the batch as given",
        )
        universal: bool = Field(
            True, description="Evaluate the universal embedding after the last phase (D.4.5)"
        )

    # ------------------------------------------------------------------ setup
    def setup(self, ctx: Any) -> None:
        self.ctx = ctx
        self.model = ctx.model  # built by clbench, unused (the hypernet generates the weights)
        self.data = ctx.data
        cfg = self.config
        plan = ctx.plan
        self.num_tasks = plan.num_tasks
        self.n_local = max(len(t.output_ids) for t in plan.tasks)
        in_dim = math.prod(ctx.data.dataset.input_shape)
        self.shapes = mlp_shapes([in_dim, *cfg.target_hidden, self.n_local])
        n_params = sum(int(s.numel()) for s in self.shapes)
        dev = ctx.device
        self.hnet = HyperNet(cfg.embedding_dim, cfg.hnet_hidden, n_params).to(dev)
        m = cfg.embedding_dim
        self.embeddings = nn.ParameterList(
            nn.Parameter(torch.randn(m, generator=ctx.generator).to(dev))
            for _ in range(self.num_tasks)
        )
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
        dataset = ctx.data.dataset
        self._unnormalise: tuple[torch.Tensor, torch.Tensor] | None = None
        if cfg.inputs == "unit" and dataset.is_image:
            shape = (1, -1) + (1,) * (len(dataset.input_shape) - 1)
            std = torch.tensor(dataset.std, dtype=torch.float32).view(shape).to(dev)
            mean = torch.tensor(dataset.mean, dtype=torch.float32).view(shape).to(dev)
            self._unnormalise = (std, mean)
        self.learned: list[int] = []  # tasks trained so far, in order
        self.current: list[int] = []  # tasks of the phase being trained
        self.reg_targets: dict[int, torch.Tensor] = {}
        self.phase_lengths: list[int] | None = None  # total_updates is set after setup
        self.optimizer = self.configure_optimizer()
        self._cache: dict[int, list[torch.Tensor]] = {}
        self.universal_report: dict[str, Any] | None = None
        self.it = 0
        self.n_updates = 1

    def _phase_lengths(self) -> list[int]:
        """Updates per phase: batches × epochs, epochs recovered from ``ctx.total_updates``.

        The drop_last setting is not in the context; the one whose batch count divides the total
        is used (both give the same count when batches divide evenly).
        """
        plan, bs, total = self.ctx.plan, self.ctx.batch_size, self.ctx.total_updates
        candidates = []
        for drop_last in (False, True):
            lens = [
                len(self.phase_batches(self.training_parts(k), bs, torch.Generator(), drop_last))
                for k in range(len(plan.phases))
            ]
            if total is not None and sum(lens) > 0 and total % sum(lens) == 0:
                return [n * (total // sum(lens)) for n in lens]
            candidates.append(lens)
        return candidates[0]  # unknown epochs: one epoch per phase

    def configure_optimizer(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.hnet.parameters(), lr=self.config.lr)

    def _inputs(self, x: torch.Tensor) -> torch.Tensor:
        """Flattened target-network inputs (pixels back in [0, 1] with ``inputs: unit``)."""
        x = x.float()
        if self._unnormalise is not None:
            std, mean = self._unnormalise
            x = x * std + mean
        return x.flatten(1)

    # ------------------------------------------------------------------ weights
    def _radius(self, task: int, eps: float) -> torch.Tensor:
        return eps * torch.softmax(self.rhos[task], 0)

    def _weights(self, centre: torch.Tensor, radius: torch.Tensor) -> tuple[list, list, list]:
        """(lower, middle, upper) target parameter lists for the embedding box."""
        mid, rad = self.hnet.ibp(centre[None], radius[None])
        mid, rad = mid[0], rad[0]
        return (
            split_flat(mid - rad, self.shapes),
            split_flat(mid, self.shapes),
            split_flat(mid + rad, self.shapes),
        )

    def _middle_flat(self, tasks: list[int]) -> torch.Tensor:
        """Middle hypernet outputs at ε for ``tasks`` in one batched forward ([T, P])."""
        centres = torch.stack([self.embeddings[t] for t in tasks])
        radii = torch.stack([self._radius(t, self.config.eps) for t in tasks])
        return self.hnet.ibp(centres, radii)[0]

    # ------------------------------------------------------------------ training
    def before_phase(self, phase_index: int) -> None:
        if self.phase_lengths is None:
            self.phase_lengths = self._phase_lengths()
        self.it = 0
        self.n_updates = max(1, self.phase_lengths[phase_index])
        tasks = sorted({p.task for p in self.training_parts(phase_index)})
        self.current = tasks
        previous = [t for t in self.learned if t not in tasks]
        with torch.no_grad():
            self.reg_targets = (
                dict(zip(previous, self._middle_flat(previous).detach(), strict=True))
                if previous
                else {}
            )
        for t in range(self.num_tasks):
            trainable = t in tasks
            self.embeddings[t].requires_grad_(trainable)
            self.rhos[t].requires_grad_(trainable)
        params = [*self.hnet.parameters()]
        params += [self.embeddings[t] for t in tasks] + [self.rhos[t] for t in tasks]
        self.optimizer = torch.optim.Adam(params, lr=self.config.lr)  # new Adam per task (D.3.1)

    def observe(self, batch: Batch) -> torch.Tensor:
        cfg = self.config
        n_half = self.n_updates // 2
        kappa = kappa_at(self.it, n_half, cfg.kappa_schedule, cfg.kappa_final, cfg.kappa_decay)
        eps = eps_at(self.it, n_half, cfg.eps)
        x = self._inputs(batch.x)
        task_loss = x.new_zeros(())
        for t in torch.unique(batch.task).tolist():
            rows = batch.task == t
            lower, middle, upper = self._weights(self.embeddings[t], self._radius(t, eps))
            zl, zm, zu = interval_mlp(x[rows], lower, middle, upper)
            y = self.local[t, batch.y[rows]]
            invalid = ~self.valid[t]
            zm = zm.masked_fill(invalid, float("-inf"))
            worst = worst_case_logits(zl, zu, y).masked_fill(invalid, float("-inf"))
            ce = kappa * F.cross_entropy(zm, y, reduction="sum") + (1 - kappa) * F.cross_entropy(
                worst, y, reduction="sum"
            )
            task_loss = task_loss + ce / len(batch)
        loss = task_loss
        if self.reg_targets and cfg.beta > 0:
            prev = list(self.reg_targets)
            diff = self._middle_flat(prev) - torch.stack([self.reg_targets[t] for t in prev])
            reg = diff.pow(2).sum() / len(prev)
            scale = len(prev) if cfg.reg_scaling == "official" else 1
            loss = loss + cfg.beta * reg / max(1, scale)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.it += 1
        self._cache.clear()
        return loss.detach()

    def after_phase(self, phase_index: int) -> None:
        for t in self.current:
            if t not in self.learned:
                self.learned.append(t)
            self.embeddings[t].requires_grad_(False)
            self.rhos[t].requires_grad_(False)
        self._cache.clear()
        if self.config.universal and phase_index == len(self.ctx.plan.phases) - 1:
            self.universal_report = self.evaluate_universal()

    # ------------------------------------------------------------------ inference
    def _middle_params(self, task: int) -> list[torch.Tensor]:
        if task not in self._cache:
            centre, radius = self.embeddings[task], self._radius(task, self.config.eps)
            self._cache[task] = self._weights(centre, radius)[1]
        return self._cache[task]

    def _scatter(self, local_logits: torch.Tensor, task: torch.Tensor) -> torch.Tensor:
        """Write each row's local logits into its task's output slots; FILL elsewhere."""
        n_out = self.ctx.plan.num_outputs
        out = local_logits.new_full((local_logits.shape[0], n_out + 1), FILL)
        return out.scatter(1, self.out_ids[task], local_logits)[:, :n_out]

    def _task_logits(self, x: torch.Tensor, task: int, bounds: bool = False):
        if bounds:
            centre, radius = self.embeddings[task], self._radius(task, self.config.eps)
            return interval_mlp(x, *self._weights(centre, radius))
        return plain_mlp(x, self._middle_params(task))

    def _use_entropy(self) -> bool:
        if self.config.inference == "auto":
            return not self.ctx.plan.task_ids_at_test
        return self.config.inference == "entropy"

    def select_tasks(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-sample minimum-entropy task among learned ones (D.5): (task ids, local logits)."""
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
        tasks = self.learned or list(range(self.num_tasks))
        centres = torch.stack([self.embeddings[t].detach() for t in tasks])
        radii = torch.stack([self._radius(t, self.config.eps).detach() for t in tasks])
        return interval_intersection(centres, radii)

    @torch.no_grad()
    def evaluate_universal(self) -> dict[str, Any]:
        """Accuracy of the single universal-embedding weight set on every task's test set."""
        centre, radius, empty = self.universal_embedding()
        params = self._weights(centre, radius)[1]
        accs = []
        for t in range(self.num_tasks):
            index = self.data.task_indices(t, "test")
            correct = 0
            for start in range(0, len(index), 1024):
                chunk = index[start : start + 1024]
                b = self.data.make_batch(chunk, torch.full_like(chunk, t), split="test")
                z = plain_mlp(self._inputs(b.x), params)
                logits = self.data.mask_logits(self._scatter(z, b.task), b.task)
                correct += int((logits.argmax(1) == b.y).sum())
            accs.append(correct / max(1, len(index)))
        return {
            "per_task_acc": accs,
            "mean_acc": sum(accs) / len(accs),
            "empty_coordinates": int(empty.sum()),
            "radius_l1": float(radius.sum()),
        }

    def report(self) -> dict[str, Any]:
        return {
            "target_params": sum(int(s.numel()) for s in self.shapes),
            "hnet_params": sum(p.numel() for p in self.hnet.parameters()),
            "inference": "entropy" if self._use_entropy() else "task",
            "universal": self.universal_report,
        }

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        return {
            "hnet": self.hnet.state_dict(),
            "embeddings": [e.detach().clone() for e in self.embeddings],
            "rhos": [r.detach().clone() for r in self.rhos],
            "learned": list(self.learned),
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
        self.universal_report = state["universal"]
        self._cache.clear()
