"""SLCA (Zhang et al., ICCV 2023): the strategy (`strategy`) and its per-class feature statistics
(`class_stats`)."""

from clbench.strategies.slca.strategy import SLCA

__all__ = ["SLCA"]
