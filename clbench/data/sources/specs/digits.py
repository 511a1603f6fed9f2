"""Specs of the data sources in `../digits.py`: parameters, summary, run labels."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from clbench.data.source import DataSource
from clbench.registry import DATASETS


@DATASETS.spec("digits", "clbench.data.sources.digits:Digits")
class DigitsSpec(DataSource):
    class Config(DataSource.Config):
        test_fraction: float = Field(
            0.2, gt=0.0, lt=1.0, description="Fraction of every class held out for testing."
        )
        split_seed: int = Field(0, description="Seed of the stratified train/test split.")

    summary: ClassVar[str] = "scikit-learn's bundled 8x8 digits (1797 images, 10 classes)."
