"""Base class of scenario generators (one file per family in `scenarios/`, installed as
`clbench.scenarios`)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, ClassVar

from pydantic import BaseModel, ConfigDict

if TYPE_CHECKING:  # types only: data sits above the scenario plan it imports
    from typing import TypeAlias

    from clbench.data.arrays import ArrayDataset
    from clbench.data.dataset import InMemoryDataset
    from clbench.scenario.plan import ScenarioPlan, Setting

    # What a plan is built from: the loaded dataset, or its arrays (a dry run without torch)
    PlanData: TypeAlias = InMemoryDataset | ArrayDataset


class ScenarioBuilder(ABC):
    """Turns a dataset into a `ScenarioPlan`, deterministically for a given seed.

    Subclasses register with ``@SCENARIOS.register("name")``, declare a nested pydantic ``Config``
    (``extra="forbid"``) and the incremental ``setting`` they produce. ``build`` raises
    `clbench.errors.ConfigError` naming the parameter when it does not fit the dataset (e.g. more
    experiences than classes), before any training starts. ``build`` gets the loaded dataset or
    its `ArrayDataset` (a dry run without torch) and must give the same plan from either: read
    labels and domain ids with ``np.asarray``, and otherwise only names, shapes and the checksum.
    """

    class Config(BaseModel):
        model_config = ConfigDict(extra="forbid")

    summary: ClassVar[str] = ""

    def __init__(self, config: BaseModel) -> None:
        self.config = config

    @property
    @abstractmethod
    def setting(self) -> Setting:
        """``class``, ``domain`` or ``task``: how labels and task ids are exposed."""

    @abstractmethod
    def build(self, dataset: PlanData, seed: int) -> ScenarioPlan:
        """Return the plan; ``seed`` drives every random choice (class order, permutations...)."""
