"""Spec of the data source in `../synthetic.py`: parameters, summary, and the samples as arrays."""

from __future__ import annotations

import math
from typing import ClassVar

import numpy as np
from pydantic import Field, model_validator

from clbench.data.arrays import ArrayDataset, ArraySplit
from clbench.data.source import DataSource
from clbench.registry import DATASETS

# Standardised values in [-QUANT_RANGE, QUANT_RANGE] map linearly onto pixel values 0..255.
QUANT_RANGE = 3.0


@DATASETS.spec("synthetic", "clbench.data.sources.synthetic:Synthetic")
class SyntheticSpec(DataSource):
    """Gaussian class clusters; consecutive tasks share geometry as far as ``task_similarity`` says.

    Class means: draw independent ``z_k ~ N(0, I_dim)`` for every class k. Classes 0 and 1 (task 0
    under the default 2-classes-per-task split) use ``m_k = z_k``. For task ``j >= 1`` the classes
    ``k = 2j`` and ``k = 2j + 1`` use::

        m_k = s * m_{k-2} + sqrt(1 - s**2) * z_k        (s = task_similarity)

    i.e. class 2j is pulled toward class 2j-2 and class 2j+1 toward class 2j-1. Every mean stays
    marginally ``N(0, I_dim)`` (so class separation does not depend on ``s``), the correlation of a
    mean with its counterpart in the previous task is exactly ``s``, and the expected squared
    distance between them is ``2 * dim * (1 - s)``: ``s = 1`` makes consecutive tasks share their
    cluster geometry exactly (their classes coincide), ``s = 0`` makes them independent.

    Samples are ``m_y + noise * eps`` with ``eps ~ N(0, I_dim)``, divided by ``sqrt(1 + noise**2)``
    so every feature has unit variance in expectation: vector data is therefore announced as
    already standardised (mean 0, std 1). With ``image_size`` set, ``dim`` becomes
    ``image_size**2`` and the standardised values in [-3, 3] are quantised to uint8 single-channel
    images ``[N, 1, image_size, image_size]`` (statistics then computed from the train split).
    """

    class Config(DataSource.Config):
        num_classes: int = Field(10, ge=2, description="Number of classes (clusters).")
        dim: int = Field(32, ge=1, description="Feature dimension of the vectors.")
        train_per_class: int = Field(200, ge=1, description="Training samples per class.")
        test_per_class: int = Field(100, ge=1, description="Test samples per class.")
        noise: float = Field(
            2.0, ge=0.0, description="Cluster std relative to the unit spread of class means."
        )
        task_similarity: float = Field(
            0.0,
            ge=0.0,
            le=1.0,
            description="Correlation of classes 2j, 2j+1 with classes 2j-2, 2j-1 "
            "(1: consecutive tasks share cluster geometry, 0: independent).",
        )
        image_size: int | None = Field(
            None,
            ge=2,
            description="If set, emit uint8 single-channel image_size x image_size images "
            "(dim = image_size**2) instead of float vectors.",
        )
        seed: int = Field(0, description="Seed of class means and samples.")

        @model_validator(mode="after")
        def _dim_matches_image(self) -> SyntheticSpec.Config:
            if self.image_size is None:
                return self
            if "dim" in self.model_fields_set and self.dim != self.image_size**2:
                raise ValueError(f"dim must be image_size**2 = {self.image_size**2} or left unset")
            # store the implied dim so the resolved config re-validates unchanged
            self.dim = self.image_size**2
            return self

    summary: ClassVar[str] = "Seeded Gaussian class clusters with controllable task similarity."
    config: Config

    def arrays(self) -> ArrayDataset:
        cfg = self.config
        dim = cfg.dim if cfg.image_size is None else cfg.image_size**2
        rng = np.random.default_rng(cfg.seed)
        means = rng.standard_normal((cfg.num_classes, dim))
        s = cfg.task_similarity
        for k in range(2, cfg.num_classes):
            means[k] = s * means[k - 2] + math.sqrt(1.0 - s * s) * means[k]
        scale = 1.0 / math.sqrt(1.0 + cfg.noise**2)

        def draw(per_class: int) -> ArraySplit:
            y = np.repeat(np.arange(cfg.num_classes, dtype=np.int64), per_class)
            x = (means[y] + cfg.noise * rng.standard_normal((len(y), dim))) * scale
            if cfg.image_size is not None:
                pixels = np.clip((x + QUANT_RANGE) / (2 * QUANT_RANGE), 0.0, 1.0) * 255.0
                side = cfg.image_size
                return ArraySplit(np.rint(pixels).astype(np.uint8).reshape(-1, 1, side, side), y)
            return ArraySplit(x.astype(np.float32), y)

        train, test = draw(cfg.train_per_class), draw(cfg.test_per_class)
        return ArrayDataset(
            name="synthetic",
            train=train,
            test=test,
            class_names=tuple(str(k) for k in range(cfg.num_classes)),
        )
