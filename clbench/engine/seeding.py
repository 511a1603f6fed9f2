"""Seeds: one run seed, an independent derived seed per purpose (recorded in the manifest).

torch is imported by the functions that set its state, so that deriving seeds (a dry run builds
the scenario from its seed) does not import it.
"""

from __future__ import annotations

import contextlib
import hashlib
import random
from collections.abc import Iterator

import numpy as np

PURPOSES = ("scenario", "model", "data_order", "strategy", "eval_subsets", "augment")


def derive_seed(seed: int, purpose: str) -> int:
    """A 31-bit seed for ``purpose``, independent across purposes and stable across versions."""
    return int.from_bytes(hashlib.sha256(f"{seed}:{purpose}".encode()).digest()[:4], "big") >> 1


def derived_seeds(seed: int) -> dict[str, int]:
    return {purpose: derive_seed(seed, purpose) for purpose in PURPOSES}


def seed_globals(seed: int) -> None:
    """Seed python, numpy and torch global RNGs (used by model initialisation)."""
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


@contextlib.contextmanager
def torch_settings(deterministic: bool, threads: int | None) -> Iterator[None]:
    """Set torch's process-wide deterministic mode and CPU threads for a run, then restore them
    (sweep workers run many configs in one process)."""
    import torch

    previous = (
        torch.are_deterministic_algorithms_enabled(),
        torch.is_deterministic_algorithms_warn_only_enabled(),
        torch.get_num_threads(),
    )
    if deterministic:
        torch.use_deterministic_algorithms(True)
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(previous[0], warn_only=previous[1])
        torch.set_num_threads(previous[2])
