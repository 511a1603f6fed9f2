"""Spec of the `slim_resnet18` model builder (implementation: `clbench/models/resnet.py`)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from clbench.models.spec import ModelSpec, image_shape
from clbench.registry import MODELS

BLOCKS = (2, 2, 2, 2)  # BasicBlocks per stage (ResNet-18)


def feature_dim(out_channels: int, height: int, width: int, pooling: str) -> int:
    """Feature size of the backbone for an ``height`` x ``width`` input (no forward pass)."""
    for _ in range(len(BLOCKS) - 1):  # stride-2 stages: out = floor((h - 1) / 2) + 1
        height, width = (height - 1) // 2 + 1, (width - 1) // 2 + 1
    if pooling == "paper" and min(height, width) >= 4:
        return out_channels * (height // 4) * (width // 4)
    return out_channels


@MODELS.spec("slim_resnet18", "clbench.models.resnet:SlimResNet18")
class SlimResNet18Spec(ModelSpec):
    summary = "slim ResNet-18 of GEM / the stability-gap paper (nf=20, 160 features at 32x32)"

    class Config(ModelSpec.Config):
        nf: int = Field(20, ge=1, description="width of the first stage (official code: 20)")
        pooling: Literal["paper", "global"] = Field(
            "paper",
            description="'paper': avg_pool2d(4) as in GEM (global if the map is < 4); "
            "'global': global average pooling, feature size 8*nf for every input size",
        )

    @classmethod
    def parameter_count(cls, params: Any, input_shape: tuple[int, ...], num_outputs: int) -> int:
        """3x3 convolutions without bias, two BatchNorm parameters per channel, a 1x1 projection
        where a block changes width or stride, and the head over `feature_dim` features."""
        c, h, w = image_shape(input_shape, "slim_resnet18")
        nf = params.nf
        count, width = 9 * c * nf + 2 * nf, nf  # stem
        for stage, blocks in enumerate(BLOCKS):
            planes = nf * 2**stage
            for block in range(blocks):
                count += 9 * width * planes + 2 * planes + 9 * planes * planes + 2 * planes
                if width != planes or (stage > 0 and block == 0):
                    count += width * planes + 2 * planes  # projection shortcut
                width = planes
        return count + (feature_dim(width, h, w, params.pooling) + 1) * num_outputs
