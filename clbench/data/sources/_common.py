"""Helpers shared by the data sources: split, statistics and the error for unreadable files.

The leading underscore keeps the registry from importing this module as a source.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from clbench.errors import DataNotFoundError

DOWNLOAD_FIX = (
    "pass data.download=true when online, or put the files there, "
    "or set data.root / CLBENCH_DATA to the folder that holds them"
)


class CorruptDataError(DataNotFoundError):
    """A dataset file exists but is truncated or not in the expected format.

    A subclass of `DataNotFoundError` because the remedy is the same (fetch the file again) and
    callers that stop a run on missing data should stop on unusable data too.
    """

    def __init__(self, path: Path, problem: str) -> None:
        super().__init__(f"{path}: {problem}; delete it and download it again")
        self.path = path


def stratified_split(
    labels: np.ndarray, test_fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Train and test indices (each ascending) holding ``test_fraction`` of every class in test.

    Per class ``round(n_c * test_fraction)`` samples go to test, chosen by a generator seeded with
    ``seed`` only, so the split depends on nothing but the labels, the fraction and the seed.
    """
    rng = np.random.default_rng(seed)
    test: list[np.ndarray] = []
    for cls in np.unique(labels):
        members = np.flatnonzero(labels == cls)
        n_test = round(len(members) * test_fraction)
        test.append(rng.permutation(members)[:n_test])
    is_test = np.zeros(len(labels), dtype=bool)
    if test:
        is_test[np.concatenate(test)] = True
    return np.flatnonzero(~is_test), np.flatnonzero(is_test)


def channel_stats(x: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and (population) std in [0, 1] scale of uint8 images ``[N, C, H, W]``.

    Uses a 256-bin histogram per channel: exact, and no float copy of the whole dataset. Float
    vector data gets one scalar mean and std, matching the broadcast convention of vector sources.
    """
    if x.dtype != torch.uint8:
        flat = x.to(torch.float64).reshape(-1)
        return (float(flat.mean()),), (float(flat.std(unbiased=False)),)
    levels = torch.arange(256, dtype=torch.float64) / 255.0
    means, stds = [], []
    for c in range(x.shape[1]):
        counts = torch.bincount(x[:, c].reshape(-1), minlength=256).to(torch.float64)
        n = counts.sum()
        mean = (counts * levels).sum() / n
        var = (counts * levels**2).sum() / n - mean**2
        means.append(float(mean))
        stds.append(float(var.clamp_min(0).sqrt()))
    return tuple(means), tuple(stds)
