"""Naive fine-tuning's spec (implementation: `naive.py`)."""

from __future__ import annotations

from clbench.registry import STRATEGIES
from clbench.strategy.spec import StrategySpec


@STRATEGIES.spec("naive", "clbench.strategies.naive:Naive")
class NaiveSpec(StrategySpec):
    summary = "Fine-tuning on each phase's data only (lower bound)"
