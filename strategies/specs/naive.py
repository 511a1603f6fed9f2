"""Naive fine-tuning's spec (implementation: `naive.py`)."""

from __future__ import annotations

from typing import Any

from clbench.registry import STRATEGIES
from clbench.scenario.plan import ScenarioPlan
from clbench.strategy.spec import SpecPlan, StrategySpec


@STRATEGIES.spec("naive", "clbench.strategies.naive:Naive")
class NaiveSpec(StrategySpec):
    summary = "Fine-tuning on each phase's data only (lower bound)"

    @classmethod
    def spec_plan(cls, params: Any, plan: ScenarioPlan) -> SpecPlan:
        return SpecPlan()
