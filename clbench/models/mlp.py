"""Multi-layer perceptron over flattened inputs (the stability-gap MNIST network)."""

from __future__ import annotations

import math

from torch import nn

from clbench.models.base import ContinualModel, ModelBuilder
from clbench.models.specs.mlp import MLPSpec
from clbench.registry import MODELS


@MODELS.register("mlp")
class MLP(MLPSpec, ModelBuilder):
    """Flatten -> [Linear -> (BatchNorm) -> ReLU -> (Dropout)] per hidden layer -> linear head.

    The default is the MNIST network of De Lange et al. (ICLR 2023), official code
    Mattdl/ContinualEvaluation@7ffa368:src/model.py::MLPfeat: 784 -> 400 -> ReLU -> 400 -> ReLU,
    then ``Linear(400, n)``. The features are the last hidden layer's activations.
    """

    config: MLPSpec.Config

    def build(self, input_shape: tuple[int, ...], num_outputs: int) -> ContinualModel:
        """MLP over ``prod(input_shape)`` inputs with ``num_outputs`` logits."""
        cfg = self.config
        width = math.prod(input_shape)
        layers: list[nn.Module] = [nn.Flatten()]
        for size in cfg.hidden_sizes:
            layers.append(nn.Linear(width, size))
            if cfg.batch_norm:
                layers.append(nn.BatchNorm1d(size))
            layers.append(nn.ReLU(inplace=True))
            if cfg.dropout > 0:
                layers.append(nn.Dropout(cfg.dropout))
            width = size
        return ContinualModel(nn.Sequential(*layers), width, num_outputs)
