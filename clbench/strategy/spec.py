"""What a strategy or plugin *is*, apart from how it runs: parameters, summary, capabilities.

Torch-free, so validating a config, hashing it and listing components never import torch. A
built-in method declares a spec class in its package's ``specs`` folder with
``@STRATEGIES.spec("name", "module:Class")`` and implements it in a class that subclasses both the
spec and `Strategy` (or `Plugin`); a method of your own is one class with both, as in
`docs/writing-a-strategy.md`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, ConfigDict

if TYPE_CHECKING:
    from clbench.config import RunConfig
    from clbench.scenario.plan import ScenarioPlan

# What a strategy routes through the API, so that plugins reach it (Capabilities.routes)
LOSS_TERMS = "loss_terms"  # its training loss goes through Strategy.loss / plugin_loss
MEMORY_DRAWS = "memory_draws"  # replay positions come from Strategy.sample_memory
TRAIN_BATCHES = "train_batches"  # it trains on the batch handed in and those of make_batch
MODEL = "model"  # it trains and predicts with ctx.model (plugins that change the model reach it)
ROUTES = frozenset({LOSS_TERMS, MEMORY_DRAWS, TRAIN_BATCHES, MODEL})


@dataclass(frozen=True)
class Capabilities:
    """What a strategy supports; a run is refused before it starts if the scenario does not fit."""

    settings: frozenset[str] = frozenset({"class", "domain", "task"})
    uses_buffer: bool = False  # replays from a memory (`Strategy.memory`)
    needs_pretrained: bool = False
    # what the strategy passes through the API helpers, so plugins reach it (ROUTES)
    routes: frozenset[str] = ROUTES
    # updates go through `Strategy.step` (so `train.grad_clip` and fp16 loss scaling apply)
    steps_through_api: bool = True

    def problems_with(self, plan: ScenarioPlan) -> list[str]:
        problems = []
        if plan.setting not in self.settings:
            allowed = ", ".join(sorted(self.settings))
            problems.append(f"supports {allowed}-incremental scenarios, not {plan.setting}")
        return problems


@dataclass(frozen=True)
class SpecPlan:
    """A strategy's part of a run's plan, told by its spec (`StrategySpec.spec_plan`)."""

    memory_slots: int = 0  # replay memory slots (0: no memory)
    stored_values: int = 0  # values a slot holds besides index and label (DER: the logits)


class StrategySpec:
    """A strategy's parameters (nested pydantic ``Config``), summary and capabilities."""

    class Config(BaseModel):
        model_config = ConfigDict(extra="forbid")

    capabilities: ClassVar[Capabilities] = Capabilities()
    summary: ClassVar[str] = ""
    # False when state_dict cannot capture the whole strategy: its runs are not checkpointed
    resumable: ClassVar[bool] = True
    registered_name: ClassVar[str]

    @classmethod
    def spec_plan(cls, params: Any, plan: ScenarioPlan) -> SpecPlan | None:
        """The strategy's part of the plan ``clbench run --dry-run`` prints, from the spec alone,
        or None (the default) when only building the strategy tells.

        Return one only when the built strategy trains the model alone (all its parameters) on
        each phase's scenario parts in the default batches, refuses no scenario beyond
        `capabilities`, and has the memory described: the dry run then needs no torch.
        ``tests/engine/test_dry_run.py`` checks every strategy's answer against its built run.
        """
        return None


class PluginSpec:
    """A plugin's parameters (nested pydantic ``Config``), summary and cross-section checks."""

    class Config(BaseModel):
        model_config = ConfigDict(extra="forbid")

    summary: ClassVar[str] = ""
    registered_name: ClassVar[str]

    @classmethod
    def check_run(cls, params: Any, config: RunConfig) -> None:
        """Refuse settings of other sections this plugin cannot work with (`ConfigError`)."""
