"""Shared fixtures: tiny in-memory datasets and fast run configs."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import torch

from clbench.data.dataset import InMemoryDataset, Split


def make_image_dataset(
    classes: int = 4, train_per_class: int = 12, test_per_class: int = 6
) -> InMemoryDataset:
    """uint8 [N,1,4,4] images whose pixels encode (class, sample) so batches are checkable."""

    def split(per_class: int, offset: int) -> Split:
        y = torch.arange(classes).repeat_interleave(per_class)
        x = (
            (torch.arange(len(y)) + offset)
            .remainder(256)
            .to(torch.uint8)
            .view(-1, 1, 1, 1)
            .expand(-1, 1, 4, 4)
        )
        return Split(x.contiguous(), y)

    return InMemoryDataset(
        name="tiny",
        train=split(train_per_class, 0),
        test=split(test_per_class, 100),
        class_names=tuple(str(c) for c in range(classes)),
        mean=(0.0,),
        std=(1.0,),
    )


@pytest.fixture(autouse=True, scope="session")
def _private_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Files clbench stages in its cache (Avalanche's torchvision layout) stay out of ~/.cache."""
    os.environ["CLBENCH_CACHE"] = str(tmp_path_factory.mktemp("clbench-cache"))


@pytest.fixture
def image_dataset() -> InMemoryDataset:
    return make_image_dataset()


def fast_overrides(tmp_path: Any, **extra: Any) -> list[str]:
    """Overrides for a seconds-long run on synthetic data (4 tasks x 2 classes)."""
    base = {
        "data.name": "synthetic",
        "data.num_classes": 8,
        "data.dim": 16,
        "data.train_per_class": 60,
        "data.test_per_class": 30,
        "data.noise": 0.5,
        "scenario.name": "class_incremental",
        "scenario.n_experiences": 4,
        "model.hidden_sizes": "[32]",
        "train.epochs": 2,
        "train.batch_size": 16,
        "eval.subset_size": 40,
        "output.root": str(tmp_path),
        "output.plot": "false",
    }
    base.update({k: str(v) for k, v in extra.items()})
    return [f"{k}={v}" for k, v in base.items()]


@pytest.fixture(scope="session")
def resnet18_backbone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A timm resnet18 backbone file saved by the tests themselves (random init, 16 px): what
    `model.pretrained` loads offline."""
    from clbench.models.timm_model import save_backbone_checkpoint
    from clbench.registry import MODELS, validate_params

    cls = MODELS.get("timm")
    params = validate_params(cls.Config, {"arch": "resnet18", "image_size": 16}, "model")
    model = cls(params).build((1, 8, 8), 4)
    return save_backbone_checkpoint(model, tmp_path_factory.mktemp("backbone") / "r18.pth")
