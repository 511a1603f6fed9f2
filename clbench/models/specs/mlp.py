"""Spec of the `mlp` model builder (implementation: `clbench/models/mlp.py`)."""

from __future__ import annotations

import math
from typing import Any

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

    @classmethod
    def parameter_count(cls, params: Any, input_shape: tuple[int, ...], num_outputs: int) -> int:
        """Each hidden layer's weights and biases (BatchNorm: its scale and shift), the head's."""
        count, width = 0, math.prod(input_shape)
        for size in params.hidden_sizes:
            count += (width + 1) * size + (2 * size if params.batch_norm else 0)
            width = size
        return count + (width + 1) * num_outputs
