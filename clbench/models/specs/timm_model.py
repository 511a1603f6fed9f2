"""Spec of the `timm_model` model builder (implementation: `clbench/models/timm_model.py`)."""

from __future__ import annotations

from pydantic import Field

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
