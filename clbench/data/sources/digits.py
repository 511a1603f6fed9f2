"""`digits`: scikit-learn's bundled 8x8 handwritten digits, real data that needs no download.

It is the data of the embedded default run: 1797 images, small enough to train in seconds on a CPU.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import torch

from clbench.data.dataset import InMemoryDataset, Split
from clbench.data.source import DataSource
from clbench.data.sources._common import channel_stats, stratified_split
from clbench.data.sources.specs.digits import DigitsSpec
from clbench.registry import DATASETS


@DATASETS.register("digits")
class Digits(DigitsSpec, DataSource):
    """The UCI optical digits shipped with scikit-learn, as uint8 images ``[N, 1, 8, 8]``.

    The original 0..16 intensities are scaled to 0..255 (``x * 255 // 16``). There is no official
    test split, so a stratified one is drawn from ``split_seed``; mean/std come from the train
    split.
    """

    config: DigitsSpec.Config

    def load(self) -> InMemoryDataset:
        data, target = bundled_digits()
        pixels = data.astype(np.int64) * 255 // 16
        x = torch.from_numpy(pixels.astype(np.uint8).reshape(-1, 1, 8, 8))
        y = torch.from_numpy(target.astype(np.int64))
        train_idx, test_idx = (
            torch.from_numpy(idx)
            for idx in stratified_split(target, self.config.test_fraction, self.config.split_seed)
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


def bundled_digits() -> tuple[np.ndarray, np.ndarray]:
    """``(data [1797, 64], target [1797])`` as ``sklearn.datasets.load_digits`` returns them.

    Read straight from the CSV scikit-learn ships (``sklearn/datasets/data/digits.csv.gz``),
    which takes milliseconds, where importing ``sklearn.datasets`` takes about 0.6 s on 2 cores;
    `load_digits` itself is the fallback should the file move.
    """
    spec = importlib.util.find_spec("sklearn")  # locates the package without importing it
    if spec is not None and spec.origin is not None:
        path = Path(spec.origin).parent / "datasets" / "data" / "digits.csv.gz"
        if path.is_file():
            table = np.loadtxt(path, delimiter=",")
            return table[:, :-1], table[:, -1].astype(np.int64)
    from sklearn.datasets import load_digits

    bunch = load_digits()
    return bunch.data, bunch.target
