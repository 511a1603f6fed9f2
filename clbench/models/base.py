"""Base classes of models: a `ModelBuilder` (config -> network) and the `ContinualModel` it builds.

Every model is a backbone producing a flat feature vector plus one linear ``head`` over all
outputs. Strategies rely on exactly this split: replay/distillation methods use ``forward``,
SLCA trains ``backbone`` and ``head`` with different learning rates and fits class statistics on
``features``, FPF finetunes BatchNorm layers and ``head``. Task-incremental logit masking is done
by the engine, so models are plain single-head networks.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import torch
from pydantic import BaseModel
from torch import nn

from clbench.models.spec import ModelSpec


class ContinualModel(nn.Module):
    """A backbone (input -> ``[B, feature_dim]``) followed by a linear ``head``.

    Subclasses that preprocess inputs (resizing, channel repetition) override `features`; the
    head is looked up at call time, so a strategy may replace ``model.head`` with another
    module of the same input size.
    """

    def __init__(self, backbone: nn.Module, feature_dim: int, num_outputs: int) -> None:
        super().__init__()
        if num_outputs < 1:
            raise ValueError(f"num_outputs must be >= 1, got {num_outputs}")
        self.backbone = backbone
        self._feature_dim = int(feature_dim)
        self.head: nn.Linear = nn.Linear(self._feature_dim, num_outputs)

    @property
    def feature_dim(self) -> int:
        """Size of the penultimate representation returned by `features`."""
        return self._feature_dim

    @property
    def num_outputs(self) -> int:
        """Number of logits (``head.out_features``)."""
        return self.head.out_features

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate representation, shape ``[B, feature_dim]``."""
        return self.backbone(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits, shape ``[B, num_outputs]``."""
        return self.head(self.features(x))


class ModelBuilder(ModelSpec, ABC):
    """Builds a `ContinualModel` from a validated config.

    Subclasses register with ``@MODELS.register("name")`` and declare a nested pydantic
    ``Config`` (``extra="forbid"``) whose fields are the model's parameters (built-ins declare it
    in their torch-free spec, `clbench.models.spec`). `check` validates
    everything that can fail without knowing the data (unknown backbone name, missing weights
    file) and raises `clbench.errors.ConfigError` naming ``<field_prefix>.<param>``; the harness
    calls it before any training. `build` raises `clbench.errors.IncompatibleError` when the
    input shape does not fit the architecture.
    """

    def __init__(self, config: BaseModel, field_prefix: str = "model") -> None:
        self.config = config
        # Prefix of the config section, so errors name the field as the user wrote it.
        self.field_prefix = field_prefix

    def field(self, name: str) -> str:
        """Full config path of parameter ``name`` (e.g. ``model.pretrained``)."""
        return f"{self.field_prefix}.{name}"

    def check(self) -> None:
        """Raise `ConfigError` if the config cannot be built; default: always buildable."""

    def check_input(self, input_shape: tuple[int, ...]) -> None:
        """Raise `IncompatibleError` if inputs of ``input_shape`` do not fit the architecture;
        called with the data's shape before any run folder exists. Default: any shape fits."""

    @abstractmethod
    def build(self, input_shape: tuple[int, ...], num_outputs: int) -> ContinualModel:
        """Return a freshly initialised model for inputs of ``input_shape`` (no batch dim)."""
