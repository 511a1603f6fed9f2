"""`synthetic`: seeded Gaussian class clusters with a knob for how similar consecutive tasks are.

No files, fully determined by its parameters, so tests and smoke runs need no data at all.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from clbench.data.dataset import InMemoryDataset, Split
from clbench.data.source import DataSource
from clbench.data.sources._common import channel_stats
from clbench.data.sources.specs.synthetic import SyntheticSpec
from clbench.registry import DATASETS

# Standardised values in [-QUANT_RANGE, QUANT_RANGE] map linearly onto pixel values 0..255.
QUANT_RANGE = 3.0


@DATASETS.register("synthetic")
class Synthetic(SyntheticSpec, DataSource):
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

    config: SyntheticSpec.Config

    def load(self) -> InMemoryDataset:
        cfg = self.config
        dim = cfg.dim if cfg.image_size is None else cfg.image_size**2
        rng = np.random.default_rng(cfg.seed)
        means = rng.standard_normal((cfg.num_classes, dim))
        s = cfg.task_similarity
        for k in range(2, cfg.num_classes):
            means[k] = s * means[k - 2] + math.sqrt(1.0 - s * s) * means[k]
        scale = 1.0 / math.sqrt(1.0 + cfg.noise**2)

        def draw(per_class: int) -> Split:
            y = np.repeat(np.arange(cfg.num_classes, dtype=np.int64), per_class)
            x = (means[y] + cfg.noise * rng.standard_normal((len(y), dim))) * scale
            if cfg.image_size is not None:
                pixels = np.clip((x + QUANT_RANGE) / (2 * QUANT_RANGE), 0.0, 1.0) * 255.0
                side = cfg.image_size
                images = np.rint(pixels).astype(np.uint8).reshape(-1, 1, side, side)
                return Split(torch.from_numpy(images), torch.from_numpy(y))
            return Split(torch.from_numpy(x.astype(np.float32)), torch.from_numpy(y))

        train, test = draw(cfg.train_per_class), draw(cfg.test_per_class)
        if cfg.image_size is None:
            mean, std = (0.0,), (1.0,)
        else:
            mean, std = channel_stats(train.x)
        return InMemoryDataset(
            name="synthetic",
            train=train,
            test=test,
            class_names=tuple(str(k) for k in range(cfg.num_classes)),
            mean=mean,
            std=std,
        )
