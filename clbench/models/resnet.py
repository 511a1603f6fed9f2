"""The "slim" ResNet-18 of GEM (Lopez-Paz & Ranzato 2017), used by the stability-gap paper.

Official code: Mattdl/ContinualEvaluation@7ffa368:src/model.py::ResNet18feat (GEM's
``ResNet18(nf=20)``; built in ``main.py::_get_feat_extr``). BasicBlock [2, 2, 2, 2] with widths
nf/2nf/4nf/8nf, 3x3 stem with stride 1 and no max-pool, BatchNorm, ``avg_pool2d(out, 4)`` +
flatten, linear head. The feature size therefore depends on the input: 8·nf·⌊h/4⌋·⌊w/4⌋ for the
last map h×w, i.e. 160 at 32×32, 640 at 84×84 and 1440 at 96×96 with nf = 20 (the paper's
CIFAR-10, Mini-ImageNet and Mini-DomainNet).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from clbench.models.base import ContinualModel, ModelBuilder
from clbench.models.spec import image_shape
from clbench.models.specs.resnet import BLOCKS, SlimResNet18Spec, feature_dim
from clbench.registry import MODELS


def _conv3x3(in_planes: int, out_planes: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_planes, out_planes, kernel_size=3, stride=stride, padding=1, bias=False)


class BasicBlock(nn.Module):
    """Two 3x3 convs with BatchNorm and an identity (or 1x1 projection) shortcut."""

    def __init__(self, in_planes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = _conv3x3(in_planes, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = _conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut: nn.Module = nn.Sequential()
        if stride != 1 or in_planes != planes:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_planes, planes, kernel_size=1, stride=stride, bias=False),
                nn.BatchNorm2d(planes),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class SlimResNetBackbone(nn.Module):
    """Stem + four stages + pooling + flatten; returns ``[B, feature_dim]``.

    Module names (``conv1``, ``bn1``, ``layer1``..``layer4``) follow the GEM/Mammoth code so
    FPF-style module selection ("conv1", BN layers, the last conv) reads the same.
    """

    def __init__(
        self, in_channels: int, nf: int, num_blocks: tuple[int, ...], pooling: str
    ) -> None:
        super().__init__()
        self.pooling = pooling
        self.conv1 = _conv3x3(in_channels, nf)
        self.bn1 = nn.BatchNorm2d(nf)
        stages = []
        in_planes = nf
        for i, n in enumerate(num_blocks):
            planes, stride = nf * 2**i, 1 if i == 0 else 2
            blocks = []
            for s in [stride] + [1] * (n - 1):
                blocks.append(BasicBlock(in_planes, planes, s))
                in_planes = planes
            stages.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.out_channels = in_planes

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layer4(self.layer3(self.layer2(self.layer1(out))))
        if self.pooling == "paper" and min(out.shape[-2:]) >= 4:
            out = F.avg_pool2d(out, 4)
        else:
            # Map smaller than the 4x4 window (8x8 digits -> 1x1): pool globally, don't fail.
            out = F.adaptive_avg_pool2d(out, 1)
        return out.flatten(1)

    def feature_dim(self, height: int, width: int) -> int:
        """Feature size for an ``height`` x ``width`` input (no forward pass needed)."""
        return feature_dim(self.out_channels, height, width, self.pooling)


@MODELS.register("slim_resnet18")
class SlimResNet18(SlimResNet18Spec, ModelBuilder):
    """GEM / stability-gap slim ResNet-18 (nf = 20: 1.1M parameters, 160 features at 32×32)."""

    config: SlimResNet18Spec.Config

    def check_input(self, input_shape: tuple[int, ...]) -> None:
        image_shape(input_shape, "slim_resnet18")

    def build(self, input_shape: tuple[int, ...], num_outputs: int) -> ContinualModel:
        """Slim ResNet-18 for ``(C, H, W)`` inputs (any C) with ``num_outputs`` logits."""
        c, h, w = image_shape(input_shape, "slim_resnet18")
        backbone = SlimResNetBackbone(c, self.config.nf, BLOCKS, self.config.pooling)
        return ContinualModel(backbone, backbone.feature_dim(h, w), num_outputs)
