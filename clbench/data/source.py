"""Base class of data sources and the data-root convention."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, ConfigDict

from clbench.errors import DataNotFoundError

if TYPE_CHECKING:
    from clbench.data.arrays import ArrayDataset
    from clbench.data.dataset import InMemoryDataset

DATA_ROOT_ENV = "CLBENCH_DATA"

DOWNLOAD_FIX = (
    "pass data.download=true when online, or put the files there, "
    "or set data.root / CLBENCH_DATA to the folder that holds them"
)


class CorruptDataError(DataNotFoundError):
    """A dataset file exists but is truncated or not in the expected format.

    A subclass of `DataNotFoundError` because the remedy is the same (fetch the file again) and
    callers that stop a run on missing data should stop on unusable data too.
    """

    def __init__(self, path: Path, problem: str) -> None:
        super().__init__(f"{path}: {problem}; delete it and download it again")
        self.path = path


def resolve_data_root(root: str | os.PathLike[str] | None) -> Path:
    """The data root: the explicit value, else ``$CLBENCH_DATA``, else ``./data``."""
    if root is None:
        root = os.environ.get(DATA_ROOT_ENV) or "data"
    return Path(root).expanduser().absolute()  # absolute, so error messages name a clear path


class DataSource:
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

    def check_available(self) -> None:
        """Raise `DataNotFoundError` if the data cannot be loaded; default: always available."""

    def load(self) -> InMemoryDataset:
        """Return the whole dataset in memory (every source implements it; a built-in's spec
        does not, and is instantiated only to answer `check_available` and `arrays`)."""
        raise NotImplementedError(f"{type(self).__name__} does not implement load()")

    def arrays(self) -> ArrayDataset | None:
        """The dataset as numpy arrays, read without torch, or None when this source cannot.

        The same samples, labels and checksum as `load` (statistics are not needed): a dry run
        builds its plan from them without importing torch. Default: None (the dry run loads).
        """
        return None
