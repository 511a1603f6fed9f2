"""Specs of the data sources in `../ptm_sets.py`: parameters, summary, run labels."""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import Field

from clbench.data.source import DataSource
from clbench.registry import DATASETS

Norm = Annotated[
    Literal["imagenet", "data"],
    Field(
        description="Normalisation statistics: 'imagenet' (ImageNet's mean/std, what pretrained "
        "backbones expect) or 'data' (the training split's own)."
    ),
]


@DATASETS.spec("tinyimagenet", "clbench.data.sources.ptm_sets:TinyImageNet")
class TinyImageNetSpec(DataSource):
    needs_files: ClassVar[bool] = True

    class Config(DataSource.Config):
        image_size: int = Field(64, ge=1, description="Side of the square images (native: 64).")
        norm: Norm = "imagenet"

    summary: ClassVar[str] = (
        "Tiny ImageNet (tiny-imagenet-200: wnids.txt, train/, val/ with val_annotations.txt; "
        "test = the official val set)."
    )


@DATASETS.spec("cub200", "clbench.data.sources.ptm_sets:CUB200")
class CUB200Spec(DataSource):
    needs_files: ClassVar[bool] = True

    class Config(DataSource.Config):
        image_size: int = Field(224, ge=1, description="Side of the square images.")
        norm: Norm = "imagenet"

    summary: ClassVar[str] = "CUB-200-2011 birds (CUB_200_2011 index files, official train/test)."


@DATASETS.spec("imagenet_r", "clbench.data.sources.ptm_sets:ImageNetR")
class ImageNetRSpec(DataSource):
    needs_files: ClassVar[bool] = True

    class Config(DataSource.Config):
        image_size: int = Field(224, ge=1, description="Side of the square images.")
        norm: Norm = "imagenet"
        test_fraction: float = Field(
            0.2, gt=0.0, lt=1.0, description="Fraction of every class held out for test."
        )
        split_seed: int = Field(0, description="Seed of clbench's stratified train/test split.")
        split_dir: str | None = Field(
            None,
            description="Folder with CODA-Prompt's imagenet-r_train.yaml and imagenet-r_test.yaml "
            "to use its exact split (relative: against the data root); None: clbench's split.",
        )

    summary: ClassVar[str] = (
        "ImageNet-R renditions (imagenet-r/<wnid>/*.jpg; seeded stratified 80/20 split, or "
        "CODA-Prompt's split files)."
    )
