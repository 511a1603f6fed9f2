"""A dataset as numpy arrays, and the content checksum of any dataset (torch-free).

Sources that decode into numpy can hand their data over as an `ArrayDataset` (`DataSource.arrays`),
from which the scenario generators build the same plan as from the loaded `InMemoryDataset`: that
is how ``clbench run --dry-run`` describes a run without importing torch. The checksum is defined
here once, over numpy arrays or CPU tensors alike, so both give the same digest.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

CHUNK_BYTES = 16 * 2**20  # rows read, decoded or hashed per step: bounded scratch memory


def row_chunks(array: np.ndarray, chunk_bytes: int = CHUNK_BYTES) -> Iterator[np.ndarray]:
    """``array`` in consecutive row blocks of about ``chunk_bytes`` (views, no copies)."""
    step = max(1, chunk_bytes // max(1, array[:1].nbytes))
    for start in range(0, len(array), step):
        yield array[start : start + step]


def dtype_text(dtype: Any) -> str:
    """How the checksum names an element type: torch's spelling (``torch.uint8``) for a torch
    dtype and for the numpy dtype of the same name, so numpy and torch arrays hash alike."""
    text = str(dtype)
    return text if text.startswith("torch.") else f"torch.{np.dtype(dtype).name}"


class StreamedChecksum:
    """The content checksum, computed as a dataset's arrays stream by.

    SHA-256 is incremental, so hashing each array's shape, dtype and then its row blocks in order
    gives the same digest as hashing the whole arrays, without a bytes copy of the dataset.
    """

    def __init__(self) -> None:
        self._digest = hashlib.sha256()

    def blocks(
        self, shape: tuple[int, ...], dtype: Any, blocks: Iterable[np.ndarray]
    ) -> Iterator[np.ndarray]:
        """``blocks`` unchanged, each hashed as it passes (the array's header first)."""
        self._digest.update(str(tuple(shape)).encode())
        self._digest.update(dtype_text(dtype).encode())
        for block in blocks:
            self._digest.update(np.ascontiguousarray(block).data)
            yield block

    def add(self, array: Any) -> None:
        """Hash a whole array (numpy, or a CPU tensor), block by block."""
        for _ in self.blocks(tuple(array.shape), array.dtype, row_chunks(np.asarray(array))):
            pass

    def hexdigest(self, class_names: Sequence[str]) -> str:
        """The checksum, once every array went by: class names last."""
        self._digest.update("|".join(class_names).encode())
        return self._digest.hexdigest()[:16]


def split_checksum(splits: Sequence[Any], class_names: Sequence[str]) -> str:
    """SHA-256 over the shape, dtype and bytes of inputs, labels and domain ids of each split in
    turn, then the class names (first 16 hex chars): a dataset's content checksum."""
    checksum = StreamedChecksum()
    for split in splits:
        for array in (split.x, split.y, split.domain):
            if array is not None:
                checksum.add(array)
    return checksum.hexdigest(class_names)


@dataclass(frozen=True)
class ArraySplit:
    """One split as numpy arrays: inputs, int64 labels and optional per-sample domain ids."""

    x: np.ndarray
    y: np.ndarray
    domain: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.x.shape[0] != self.y.shape[0]:
            raise ValueError(f"x has {self.x.shape[0]} samples but y has {self.y.shape[0]}")
        if self.y.dtype != np.int64:
            raise ValueError(f"labels must be int64, got {self.y.dtype}")

    def __len__(self) -> int:
        return int(self.y.shape[0])

    @property
    def nbytes(self) -> int:
        """Bytes of inputs and labels (what a run stores; domain ids stay on the host)."""
        return int(self.x.nbytes + self.y.nbytes)


class DatasetMetadata:
    """What a dataset answers alike as arrays or as tensors (what a scenario plan reads), and
    the checks and checksum made when it is created; mixed into frozen dataclasses with the
    fields ``train``, ``test``, ``class_names`` and ``checksum``."""

    train: Any
    test: Any
    class_names: tuple[str, ...]
    checksum: str

    def __post_init__(self) -> None:
        if self.train.x.shape[1:] != self.test.x.shape[1:]:
            raise ValueError("train and test inputs must have the same shape")
        if not self.checksum:
            checksum = split_checksum((self.train, self.test), self.class_names)
            object.__setattr__(self, "checksum", checksum)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.train.x.shape[1:])

    @property
    def is_image(self) -> bool:
        return dtype_text(self.train.x.dtype) == "torch.uint8"


@dataclass(frozen=True)
class ArrayDataset(DatasetMetadata):
    """A dataset as numpy arrays, with the metadata a scenario plan reads (no statistics)."""

    name: str
    train: ArraySplit
    test: ArraySplit
    class_names: tuple[str, ...]
    domain_names: tuple[str, ...] | None = None
    checksum: str = field(default="")


class LastLoaded:
    """The last dataset read or loaded, by a key of its config section, so that checking many
    configs on the same data (a sweep, before its first run) reads it once; one at a time, so
    a suite over several large datasets never holds more than one."""

    def __init__(self) -> None:
        self._key: str | None = None
        self._value: Any = None

    def get(self, key: str) -> Any:
        return self._value if key == self._key else None

    def keep(self, key: str, value: Any) -> None:
        self._key, self._value = key, value
