"""Forgetting-prioritized finetuning (FPF) machinery shared by the `fpf` and `k_fpf` strategies.

Zhao et al., "Does Continual Learning Equally Forget All Parameters?", ICML 2023, arXiv:2304.04158.
No official code is public. This module holds what both strategies need, in one place:

- `select_modules`: which modules FPF finetunes, from name/type patterns or from
  `SensitivityTracker` (the paper's training-dynamics score: the L1 change of a
  module's parameters between task boundaries divided by its size, averaged over boundaries);
- `finetune`: a few SGD iterations on replay-buffer batches that change *only* the selected
  parameters (others frozen with ``requires_grad``; unselected BatchNorm layers in eval mode so
  their running statistics stay bit-identical too);
- `CostMeter`: training multiply-accumulates and wall time, split into an ``sgd`` and an ``fpf``
  part, for the summary's ``strategy_report``.

It is library code with no registration, shared by the FPF plugin and k-FPF and tested on its
own.

MAC convention (`CostMeter`): forward MACs are counted exactly for ``nn.Linear`` and ``nn.Conv2d``
(other layers are ignored as negligible). Backward MACs per such layer are the weight-gradient
MACs (= its forward MACs, when its weight is trainable) plus the input-gradient MACs (= its forward
MACs, when any trainable parameter is used earlier in the forward pass). With every parameter
trainable this is the usual "backward ≈ 2 × forward" (training ≈ 3 × forward); with most of the
network frozen, as in FPF, it counts only the gradients autograd really computes. Forwards under
``torch.no_grad`` count no backward. One MAC ≈ 2 FLOPs.
"""

from __future__ import annotations

import contextlib
import fnmatch
import itertools
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from clbench.data.stream import StreamData
from clbench.errors import ConfigError
from clbench.strategies.specs.fpf import FPFOptions
from clbench.strategy.buffers import IndexBuffer

# Keyword patterns; anything else is an fnmatch glob over qualified module names.
KEYWORDS = ("bn", "fc", "head", "conv1", "first_layer", "last_conv", "all")
_BN = nn.modules.batchnorm._BatchNorm


def param_modules(model: nn.Module) -> dict[str, nn.Module]:
    """Modules that own parameters directly (the units FPF selects and ranks), in order."""
    return {
        name: m
        for name, m in model.named_modules()
        if name and any(True for _ in m.parameters(recurse=False))
    }


def resolve_patterns(model: nn.Module, patterns: Sequence[str], field: str) -> list[str]:
    """Qualified names of the modules matched by ``patterns`` (see `KEYWORDS`).

    ``bn``: every BatchNorm layer; ``fc``/``head``: the classifier ``head``; ``conv1``: the first
    ``Conv2d``; ``first_layer``: the first Linear/Conv2d; ``last_conv``: the last ``Conv2d``;
    ``all``: every module with parameters; otherwise a glob such as ``backbone.layer4.*``.
    Keywords may match nothing (``bn`` on a model without BatchNorm); a glob must match something,
    and so must the whole selection.
    """
    named = param_modules(model)
    convs = [n for n, m in named.items() if isinstance(m, nn.Conv2d)]
    layers = [n for n, m in named.items() if isinstance(m, nn.Conv2d | nn.Linear)]
    chosen: set[str] = set()
    for pattern in patterns:
        if pattern == "bn":
            chosen |= {n for n, m in named.items() if isinstance(m, _BN)}
        elif pattern in ("fc", "head"):
            chosen |= {n for n in named if n == "head" or n.startswith("head.")}
        elif pattern == "conv1":
            chosen |= set(convs[:1])
        elif pattern == "first_layer":
            chosen |= set(layers[:1])
        elif pattern == "last_conv":
            chosen |= set(convs[-1:])
        elif pattern == "all":
            chosen |= set(named)
        else:
            hits = {n for n in named if fnmatch.fnmatchcase(n, pattern)}
            if not hits:
                raise ConfigError(
                    field, pattern, f"a keyword {KEYWORDS} or a glob over {list(named)}"
                )
            chosen |= hits
    if not chosen:
        raise ConfigError(field, list(patterns), "patterns that select at least one module")
    return [n for n in named if n in chosen]  # model order


