"""Joint training's spec (implementation: `joint.py`)."""

from __future__ import annotations

from clbench.registry import STRATEGIES
from clbench.strategies.specs.naive import NaiveSpec


@STRATEGIES.spec("joint", "clbench.strategies.joint:Joint")
class JointSpec(NaiveSpec):
    summary = "Cumulative training on all data seen so far (upper bound)"
