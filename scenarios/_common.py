"""Helpers shared by the scenario families (private: the registry does not scan ``_`` modules)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from pydantic import BaseModel, Field, field_validator
from pydantic_core import PydanticCustomError

from clbench.errors import ConfigError
from clbench.later_keys import without_unset_later_keys
from clbench.registry import SCENARIOS, validate_params
from clbench.scenario import ScenarioBuilder
from clbench.scenario.plan import Phase, ScenarioPlan, Setting, Task, sequential_phases

if TYPE_CHECKING:
    from collections.abc import Sequence

    from clbench.scenario.base import PlanData

# Scenario parameters arrive under the ``scenario`` key of a run config; build-time errors name
# the full path so they read like the errors `validate_params` raises for the same config.
PREFIX = "scenario"


def param_error(param: str, value: Any, allowed: str) -> ConfigError:
    """A `ConfigError` for scenario parameter ``param`` (e.g. ``scenario.n_experiences``)."""
    return ConfigError(f"{PREFIX}.{param}", value, allowed)


def invalid(message: str) -> PydanticCustomError:
    """The error a Config validator raises: a plain ``ValueError`` would reach the user prefixed
    with pydantic's "Value error, "; the message is passed as context so braces stay literal."""
    return PydanticCustomError("invalid_scenario_parameter", "{message}", {"message": message})


def seeded_rng(seed: int, stream: int) -> np.random.Generator:
    """A generator for one kind of random choice of a build.

    Each choice (class order, transform seeds, sample chunks) gets its own stream so that adding
    or changing one never shifts the others for the same ``seed``. Seeds are taken modulo 2**64
    because numpy rejects negative entropy.
    """
    return np.random.default_rng([seed % 2**64, stream])


def indices_of_classes(labels: np.ndarray, classes: Sequence[int]) -> np.ndarray:
    """Sorted indices (int64) of the samples whose label is in ``classes``."""
    return np.flatnonzero(np.isin(labels, np.asarray(classes, dtype=labels.dtype))).astype(np.int64)


def make_plan(
    builder: ScenarioBuilder,
    dataset: PlanData,
    tasks: Sequence[Task],
    num_outputs: int,
    phases: Sequence[Phase] | None = None,
) -> ScenarioPlan:
    """Assemble the plan of ``builder``; phases default to one per task, in task order."""
    tasks = tuple(tasks)
    return ScenarioPlan(
        scenario=getattr(type(builder), "registered_name", type(builder).__name__),
        setting=builder.setting,
        dataset=dataset.name,
        dataset_checksum=dataset.checksum,
        num_outputs=num_outputs,
        tasks=tasks,
        phases=tuple(phases) if phases is not None else sequential_phases(tasks),
        params=without_unset_later_keys(builder.config.model_dump()),
    )


class NestedScenario:
    """A scenario given as ``{name: ..., **params}`` inside another scenario's config.

    Its parameters are validated when the outer builder is made (still before any work), so an
    error names the exact nested parameter (``scenario.of.n_experiences``) instead of the whole
    dict; dataset-dependent errors raised by ``build`` are re-pointed the same way.
    """

    def __init__(self, spec: dict[str, Any], field: str) -> None:
        params = dict(spec)
        name = params.pop("name")
        builder_cls = SCENARIOS.get(name, field=f"{field}.name")
        self.field = field
        self.builder: ScenarioBuilder = builder_cls(
            validate_params(builder_cls.Config, params, field)
        )
        self.resolved = {"name": name, **self.builder.config.model_dump()}

    def build(self, dataset: PlanData, seed: int) -> ScenarioPlan:
        try:
            return self.builder.build(dataset, seed)
        except ConfigError as exc:
            field = exc.field
            if field.startswith(f"{PREFIX}."):
                field = self.field + field[len(PREFIX) :]
            raise ConfigError(field, exc.value, exc.allowed) from None


class ScenarioOf(ScenarioBuilder):
    """A scenario made from another one, given under ``of`` as in a run config; it takes the
    inner scenario's setting."""

    class Config(ScenarioBuilder.Config):
        of: dict[str, Any] = Field(
            default_factory=lambda: {"name": "class_incremental"},
            description="The inner scenario, as in a run config: {name: <scenario>, "
            "<its parameters>...}, e.g. {name: class_incremental, n_experiences: 5}. Default: "
            "class_incremental with its defaults. Stored resolved (with the inner defaults).",
        )

        @field_validator("of")
        @classmethod
        def _named(cls, of: dict[str, Any]) -> dict[str, Any]:
            if not isinstance(of.get("name"), str):
                raise invalid("needs a 'name' key, e.g. {name: class_incremental}")
            return of

    def __init__(self, config: BaseModel) -> None:
        self.inner = NestedScenario(config.of, f"{PREFIX}.of")
        super().__init__(config.model_copy(update={"of": self.inner.resolved}))

    @property
    def setting(self) -> Setting:
        return self.inner.builder.setting
