"""Fixtures every area may use: a private cache folder and a saved backbone. Fixtures of one area
are in that folder's conftest.py; helpers that are not fixtures are in tests/helpers.py (a
conftest module is never imported by a test)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture(autouse=True, scope="session")
def _private_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Files clbench stages in its cache (Avalanche's torchvision layout) stay out of ~/.cache."""
    os.environ["CLBENCH_CACHE"] = str(tmp_path_factory.mktemp("clbench-cache"))


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
