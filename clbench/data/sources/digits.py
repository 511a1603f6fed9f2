"""`digits`: scikit-learn's bundled 8x8 handwritten digits, real data that needs no download.

It is the data of the embedded default run: 1797 images, small enough to train in seconds on a CPU.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import torch
from pydantic import Field

from clbench.data.dataset import InMemoryDataset, Split
from clbench.data.source import DataSource
from clbench.data.sources._common import channel_stats, stratified_split
from clbench.registry import DATASETS


@DATASETS.register("digits")
class Digits(DataSource):
    """The UCI optical digits shipped with scikit-learn, as uint8 images ``[N, 1, 8, 8]``.

    The original 0..16 intensities are scaled to 0..255 (``x * 255 // 16``). There is no official
    test split, so a stratified one is drawn from ``split_seed``; mean/std come from the train
    split.
    """

    class Config(DataSource.Config):
        test_fraction: float = Field(
            0.2, gt=0.0, lt=1.0, description="Fraction of every class held out for testing."
        )
        split_seed: int = Field(0, description="Seed of the stratified train/test split.")

    summary: ClassVar[str] = "scikit-learn's bundled 8x8 digits (1797 images, 10 classes)."
    config: Config

    def load(self) -> InMemoryDataset:
        from sklearn.datasets import load_digits  # lazy: sklearn is slow to import

        bunch = load_digits()
        pixels = bunch.data.astype(np.int64) * 255 // 16
        x = torch.from_numpy(pixels.astype(np.uint8).reshape(-1, 1, 8, 8))
        y = torch.from_numpy(bunch.target.astype(np.int64))
        train_idx, test_idx = (
            torch.from_numpy(idx)
            for idx in stratified_split(
                bunch.target, self.config.test_fraction, self.config.split_seed
            )
        )
        train = Split(x[train_idx], y[train_idx])
        mean, std = channel_stats(train.x)
        return InMemoryDataset(
            name="digits",
            train=train,
            test=Split(x[test_idx], y[test_idx]),
            class_names=tuple(str(k) for k in range(10)),
            mean=mean,
            std=std,
        )
