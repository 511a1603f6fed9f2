"""`imagefolder`: your own images in a ``class_name/image`` tree, like torchvision's ImageFolder.

Decoded once with PIL into one uint8 tensor, so the rest of clbench treats it like any other
in-memory dataset.
"""

from __future__ import annotations

from pathlib import Path

import torch

from clbench.data.dataset import InMemoryDataset, Split
from clbench.data.source import DataSource
from clbench.data.sources._common import (
    IMAGE_SUFFIXES,
    channel_stats,
    class_images,
    decode_images,
    image_size_of,
)
from clbench.data.sources.specs.imagefolder import ImageFolderSpec
from clbench.data.splits import stratified_split
from clbench.errors import DataNotFoundError
from clbench.registry import DATASETS


@DATASETS.register("imagefolder")
class ImageFolder(ImageFolderSpec, DataSource):
    """Images in ``path/<class>/...`` (or ``path/train/<class>``, ``path/test/<class>``).

    Classes are the sorted names of the class folders (0, 1, ... in that order). Every image is
    converted to ``channels`` and resized (bilinear) to ``image_size`` x ``image_size``, or, by
    default, to the size of the first image, so the data fits in one tensor. Without ``train/`` and
    ``test/`` subfolders a stratified split is drawn from ``split_seed``.
    """

    config: ImageFolderSpec.Config

    @property
    def path(self) -> Path:
        return self.root / Path(self.config.path).expanduser()  # an absolute path wins

    def check_available(self) -> None:
        path = self.path
        if not path.is_dir():
            raise DataNotFoundError(
                f"imagefolder: {path} is not a folder; set data.path to a folder of class "
                "subfolders (relative paths resolve against data.root / CLBENCH_DATA)"
            )
        folders = [path / "train", path / "test"] if self._has_splits() else [path]
        for folder in folders:
            if not class_images(folder):
                raise DataNotFoundError(
                    f"imagefolder: {folder} has no class subfolders with images "
                    f"({', '.join(sorted(IMAGE_SUFFIXES))}); expected {folder}/<class>/<image>"
                )

    def _has_splits(self) -> bool:
        return (self.path / "train").is_dir() and (self.path / "test").is_dir()

    def load(self) -> InMemoryDataset:
        self.check_available()
        cfg = self.config
        if self._has_splits():
            train_files = class_images(self.path / "train")
            test_files = class_images(self.path / "test")
        else:
            train_files, test_files = class_images(self.path), {}
        class_names = tuple(sorted(set(train_files) | set(test_files)))
        label_of = {name: label for label, name in enumerate(class_names)}
        first = next(iter(train_files.values()))[0]
        size = (cfg.image_size, cfg.image_size) if cfg.image_size else image_size_of(first)

        def decode(files: dict[str, list[Path]]) -> Split:
            items = [(path, label_of[name]) for name, paths in files.items() for path in paths]
            x = decode_images([path for path, _ in items], size, cfg.channels)
            y = torch.tensor([label for _, label in items], dtype=torch.int64)
            return Split(x, y)

        train, test = decode(train_files), decode(test_files)
        if not test_files:
            full = train
            train_idx, test_idx = (
                torch.from_numpy(idx)
                for idx in stratified_split(full.y.numpy(), cfg.test_fraction, cfg.split_seed)
            )
            train = Split(full.x[train_idx], full.y[train_idx])
            test = Split(full.x[test_idx], full.y[test_idx])
        mean, std = channel_stats(train.x)
        return InMemoryDataset(
            name="imagefolder",
            train=train,
            test=test,
            class_names=class_names,
            mean=mean,
            std=std,
        )