class SensitivityTracker:
    """Per-module training dynamics: (1/|θ_m|)·‖θ_m(t) − θ_m(t−1)‖₁ between snapshots.

    Snapshots are taken at setup (θ(0)) and at each phase end. The score of a module is the mean
    drift over the intervals between consecutive task boundaries; the first interval (from the
    initialisation to the end of task 1, i.e. learning rather than forgetting) is left out when
    ``skip_first`` and a later interval exists. While fewer snapshots exist (an early k-FPF
    trigger), the current parameters close the last interval.
    """

    def __init__(self, model: nn.Module, skip_first: bool = True) -> None:
        self.model = model
        self.skip_first = skip_first
        self.snapshots: list[dict[str, torch.Tensor]] = [self._snapshot()]

    def _snapshot(self) -> dict[str, torch.Tensor]:
        return {
            name: torch.cat([p.detach().flatten() for p in m.parameters(recurse=False)]).cpu()
            for name, m in param_modules(self.model).items()
        }

    def snapshot(self) -> None:
        self.snapshots.append(self._snapshot())

    def scores(self) -> dict[str, float]:
        snaps = list(self.snapshots)
        if len(snaps) < 2 or (self.skip_first and len(snaps) < 3):
            snaps.append(self._snapshot())
        pairs = list(itertools.pairwise(snaps))
        if self.skip_first and len(pairs) > 1:
            pairs = pairs[1:]
        return {
            name: sum(float((b[name] - a[name]).abs().mean()) for a, b in pairs) / len(pairs)
            for name in snaps[0]
        }

    def top(self, k: int) -> list[str]:
        scores = self.scores()
        ranked = sorted(scores, key=lambda n: scores[n], reverse=True)[:k]
        return [n for n in scores if n in ranked]  # model order

    def state_dict(self) -> dict[str, Any]:
        return {"snapshots": self.snapshots}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.snapshots = state["snapshots"]


