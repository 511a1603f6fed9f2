"""The scenario API: a builder turns a dataset into a `ScenarioPlan` (tasks, phases, parts)."""

from clbench.scenario.base import ScenarioBuilder

__all__ = ["ScenarioBuilder"]
