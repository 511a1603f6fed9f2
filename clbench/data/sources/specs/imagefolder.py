"""Specs of the data sources in `../imagefolder.py`: parameters, summary, run labels."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from clbench.data.source import DataSource
from clbench.registry import DATASETS


@DATASETS.spec("imagefolder", "clbench.data.sources.imagefolder:ImageFolder")
class ImageFolderSpec(DataSource):
    class Config(DataSource.Config):
        path: str = Field(
            description="Folder of class subfolders; a relative path resolves against the data "
            "root."
        )
        image_size: int | None = Field(
            None, ge=1, description="Side of the square output images; None: first image's size."
        )
        channels: Literal[1, 3] = Field(3, description="1 (greyscale) or 3 (RGB).")
        test_fraction: float = Field(
            0.2,
            gt=0.0,
            lt=1.0,
            description="Fraction of every class held out when there is no train/test subfolder.",
        )
        split_seed: int = Field(0, description="Seed of the stratified train/test split.")

    needs_files: ClassVar[bool] = True
    summary: ClassVar[str] = "Your own images in a class-per-folder tree (decoded with PIL)."
