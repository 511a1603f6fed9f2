"""What a model is, apart from how it is built: its parameters and summary (torch-free).

A built-in model declares a `ModelSpec` subclass in `clbench/models/specs/` with
``@MODELS.spec("name", "module:Class")``; its `ModelBuilder` subclasses the spec (see
`clbench.registry`). A model of your own is one `ModelBuilder` subclass with a nested ``Config``.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict


class ModelSpec:
    """A model's parameters (nested pydantic ``Config``, ``extra="forbid"``) and summary."""

    class Config(BaseModel):
        model_config = ConfigDict(extra="forbid")

    summary: ClassVar[str] = ""
    registered_name: ClassVar[str]

    @classmethod
    def parameter_count(
        cls, params: Any, input_shape: tuple[int, ...], num_outputs: int
    ) -> int | None:
        """Parameters the built model has, counted from the spec, or None when only building
        it tells (the default). A count promises that the builder's ``check`` and
        ``check_input`` accept ``params`` and ``input_shape`` (raise what they would, else): a
        dry run then describes the model without importing torch."""
        return None
