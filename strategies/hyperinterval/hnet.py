"""HyperInterval's hypernetwork and its per-task schedules.

Official code gmum/HyperInterval@d42305d: `IntervalNets/hmlp_ibp_wo_nesting.py` (hypernetwork),
`train_non_forced_scenario.py::train_single_task` (κ and ε schedules).

- `HyperNet`: the official ``HMLP_IBP`` (hypnettorch ``HMLP`` with ``uncond_in_size=0``): an MLP
  from the embedding to all target parameters, flat, run by IBP on an embedding box.
- `kappa_at`, `eps_at`: κ and the radius warm-up ε_it at iteration ``it`` of a task.
"""

from __future__ import annotations

import itertools

import torch
from torch import nn

from clbench.strategies.hyperinterval.interval import hypernet_ibp


class HyperNet(nn.Module):
    """MLP hypernetwork: embedding (M) → hidden (ReLU) → all target parameters, flat."""

    def __init__(self, emb_dim: int, hidden: list[int], n_out: int) -> None:
        super().__init__()
        sizes = [emb_dim, *hidden, n_out]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in itertools.pairwise(sizes))

    def ibp(self, centre: torch.Tensor, radius: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return hypernet_ibp([(m.weight, m.bias) for m in self.layers], centre, radius)


def kappa_at(it: int, n_half: int, schedule: str, final: float, decay: float) -> float:
    """κ at iteration ``it`` of a task (official ``train_single_task``, or a linear ramp)."""
    if it >= n_half:
        return final
    if schedule == "official":  # falls by `decay` per iteration, then jumps to `final`
        return max(1.0 - decay * it, final)
    return 1.0 - (1.0 - final) * it / max(1, n_half)  # linear_to_final


def eps_at(it: int, n_half: int, eps: float) -> float:
    """Radius warm-up: ``it/(N_half − 1)·ε`` over the first half, then ε (official)."""
    if it >= n_half:
        return eps
    return eps * it / max(1, n_half - 1)
