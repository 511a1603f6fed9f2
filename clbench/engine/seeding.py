"""Seeds: one run seed, an independent derived seed per purpose (recorded in the manifest)."""

from __future__ import annotations

import hashlib
import random

import numpy as np
import torch

PURPOSES = ("scenario", "model", "data_order", "strategy", "eval_subsets")


def derive_seed(seed: int, purpose: str) -> int:
    """A 31-bit seed for ``purpose``, independent across purposes and stable across versions."""
    return int.from_bytes(hashlib.sha256(f"{seed}:{purpose}".encode()).digest()[:4], "big") >> 1


def derived_seeds(seed: int) -> dict[str, int]:
    return {purpose: derive_seed(seed, purpose) for purpose in PURPOSES}


def seed_globals(seed: int) -> None:
    """Seed python, numpy and torch global RNGs (used by model initialisation)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
