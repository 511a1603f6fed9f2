"""What a model is, apart from how it is built: its parameters and summary (torch-free).

A built-in model declares a `ModelSpec` subclass in `clbench/models/specs/` with
``@MODELS.spec("name", "module:Class")``; its `ModelBuilder` subclasses the spec (see
`clbench.registry`). A model of your own is one `ModelBuilder` subclass with a nested ``Config``.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import BaseModel, ConfigDict


class ModelSpec:
    """A model's parameters (nested pydantic ``Config``, ``extra="forbid"``) and summary."""

    class Config(BaseModel):
        model_config = ConfigDict(extra="forbid")

    summary: ClassVar[str] = ""
    registered_name: ClassVar[str]
