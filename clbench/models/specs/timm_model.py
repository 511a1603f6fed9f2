"""Spec of the `timm_model` model builder (implementation: `clbench/models/timm_model.py`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field

from clbench.errors import ConfigError, MissingFileError
from clbench.models.spec import ModelSpec
from clbench.registry import MODELS

WEIGHT_SUFFIXES: tuple[str, ...] = (".pth", ".pt", ".bin", ".safetensors", ".npz")
HUB = "hub"
PRETRAINED_ALLOWED = (
    f"null (random init), {HUB!r} (download through timm; needs network) or the path of an "
    f"existing local weights file ({', '.join(WEIGHT_SUFFIXES)})"
)


@MODELS.spec("timm", "clbench.models.timm_model:TimmModel")
class TimmModelSpec(ModelSpec):
    summary = "any timm model by name; local pretrained weights via `pretrained=<file>`"

    class Config(ModelSpec.Config):
        arch: str = Field(
            "resnet18",
            description="timm model name, optionally with a pretrained tag "
            "(e.g. resnet18, vit_tiny_patch16_224, vit_base_patch16_224.augreg_in21k)",
        )
        pretrained: str | None = Field(None, description=f"weights: {PRETRAINED_ALLOWED}")
        image_size: int | None = Field(
            None,
            ge=1,
            description="side inputs are resized to on the device; default: the pretrained "
            "config's input size when pretrained, else the data's own size",
        )
        freeze_backbone: bool = Field(
            False, description="no gradients for the backbone; it stays in eval mode"
        )

    @classmethod
    def weights_file(cls, params: Any) -> Path | None:
        """The local weights file, or None for random init / hub weights."""
        value = params.pretrained
        if value is None or value == HUB:
            return None
        return Path(value).expanduser()

    @classmethod
    def check_files(cls, params: Any, prefix: str = "model") -> None:
        """A local weights file must exist, be a file and have a weights suffix."""
        path = cls.weights_file(params)
        if path is None:
            return
        field, value = f"{prefix}.pretrained", params.pretrained
        if not path.is_file():
            why = "is a directory" if path.is_dir() else "does not exist"
            raise (ConfigError if path.is_dir() else MissingFileError)(
                field,
                value,
                f"{PRETRAINED_ALLOWED}; {path.resolve()} {why}. Put the weights file there (e.g. "
                "written by clbench.models.timm_model.save_backbone_checkpoint) or fix the path",
            )
        if path.suffix.lower() not in WEIGHT_SUFFIXES:
            raise ConfigError(
                field, value, f"a weights file ending in one of {', '.join(WEIGHT_SUFFIXES)}"
            )
