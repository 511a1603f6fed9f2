"""Spec of the `resnet` model builder (implementation: `clbench/models/resnet.py`)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from clbench.models.spec import ModelSpec
from clbench.registry import MODELS


@MODELS.spec("slim_resnet18", "clbench.models.resnet:SlimResNet18")
class SlimResNet18Spec(ModelSpec):
    summary = "slim ResNet-18 of GEM / the stability-gap paper (nf=20, 160 features at 32x32)"

    class Config(ModelSpec.Config):
        nf: int = Field(20, ge=1, description="width of the first stage (official code: 20)")
        pooling: Literal["paper", "global"] = Field(
            "paper",
            description="'paper': avg_pool2d(4) as in GEM (global if the map is < 4); "
            "'global': global average pooling, feature size 8*nf for every input size",
        )