class CostMeter:
    """Training MACs (forward + backward, see the module docstring) and wall time per part.

    Forward hooks on every parameter-owning module count only inside ``with meter.part(name)``,
    so evaluation forwards are never counted.
    """

    def __init__(self, model: nn.Module, device: torch.device) -> None:
        self.device = device
        self.macs: dict[str, int] = {"sgd": 0, "fpf": 0}
        self.time_s: dict[str, float] = {"sgd": 0.0, "fpf": 0.0}
        self.samples: dict[str, int] = {"sgd": 0, "fpf": 0}
        self._active: str | None = None
        self._seen_trainable = False
        model.register_forward_pre_hook(self._start_forward)
        for m in param_modules(model).values():
            m.register_forward_hook(self._count)

    def _start_forward(self, module: nn.Module, args: Any) -> None:
        self._seen_trainable = False
        if self._active is not None and args and isinstance(args[0], torch.Tensor):
            self.samples[self._active] += int(args[0].shape[0])

    def _count(self, module: nn.Module, args: Any, output: Any) -> None:
        if self._active is None:
            return
        fwd = 0
        if isinstance(module, nn.Linear):
            fwd = output.numel() * module.in_features
        elif isinstance(module, nn.Conv2d):
            kh, kw = module.kernel_size
            fwd = output.numel() * (module.in_channels // module.groups) * kh * kw
        trainable = any(p.requires_grad for p in module.parameters(recurse=False))
        bwd = 0
        if torch.is_grad_enabled():
            weight = getattr(module, "weight", None)
            bwd += fwd if weight is not None and weight.requires_grad else 0
            bwd += fwd if self._seen_trainable else 0
        self._seen_trainable |= trainable
        self.macs[self._active] += fwd + bwd

    @contextlib.contextmanager
    def part(self, name: Literal["sgd", "fpf"]) -> Iterator[None]:
        previous, self._active = self._active, name
        self._sync()
        start = time.perf_counter()
        try:
            yield
        finally:
            self._sync()
            self.time_s[name] += time.perf_counter() - start
            self._active = previous

    def _sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def report(self) -> dict[str, Any]:
        total = sum(self.macs.values())
        return {
            "train_macs": {**self.macs, "total": total},
            "train_time_s": {k: round(v, 4) for k, v in self.time_s.items()},
            "train_samples": dict(self.samples),
            "fpf_macs_fraction": self.macs["fpf"] / total if total else 0.0,
            "mac_convention": "Linear/Conv2d MACs; forward + weight-grad (trainable) + "
            "input-grad (after the first trainable module); 1 MAC = 2 FLOPs",
        }

    def state_dict(self) -> dict[str, Any]:
        return {"macs": self.macs, "time_s": self.time_s, "samples": self.samples}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.macs, self.time_s, self.samples = state["macs"], state["time_s"], state["samples"]


@dataclass
class FinetuneSettings:
    """One FPF run: ``iterations`` SGD steps of ``batch_size`` buffer samples on the selection."""

    iterations: int
    lr: float
    batch_size: int
    momentum: float = 0.0
    loss: Literal["ce", "kd"] = "ce"
    kd_weight: float = 1.0
    kd_ce: bool = True
    bn_running_stats: Literal["update", "freeze"] = "update"


def finetune(
    model: nn.Module,
    modules: Sequence[str],
    buffer: IndexBuffer,
    data: StreamData,
    settings: FinetuneSettings,
    generator: torch.Generator,
) -> list[float]:
    """Finetune only ``modules`` on buffer batches; every other parameter and buffer is unchanged.

    Unselected parameters get ``requires_grad=False`` and are not in the (fresh, plain SGD)
    optimizer; unselected BatchNorm layers run in eval mode, so their running statistics do not
    move. Selected BatchNorm layers run in train mode (``bn_running_stats="update"``) or eval mode
    (``"freeze"``: only γ/β are trained). Flags and modes are restored afterwards. KD is the DER
    loss: MSE between the logits and the logits stored in ``buffer.extra``. Returns the losses.
    """
    if len(buffer) == 0 or settings.iterations == 0:
        return []
    if settings.loss == "kd" and buffer.extra is None:
        raise ValueError("KD finetuning needs a buffer that stores logits (extra_dim > 0)")
    named = dict(model.named_modules())
    selected = [named[n] for n in modules]
    params = [p for m in selected for p in m.parameters()]
    selected_ids = {id(m) for s in selected for m in s.modules()}
    flags = [(p, p.requires_grad) for p in model.parameters()]
    modes = [(m, m.training) for m in model.modules()]
    try:
        for p in model.parameters():
            p.requires_grad_(False)
        for p in params:
            p.requires_grad_(True)
        model.train()
        for m in model.modules():
            if isinstance(m, _BN) and (
                id(m) not in selected_ids or settings.bn_running_stats == "freeze"
            ):
                m.eval()
        optimizer = torch.optim.SGD(params, lr=settings.lr, momentum=settings.momentum)
        losses = []
        for _ in range(settings.iterations):
            pos = buffer.sample(settings.batch_size, generator)
            batch = data.make_batch(buffer.index[pos], buffer.task[pos])
            logits = model(batch.x)
            loss = logits.new_zeros(())
            if settings.loss == "ce" or settings.kd_ce:
                loss = loss + F.cross_entropy(data.mask_logits(logits, batch.task), batch.y)
            if settings.loss == "kd":
                target = buffer.extra[pos].to(logits.device, logits.dtype)
                loss = loss + settings.kd_weight * F.mse_loss(logits, target)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            losses.append(float(loss.detach()))
        return losses
    finally:
        for p in params:
            p.grad = None
        for p, flag in flags:
            p.requires_grad_(flag)
        for m, mode in modes:
            m.train(mode)


class FPFController:
    """Selection, sensitivity tracking, finetuning and cost metering for one strategy."""

    def __init__(
        self,
        options: FPFOptions,
        model: nn.Module,
        data: StreamData,
        device: torch.device,
        loss: Literal["ce", "kd"],
        field: str = "strategy.modules",
    ) -> None:
        self.options, self.model, self.data, self.loss = options, model, data, loss
        self.field = field
        self.meter = CostMeter(model, device)
        self.tracker = SensitivityTracker(model, options.sensitivity_skip_first)
        if options.modules != "auto":  # fail at setup, before training
            self.fixed = resolve_patterns(model, options.modules, field)
        self.runs: list[dict[str, Any]] = []
        self.last_scores: dict[str, float] | None = None

    def select(self) -> list[str]:
        if self.options.modules != "auto":
            return self.fixed
        self.last_scores = self.tracker.scores()
        return self.tracker.top(self.options.top_k)

    def run(self, buffer: IndexBuffer, generator: torch.Generator, step: int) -> list[float]:
        """One FPF run on ``buffer`` (counted in the ``fpf`` part of the cost meter)."""
        o = self.options
        with self.meter.part("fpf"):
            modules = self.select()
            losses = finetune(
                self.model,
                modules,
                buffer,
                self.data,
                FinetuneSettings(
                    o.iterations,
                    o.fpf_lr,
                    o.fpf_batch_size,
                    o.fpf_momentum,
                    self.loss,
                    o.kd_weight,
                    o.kd_ce,
                    o.bn_running_stats,
                ),
                generator,
            )
        self.runs.append(
            {
                "step": step,
                "modules": modules,
                "buffer_len": len(buffer),
                "final_loss": losses[-1] if losses else None,
            }
        )
        return losses

    def report(self) -> dict[str, Any]:
        named = param_modules(self.model)
        modules = self.runs[-1]["modules"] if self.runs else self.select()
        selected = sum(p.numel() for n in modules for p in named[n].parameters())
        out: dict[str, Any] = {
            "fpf_modules": modules,
            "fpf_params": selected,
            "params_total": sum(p.numel() for p in self.model.parameters()),
            "fpf_runs": self.runs,
            **self.meter.report(),
        }
        if self.options.modules == "auto":
            out["sensitivity"] = self.last_scores or self.tracker.scores()
        return out

    def state_dict(self) -> dict[str, Any]:
        return {
            "meter": self.meter.state_dict(),
            "tracker": self.tracker.state_dict(),
            "runs": self.runs,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.meter.load_state_dict(state["meter"])
        self.tracker.load_state_dict(state["tracker"])
        self.runs = state["runs"]
