"""How one update is applied: backward, gradient clipping and the optimizer step, with fp16 loss
scaling (``precision=fp16``: a `torch.amp.GradScaler`, whose scale travels in checkpoints)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch


class Stepper:
    """`Strategy.step` hands the loss here; the engine builds it from the ``train`` section."""

    def __init__(
        self,
        device: torch.device | str = "cpu",
        fp16: bool = False,
        grad_clip: float | None = None,
    ) -> None:
        self.grad_clip = grad_clip
        # disabled: scale() returns the loss and step() calls optimizer.step() (fp32/bf16 runs
        # are unchanged)
        self.scaler = torch.amp.GradScaler(torch.device(device).type, enabled=fp16)

    def step(
        self,
        loss: torch.Tensor,
        optimizer: torch.optim.Optimizer,
        adjust_gradients: Callable[[], None] | None = None,
    ) -> None:
        """Backward, then ``adjust_gradients()`` (e.g. A-GEM's projection), clipping and the
        optimizer step. The hook edits the parameters' ``.grad`` in place and sees the true
        gradients (unscaled under fp16); it must leave them finite, since fp16's overflow check
        has already run."""
        optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        if adjust_gradients is not None or self.grad_clip is not None:
            self.scaler.unscale_(optimizer)  # the true gradients, not the scaled ones
        if adjust_gradients is not None:
            adjust_gradients()
        if self.grad_clip is not None:
            params = [p for g in optimizer.param_groups for p in g["params"] if p.grad is not None]
            torch.nn.utils.clip_grad_norm_(params, self.grad_clip)
        self.scaler.step(optimizer)  # skips the step when fp16 gradients overflowed
        self.scaler.update()

    def state_dict(self) -> dict[str, Any]:
        return {"scaler": self.scaler.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.scaler.load_state_dict(state["scaler"])
