"""The stratified train/test split of sources without an official test set (torch-free)."""

from __future__ import annotations

import numpy as np


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
