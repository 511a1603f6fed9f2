"""Spec of the data source in `../digits.py`: parameters, summary, and the data as arrays."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import ClassVar

import numpy as np
from pydantic import Field

from clbench.data.arrays import ArrayDataset, ArraySplit
from clbench.data.source import DataSource
from clbench.data.splits import stratified_split
from clbench.registry import DATASETS


@DATASETS.spec("digits", "clbench.data.sources.digits:Digits")
class DigitsSpec(DataSource):
    class Config(DataSource.Config):
        test_fraction: float = Field(
            0.2, gt=0.0, lt=1.0, description="Fraction of every class held out for testing."
        )
        split_seed: int = Field(0, description="Seed of the stratified train/test split.")

    summary: ClassVar[str] = "scikit-learn's bundled 8x8 digits (1797 images, 10 classes)."
    config: Config

    def arrays(self) -> ArrayDataset:
        """uint8 images ``[N, 1, 8, 8]`` (0..16 intensities scaled by ``x * 255 // 16``) and a
        stratified test split drawn from ``split_seed``."""
        data, target = bundled_digits()
        x = (data.astype(np.int64) * 255 // 16).astype(np.uint8).reshape(-1, 1, 8, 8)
        y = target.astype(np.int64)
        train, test = stratified_split(target, self.config.test_fraction, self.config.split_seed)
        return ArrayDataset(
            name="digits",
            train=ArraySplit(x[train], y[train]),
            test=ArraySplit(x[test], y[test]),
            class_names=tuple(str(k) for k in range(10)),
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
