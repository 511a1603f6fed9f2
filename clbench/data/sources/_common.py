"""Helpers shared by the data sources: split, statistics, image decoding and the error for
unreadable files.

The leading underscore keeps the registry from importing this module as a source.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from clbench.errors import DataNotFoundError

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"})
# What ImageNet-pretrained backbones were trained with (torchvision's and timm's defaults)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

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


def stratified_split(
    labels: np.ndarray, test_fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Train and test indices (each ascending) holding ``test_fraction`` of every class in test.

    Per class ``round(n_c * test_fraction)`` samples go to test, chosen by a generator seeded with
    ``seed`` only, so the split depends on nothing but the labels, the fraction and the seed.
    """
    rng = np.random.default_rng(seed)
    test: list[np.ndarray] = []
    for cls in np.unique(labels):
        members = np.flatnonzero(labels == cls)
        n_test = round(len(members) * test_fraction)
        test.append(rng.permutation(members)[:n_test])
    is_test = np.zeros(len(labels), dtype=bool)
    if test:
        is_test[np.concatenate(test)] = True
    return np.flatnonzero(~is_test), np.flatnonzero(is_test)


def channel_stats(x: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and (population) std in [0, 1] scale of uint8 images ``[N, C, H, W]``.

    Uses a 256-bin histogram per channel: exact, and no float copy of the whole dataset. Float
    vector data gets one scalar mean and std, matching the broadcast convention of vector sources.
    """
    if x.dtype != torch.uint8:
        flat = x.to(torch.float64).reshape(-1)
        return (float(flat.mean()),), (float(flat.std(unbiased=False)),)
    levels = torch.arange(256, dtype=torch.float64) / 255.0
    means, stds = [], []
    for c in range(x.shape[1]):
        counts = torch.bincount(x[:, c].reshape(-1), minlength=256).to(torch.float64)
        n = counts.sum()
        mean = (counts * levels).sum() / n
        var = (counts * levels**2).sum() / n - mean**2
        means.append(float(mean))
        stds.append(float(var.clamp_min(0).sqrt()))
    return tuple(means), tuple(stds)


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


def decode_images(paths: Sequence[Path], size: tuple[int, int], channels: int = 3) -> torch.Tensor:
    """Image files as one uint8 tensor ``[N, C, H, W]`` (see `decode_image`)."""
    x = np.empty((len(paths), channels, *size), dtype=np.uint8)
    for i, path in enumerate(paths):
        x[i] = decode_image(path, size, channels)
    return torch.from_numpy(x)
