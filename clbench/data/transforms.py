"""Per-task input transforms (permutation, rotation, noise) applied batched on the device.

Each transform is built once from its `InputTransform` spec and the input shape; applying it to a
batch is pure tensor work. All randomness is drawn at build time from its seed, so the same
sample always looks the same (evaluation stays repeatable).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from clbench.scenario.plan import InputTransform

NOISE_BANK_SIZE = 1024  # distinct noise patterns per task; sample i uses pattern i % size


class DeviceTransform:
    """Callable ``(x: float batch in pixel units, index: base-dataset indices) -> x'``.

    Image batches arrive in 0..255 units (vector data as is); ``noise.std`` is given in [0, 1]
    units, as ``InputTransform`` documents, and scaled here.
    """

    def __init__(self, spec: InputTransform, shape: tuple[int, ...], device: torch.device) -> None:
        self.spec = spec
        self.shape = shape
        gen = torch.Generator().manual_seed(spec.seed if spec.seed is not None else 0)
        self._perm: torch.Tensor | None = None
        self._grid: torch.Tensor | None = None
        self._noise: torch.Tensor | None = None
        if spec.kind == "permutation":
            self._perm = torch.randperm(math.prod(shape), generator=gen).to(device)
        elif spec.kind == "rotation":
            if len(shape) != 3:
                raise ValueError("rotation needs image inputs [C, H, W]")
            angle = math.radians(spec.degrees)
            theta = torch.tensor(
                [[math.cos(angle), -math.sin(angle), 0.0], [math.sin(angle), math.cos(angle), 0.0]]
            )
            self._grid = F.affine_grid(theta[None], [1, *shape], align_corners=False).to(device)
        elif spec.kind == "noise":
            self._noise = (torch.randn(NOISE_BANK_SIZE, *shape, generator=gen) * spec.std).to(
                device
            )

    def __call__(self, x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        kind = self.spec.kind
        if kind == "permutation":
            return x.flatten(1)[:, self._perm].view_as(x)
        if kind == "rotation":
            grid = self._grid.expand(x.shape[0], -1, -1, -1)
            return F.grid_sample(x, grid, align_corners=False, padding_mode="zeros")
        if kind == "noise":
            return (x + self._noise[index % NOISE_BANK_SIZE]).clamp_(0.0, 255.0)
        return x
