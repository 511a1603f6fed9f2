"""Fixtures every area may use: a private cache folder and a saved backbone. Fixtures of one area
are in that folder's conftest.py; helpers that are not fixtures are in tests/helpers.py (a
conftest module is never imported by a test)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from clbench.registry import DATASETS, MODELS, PLUGINS, SCENARIOS, STRATEGIES, validate_params

REGISTRIES = (DATASETS, SCENARIOS, MODELS, STRATEGIES, PLUGINS)


@pytest.fixture(autouse=True, scope="session")
def _private_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Files clbench stages in its cache (Avalanche's torchvision layout) stay out of ~/.cache."""
    os.environ["CLBENCH_CACHE"] = str(tmp_path_factory.mktemp("clbench-cache"))


@pytest.fixture(autouse=True)
def _registrations_removed() -> Iterator[None]:
    """A component a test registers (with `tests.helpers.registered`) is gone when it ends: no
    later test, the contract test's loop over every strategy included, sees it."""
    before = [set(registry._items) for registry in REGISTRIES]
    yield
    for registry, names in zip(REGISTRIES, before, strict=True):
        left = sorted(
            name
            for name, cls in registry._items.items()
            if name not in names and cls.__module__.startswith("tests.")
        )
        assert not left, f"{registry.kind} {left} still registered after the test"


@pytest.fixture(scope="session")
def resnet18_backbone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A timm resnet18 backbone file saved by the tests themselves (seeded random init, 16 px):
    what `model.pretrained` loads offline. The same weights whichever test asks first."""
    import torch

    from clbench.models.timm_model import save_backbone_checkpoint

    cls = MODELS.get("timm")
    params = validate_params(cls.Config, {"arch": "resnet18", "image_size": 16}, "model")
    with torch.random.fork_rng():  # leaves the process's generator as it was
        torch.manual_seed(0)
        model = cls(params).build((1, 8, 8), 4)
    return save_backbone_checkpoint(model, tmp_path_factory.mktemp("backbone") / "r18.pth")
