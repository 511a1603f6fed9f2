"""Helpers shared by the data sources that build tensors: statistics, image decoding and
streaming into memory (the torch-free pieces are in `clbench.data.arrays`, `clbench.data.splits`
and `clbench.data.source`).

The leading underscore keeps the registry from importing this module as a source.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Protocol

import numpy as np
import torch

from clbench.data.arrays import CHUNK_BYTES, row_chunks
from clbench.data.source import CorruptDataError

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"})
# What ImageNet-pretrained backbones were trained with (torchvision's and timm's defaults)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def channel_counts(x: torch.Tensor) -> torch.Tensor:
    """Per-channel 256-bin histograms (int64 ``[C, 256]``) of uint8 images ``[N, C, H, W]``,
    counted block by block: a memory-mapped dataset is never copied whole."""
    counts = torch.zeros(x.shape[1], 256, dtype=torch.int64)
    for block in row_chunks(x.numpy()):
        add_channel_counts(counts, block)
    return counts


def add_channel_counts(counts: torch.Tensor, block: np.ndarray) -> None:
    """Add the per-channel histograms of the uint8 images ``block`` to ``counts`` (in place)."""
    images = torch.from_numpy(np.ascontiguousarray(block))
    for c in range(counts.shape[0]):
        counts[c] += torch.bincount(images[:, c].reshape(-1), minlength=256)


def stats_from_counts(counts: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and (population) std in [0, 1] scale from `channel_counts`."""
    levels = torch.arange(256, dtype=torch.float64) / 255.0
    means, stds = [], []
    for c in range(counts.shape[0]):
        channel = counts[c].to(torch.float64)
        n = channel.sum()
        mean = (channel * levels).sum() / n
        var = (channel * levels**2).sum() / n - mean**2
        means.append(float(mean))
        stds.append(float(var.clamp_min(0).sqrt()))
    return tuple(means), tuple(stds)


def channel_stats(x: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and (population) std in [0, 1] scale of uint8 images ``[N, C, H, W]``.

    Uses a 256-bin histogram per channel: exact, and no float copy of the whole dataset. Float
    vector data gets one scalar mean and std, matching the broadcast convention of vector sources.
    """
    if x.dtype != torch.uint8:
        flat = x.to(torch.float64).reshape(-1)
        return (float(flat.mean()),), (float(flat.std(unbiased=False)),)
    return stats_from_counts(channel_counts(x))


class ArraySink(Protocol):
    """Where a streaming loader puts each array it produces (see `memory_sink`).

    Called once per array, in the order `content_checksum` hashes them (train x, y, domain; then
    test), with the array's shape and dtype and its rows as consecutive blocks; returns the array
    as a tensor. The memory-mapped cache (`clbench.data.cache`) writes the blocks to a file.
    """

    def __call__(
        self, name: str, shape: tuple[int, ...], dtype: np.dtype, blocks: Iterable[np.ndarray]
    ) -> torch.Tensor: ...


def memory_sink(
    name: str, shape: tuple[int, ...], dtype: np.dtype, blocks: Iterable[np.ndarray]
) -> torch.Tensor:
    """`ArraySink` into host memory: the blocks fill one preallocated array."""
    array = np.empty(shape, dtype=dtype)
    filled = 0
    for block in blocks:
        array[filled : filled + len(block)] = block
        filled += len(block)
    if filled != shape[0]:
        raise ValueError(f"{name}: {filled} rows for an array of {shape[0]}")
    return torch.from_numpy(array)


def class_images(folder: Path) -> dict[str, list[Path]]:
    """Class name -> sorted image files below it, for each subfolder holding at least one image."""
    classes: dict[str, list[Path]] = {}
    for sub in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")):
        images = sorted(
            p for p in sub.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()
        )
        if images:
            classes[sub.name] = images
    return classes


def image_size_of(path: Path) -> tuple[int, int]:
    """``(height, width)`` of an image file, read from its header."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            width, height = image.size
    except (OSError, ValueError) as exc:
        raise CorruptDataError(path, f"is not a readable image ({exc})") from exc
    return height, width


def decode_image(path: Path, size: tuple[int, int], channels: int = 3) -> np.ndarray:
    """One image file as uint8 ``[C, H, W]``: converted to ``channels`` (1: L, 3: RGB) and resized
    (bilinear) to ``size`` = ``(H, W)`` unless it has that size already."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            converted = image.convert("L" if channels == 1 else "RGB")
        if converted.size != (size[1], size[0]):
            converted = converted.resize((size[1], size[0]), Image.Resampling.BILINEAR)
        array = np.asarray(converted, dtype=np.uint8)
    except (OSError, ValueError) as exc:  # PIL's UnidentifiedImageError is an OSError
        raise CorruptDataError(path, f"is not a readable image ({exc})") from exc
    return array[None] if array.ndim == 2 else array.transpose(2, 0, 1)


def decoded_blocks(
    paths: Sequence[Path], size: tuple[int, int], channels: int = 3, block_bytes: int = CHUNK_BYTES
) -> Iterator[np.ndarray]:
    """Image files decoded (see `decode_image`) into consecutive uint8 blocks ``[n, C, H, W]`` of
    about ``block_bytes``: a streaming loader never holds more than one block of pixels."""
    per_block = max(1, block_bytes // (channels * size[0] * size[1]))
    for start in range(0, len(paths), per_block):
        chunk = paths[start : start + per_block]
        block = np.empty((len(chunk), channels, *size), dtype=np.uint8)
        for i, path in enumerate(chunk):
            block[i] = decode_image(path, size, channels)
        yield block


def decode_images(paths: Sequence[Path], size: tuple[int, int], channels: int = 3) -> torch.Tensor:
    """Image files as one uint8 tensor ``[N, C, H, W]`` (see `decode_image`)."""
    x = np.empty((len(paths), channels, *size), dtype=np.uint8)
    for i, path in enumerate(paths):
        x[i] = decode_image(path, size, channels)
    return torch.from_numpy(x)
