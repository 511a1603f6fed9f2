"""Spec of the `mlp` model builder (implementation: `clbench/models/mlp.py`)."""

from __future__ import annotations

from pydantic import Field, field_validator

from clbench.models.spec import ModelSpec
from clbench.registry import MODELS


@MODELS.spec("mlp", "clbench.models.mlp:MLP")
class MLPSpec(ModelSpec):
    summary = "MLP on flattened inputs (default 400-400, the stability-gap MNIST net)"

    class Config(ModelSpec.Config):
        hidden_sizes: list[int] = Field(
            default_factory=lambda: [400, 400],
            description="hidden widths, [] = linear model (stability-gap MNIST net: 400, 400)",
        )
        batch_norm: bool = Field(False, description="BatchNorm1d after each hidden linear layer")
        dropout: float = Field(0.0, ge=0.0, lt=1.0, description="dropout after each hidden ReLU")

        @field_validator("hidden_sizes")
        @classmethod
        def _positive(cls, sizes: list[int]) -> list[int]:
            if any(s < 1 for s in sizes):
                raise ValueError("every hidden size must be >= 1")
            return sizes
