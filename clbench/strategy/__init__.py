"""The strategy API: what a method implements and what the engine hands it.

`Strategy` is the learner, `Plugin` a modifier any strategy can take, `StrategyContext` what
both are given at setup, `LoopState` where the training loop is (`docs/writing-a-strategy.md`).
`StrategySpec` / `PluginSpec` / `Capabilities` (`clbench.strategy.spec`) are what a method is
apart from how it runs. Names are loaded on first use (PEP 562), so importing a spec from here
does not import torch.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from clbench.strategy.base import OptimizerSettings, Strategy, StrategyContext
    from clbench.strategy.loop import LoopPlan, LoopState
    from clbench.strategy.plugin import Plugin, PluginChain
    from clbench.strategy.spec import (
        LOSS_TERMS,
        MEMORY_DRAWS,
        MODEL,
        ROUTES,
        TRAIN_BATCHES,
        Capabilities,
        PluginSpec,
        StrategySpec,
    )

_WHERE = {
    "OptimizerSettings": "base",
    "Strategy": "base",
    "StrategyContext": "base",
    "LoopPlan": "loop",
    "LoopState": "loop",
    "Plugin": "plugin",
    "PluginChain": "plugin",
    **dict.fromkeys(
        ("LOSS_TERMS", "MEMORY_DRAWS", "MODEL", "ROUTES", "TRAIN_BATCHES", "Capabilities"), "spec"
    ),
    "PluginSpec": "spec",
    "StrategySpec": "spec",
}
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
    "PluginSpec",
    "Strategy",
    "StrategyContext",
    "StrategySpec",
]


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(import_module(f"clbench.strategy.{_WHERE[name]}"), name)
    raise AttributeError(f"module 'clbench.strategy' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
