"""Specs of the data sources in `../synthetic.py`: parameters, summary, run labels."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field, model_validator

from clbench.data.source import DataSource
from clbench.registry import DATASETS


@DATASETS.spec("synthetic", "clbench.data.sources.synthetic:Synthetic")
class SyntheticSpec(DataSource):
    class Config(DataSource.Config):
        num_classes: int = Field(10, ge=2, description="Number of classes (clusters).")
        dim: int = Field(32, ge=1, description="Feature dimension of the vectors.")
        train_per_class: int = Field(200, ge=1, description="Training samples per class.")
        test_per_class: int = Field(100, ge=1, description="Test samples per class.")
        noise: float = Field(
            2.0, ge=0.0, description="Cluster std relative to the unit spread of class means."
        )
        task_similarity: float = Field(
            0.0,
            ge=0.0,
            le=1.0,
            description="Correlation of classes 2j, 2j+1 with classes 2j-2, 2j-1 "
            "(1: consecutive tasks share cluster geometry, 0: independent).",
        )
        image_size: int | None = Field(
            None,
            ge=2,
            description="If set, emit uint8 single-channel image_size x image_size images "
            "(dim = image_size**2) instead of float vectors.",
        )
        seed: int = Field(0, description="Seed of class means and samples.")

        @model_validator(mode="after")
        def _dim_matches_image(self) -> SyntheticSpec.Config:
            if self.image_size is None:
                return self
            if "dim" in self.model_fields_set and self.dim != self.image_size**2:
                raise ValueError(f"dim must be image_size**2 = {self.image_size**2} or left unset")
            # store the implied dim so the resolved config re-validates unchanged
            self.dim = self.image_size**2
            return self

    summary: ClassVar[str] = "Seeded Gaussian class clusters with controllable task similarity."
