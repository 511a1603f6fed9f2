"""The strategy API: what a method implements and what the engine hands it.

`Strategy` is the learner, `Plugin` a modifier any strategy can take, `StrategyContext` what
both are given at setup, `LoopState` where the training loop is (`docs/writing-a-strategy.md`).
"""

from clbench.strategy.base import Capabilities, OptimizerSettings, Strategy, StrategyContext
from clbench.strategy.loop import LoopPlan, LoopState
from clbench.strategy.plugin import (
    LOSS_TERMS,
    MEMORY_DRAWS,
    MODEL,
    ROUTES,
    TRAIN_BATCHES,
    Plugin,
    PluginChain,
)

__all__ = [
    "LOSS_TERMS",
    "MEMORY_DRAWS",
    "MODEL",
    "ROUTES",
    "TRAIN_BATCHES",
    "Capabilities",
    "LoopPlan",
    "LoopState",
    "OptimizerSettings",
    "Plugin",
    "PluginChain",
    "Strategy",
    "StrategyContext",
]
