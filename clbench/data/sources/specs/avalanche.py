"""Specs of the data sources in `../avalanche.py`: parameters, summary, run labels."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from pydantic import Field

from clbench.data.source import DataSource
from clbench.registry import DATASETS


@DATASETS.spec("avalanche", "clbench.data.sources.avalanche:AvalancheData")
class AvalancheDataSpec(DataSource):
    summary: ClassVar[str] = (
        "[Avalanche] data of a classic Avalanche benchmark (use with scenario `avalanche`)."
    )

    class Config(DataSource.Config):
        benchmark: str = Field(
            ..., description="Class name in avalanche.benchmarks.classic, e.g. SplitMNIST"
        )
        kwargs: dict[str, Any] = Field(
            default_factory=dict,
            description="Passed to the benchmark; dataset_root is required (offline), e.g. "
            "{n_experiences: 5, seed: 0, dataset_root: /data}",
        )
        max_gb: float = Field(8.0, gt=0, description="Refuse to load more than this many GB.")

    @classmethod
    def run_label(cls, params: Mapping[str, Any]) -> str:
        return str(params.get("benchmark") or "avalanche")  # the benchmark, e.g. SplitFMNIST
