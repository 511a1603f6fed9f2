"""The ``train`` recipe beyond the optimizer: its checks before a run starts, and the training-batch
augmentation a run hands its strategy (`StrategyContext.augment`).

The learning-rate schedule and the update's loss scaling and clipping live with the strategy API
(`clbench.strategy.lr_schedule`, `clbench.strategy.stepper`); this module decides whether a
config may use them at all, so a refused combination exits before any folder is made.
"""

from __future__ import annotations

from typing import Any

import torch

from clbench.data.augment import build_train_augment
from clbench.data.dataset import InMemoryDataset
from clbench.data.stream import Batch
from clbench.engine.recipe_checks import check_augment_inputs, check_recipe_settings
from clbench.errors import ConfigError
from clbench.strategy import Capabilities


def fp16_problem(device: torch.device) -> str | None:
    """Why fp16 autocast with loss scaling cannot run on ``device`` (None if it can): a tiny
    autocast forward, scaled backward and step, as a run would make them."""
    if not torch.amp.is_autocast_available(device.type):
        return f"torch has no autocast for {device.type!r} devices"
    try:
        layer = torch.nn.Linear(4, 2).to(device)
        optimizer = torch.optim.SGD(layer.parameters(), lr=0.1)
        scaler = torch.amp.GradScaler(device.type)
        with torch.autocast(device.type, dtype=torch.float16):
            out = layer(torch.ones(2, 4, device=device))
        scaler.scale(out.float().sum()).backward()
        scaler.step(optimizer)
        scaler.update()
    except (RuntimeError, NotImplementedError, TypeError) as exc:
        return f"fp16 autocast with a GradScaler fails on {device}: {exc}"
    return None


def check_recipe(
    config: Any, device: torch.device, strategy: str, capabilities: Capabilities
) -> None:
    """Refuse, before anything runs, recipe settings this device or strategy cannot honour."""
    if config.precision == "fp16":
        problem = fp16_problem(device)
        if problem:
            raise ConfigError("precision", "fp16", f"fp32 or bf16 here ({problem})")
    check_recipe_settings(config, strategy, capabilities)


def check_augment_data(config: Any, dataset: InMemoryDataset) -> None:
    check_augment_inputs(config, dataset.is_image)


class BatchAugmenter:
    """Augments training batches with per-sample parameters from its own seeded generator (its
    state travels in checkpoints, so a resumed run draws what the uninterrupted one drew)."""

    def __init__(self, name: str, dataset: InMemoryDataset, seed: int) -> None:
        self.name = name
        self.fn = build_train_augment(name, dataset.input_shape, dataset.mean, dataset.std)
        self.generator = torch.Generator().manual_seed(seed)

    def __call__(self, batch: Batch) -> Batch:
        if self.fn is None:
            return batch
        x = self.fn(batch.x, self.generator)
        return Batch(x=x, y=batch.y, task=batch.task, index=batch.index)
