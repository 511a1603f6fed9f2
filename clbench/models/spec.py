"""What a model is, apart from how it is built: its parameters and summary (torch-free).

A built-in model declares a `ModelSpec` subclass in `clbench/models/specs/` with
``@MODELS.spec("name", "module:Class")``; its `ModelBuilder` subclasses the spec (see
`clbench.registry`). A model of your own is one `ModelBuilder` subclass with a nested ``Config``.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

from clbench.errors import IncompatibleError


class ModelSpec:
    """A model's parameters (nested pydantic ``Config``, ``extra="forbid"``) and summary."""

    class Config(BaseModel):
        model_config = ConfigDict(extra="forbid")

    summary: ClassVar[str] = ""
    registered_name: ClassVar[str]

    @classmethod
    def check_files(cls, params: Any, prefix: str = "model") -> None:
        """Refuse the files ``params`` name that cannot be used (a missing weights file:
        `MissingFileError`; else `ConfigError` naming ``<prefix>.<param>``), without importing
        the implementation, whose ``check`` makes the same check. Default: no files."""

    @classmethod
    def parameter_count(
        cls, params: Any, input_shape: tuple[int, ...], num_outputs: int
    ) -> int | None:
        """Parameters the built model has, counted from the spec, or None when only building
        it tells (the default). A count promises that the builder's ``check`` and
        ``check_input`` accept ``params`` and ``input_shape`` (raise what they would, else): a
        dry run then describes the model without importing torch."""
        return None


def image_shape(input_shape: tuple[int, ...], model_name: str) -> tuple[int, int, int]:
    """``(C, H, W)`` of an image input shape, or `IncompatibleError` for other shapes."""
    if len(input_shape) != 3 or min(input_shape) < 1:
        raise IncompatibleError(
            f"model {model_name!r} needs image inputs of shape (C, H, W), got {tuple(input_shape)};"
            " use the 'mlp' model for vector inputs"
        )
    c, h, w = input_shape
    return int(c), int(h), int(w)
