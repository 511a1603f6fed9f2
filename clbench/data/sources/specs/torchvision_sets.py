"""Specs of the data sources in `../torchvision_sets.py`: parameters, summary, run labels."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from clbench.data.source import DataSource
from clbench.registry import DATASETS


@DATASETS.spec("mnist", "clbench.data.sources.torchvision_sets:MNIST")
class MNISTSpec(DataSource):
    needs_files: ClassVar[bool] = True

    class Config(DataSource.Config):
        pass

    summary: ClassVar[str] = "MNIST handwritten digits (idx files, plain or gzipped)."


@DATASETS.spec("fashion_mnist", "clbench.data.sources.torchvision_sets:FashionMNIST")
class FashionMNISTSpec(DataSource):
    needs_files: ClassVar[bool] = True

    class Config(DataSource.Config):
        pass

    summary: ClassVar[str] = "Fashion-MNIST clothing images (idx files, plain or gzipped)."


@DATASETS.spec("cifar10", "clbench.data.sources.torchvision_sets:CIFAR10")
class CIFAR10Spec(DataSource):
    needs_files: ClassVar[bool] = True

    class Config(DataSource.Config):
        pass

    summary: ClassVar[str] = "CIFAR-10 (python pickle batches, cifar-10-batches-py)."


@DATASETS.spec("cifar100", "clbench.data.sources.torchvision_sets:CIFAR100")
class CIFAR100Spec(DataSource):
    needs_files: ClassVar[bool] = True

    class Config(DataSource.Config):
        label_type: Literal["fine", "coarse"] = Field(
            "fine",
            description="'fine' (100 classes) or 'coarse' (20 superclasses).",
        )

    summary: ClassVar[str] = "CIFAR-100, fine or coarse labels (python pickles, cifar-100-python)."


@DATASETS.spec("svhn", "clbench.data.sources.torchvision_sets:SVHN")
class SVHNSpec(DataSource):
    needs_files: ClassVar[bool] = True

    class Config(DataSource.Config):
        pass

    summary: ClassVar[str] = "SVHN cropped digits (train_32x32.mat, test_32x32.mat)."
