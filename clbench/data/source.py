"""Base class of data sources and the data-root convention."""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, ConfigDict

if TYPE_CHECKING:
    from clbench.data.dataset import InMemoryDataset

DATA_ROOT_ENV = "CLBENCH_DATA"


def resolve_data_root(root: str | os.PathLike[str] | None) -> Path:
    """The data root: the explicit value, else ``$CLBENCH_DATA``, else ``./data``."""
    if root is None:
        root = os.environ.get(DATA_ROOT_ENV) or "data"
    return Path(root).expanduser().absolute()  # absolute, so error messages name a clear path


class DataSource(ABC):
    """Loads one dataset into memory.

    Subclasses declare a nested pydantic ``Config`` with their parameters and register with
    ``@DATASETS.register("name")``. ``check_available`` must raise `DataNotFoundError` naming the
    expected path and the fix when files are missing and ``download`` is off, so a run fails
    before any training.
    """

    class Config(BaseModel):
        model_config = ConfigDict(extra="forbid")

    needs_files: ClassVar[bool] = False
    summary: ClassVar[str] = ""

    def __init__(self, config: BaseModel, root: Path, download: bool = False) -> None:
        self.config = config
        self.root = root
        self.download = download

    @classmethod
    def run_label(cls, params: Mapping[str, Any]) -> str:
        """The data's part of a run folder's name (``params``: the config's ``data`` section)."""
        return str(params["name"])

    def check_available(self) -> None:  # noqa: B027 - optional hook, default: always available
        """Raise `DataNotFoundError` if the data cannot be loaded; default: always available."""

    @abstractmethod
    def load(self) -> InMemoryDataset:
        """Return the whole dataset in memory."""
