"""In-memory datasets: what every data source returns.

Images stay uint8 ``[N, C, H, W]`` until a batch is formed on the training device; vector data
(e.g. synthetic Gaussian clusters) is float32 ``[N, D]``. Normalisation statistics travel with the
data so the batch former can normalise on the device.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from clbench.data.arrays import ArrayDataset, ArraySplit, DatasetMetadata, split_checksum


@dataclass(frozen=True)
class Split:
    """One split (train or test) of a dataset, fully in memory."""

    x: torch.Tensor
    y: torch.Tensor
    domain: torch.Tensor | None = None  # per-sample domain id for multi-dataset sources

    def __post_init__(self) -> None:
        if self.x.shape[0] != self.y.shape[0]:
            raise ValueError(f"x has {self.x.shape[0]} samples but y has {self.y.shape[0]}")
        if self.y.dtype != torch.int64:
            raise ValueError(f"labels must be int64, got {self.y.dtype}")
        if self.domain is not None and self.domain.shape[0] != self.y.shape[0]:
            raise ValueError("domain ids must have one entry per sample")

    def __len__(self) -> int:
        return int(self.y.shape[0])

    @classmethod
    def from_arrays(cls, split: ArraySplit) -> Split:
        """The split of numpy arrays as tensors sharing their memory."""
        domain = None if split.domain is None else torch.from_numpy(split.domain)
        return cls(torch.from_numpy(split.x), torch.from_numpy(split.y), domain)


@dataclass(frozen=True)
class InMemoryDataset(DatasetMetadata):
    """A dataset loaded into memory with its metadata and a content checksum."""

    name: str
    train: Split
    test: Split
    class_names: tuple[str, ...]
    mean: tuple[float, ...]  # per-channel (or per-feature broadcast) mean after scaling to [0, 1]
    std: tuple[float, ...]
    domain_names: tuple[str, ...] | None = None
    checksum: str = field(default="")

    @classmethod
    def from_arrays(
        cls, data: ArrayDataset, mean: tuple[float, ...], std: tuple[float, ...]
    ) -> InMemoryDataset:
        """``data`` as tensors sharing its memory, with normalisation statistics ``mean, std``."""
        return cls(
            data.name,
            Split.from_arrays(data.train),
            Split.from_arrays(data.test),
            data.class_names,
            mean,
            std,
            data.domain_names,
            data.checksum,
        )


def content_checksum(dataset: InMemoryDataset) -> str:
    """SHA-256 over the raw bytes of inputs and labels of both splits (first 16 hex chars); the
    same digest as the dataset's `ArrayDataset` (`clbench.data.arrays.split_checksum`)."""
    return split_checksum((dataset.train, dataset.test), dataset.class_names)
