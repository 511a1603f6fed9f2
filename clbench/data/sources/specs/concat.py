"""Specs of the data sources in `../concat.py`: parameters, summary, run labels."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field

from clbench.data.source import DataSource
from clbench.registry import DATASETS


@DATASETS.spec("concat", "clbench.data.sources.concat:Concat")
class ConcatSpec(DataSource):
    class Config(DataSource.Config):
        sources: list[dict[str, Any]] = Field(
            min_length=1,
            description="Sources to concatenate, each {name: <data source>, <its parameters>}.",
        )

    summary: ClassVar[str] = "Several data sources as the domains of one dataset."
