"""`concat`: several datasets as the domains of one ("dataset as domain", e.g. MNIST + SVHN).

Domain-incremental scenarios then select tasks by ``Split.domain``; class k of every source is the
same label.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from pydantic import BaseModel

from clbench.data.dataset import InMemoryDataset, Split
from clbench.data.source import DataSource
from clbench.data.sources._common import channel_stats
from clbench.data.sources.specs.concat import ConcatSpec
from clbench.errors import ConfigError
from clbench.registry import DATASETS, validate_params

FIELD = "data.sources"
RESIZE_CHUNK = 4096  # samples resized at once: bounds the float copy to a few hundred MB


def _to_shape(x: torch.Tensor, channels: int, size: tuple[int, int]) -> torch.Tensor:
    """uint8 images resized (bilinear, in float) to ``size``; grey repeated to ``channels``."""
    if tuple(x.shape[-2:]) != size:
        out = torch.empty((x.shape[0], x.shape[1], *size), dtype=torch.uint8)
        for start in range(0, x.shape[0], RESIZE_CHUNK):
            chunk = x[start : start + RESIZE_CHUNK].to(torch.float32)
            resized = F.interpolate(chunk, size=size, mode="bilinear", align_corners=False)
            out[start : start + RESIZE_CHUNK] = resized.round().clamp(0, 255).to(torch.uint8)
        x = out
    if x.shape[1] != channels:
        x = x.expand(-1, channels, -1, -1).contiguous()
    return x


@DATASETS.register("concat")
class Concat(ConcatSpec, DataSource):
    """The concatenation of other sources, each entry one domain (``Split.domain`` = its index).

    Images are brought to a common shape: bilinear resize to the largest height and width, grey
    repeated to 3 channels when any source is RGB. Vector sources must share their dimension. All
    sources must have the same number of classes; class names are joined with "/" where they
    differ. mean/std are recomputed from the concatenated train split.
    """

    config: ConcatSpec.Config

    def __init__(self, config: BaseModel, root: Path, download: bool = False) -> None:
        super().__init__(config, root, download)
        self.parts: list[tuple[str, DataSource]] = []
        for i, entry in enumerate(self.config.sources):
            params = dict(entry)
            name = params.pop("name", None)
            if not isinstance(name, str):
                raise ConfigError(f"{FIELD}.{i}.name", name, "the name of a registered data source")
            cls = DATASETS.get(name, field=f"{FIELD}.{i}.name")
            part_config = validate_params(cls.Config, params, f"{FIELD}.{i}")
            self.parts.append((name, cls(part_config, root, download)))

    def check_available(self) -> None:
        for _, part in self.parts:
            part.check_available()

    def load(self) -> InMemoryDataset:
        names = [name for name, _ in self.parts]
        domain_names = tuple(n if names.count(n) == 1 else f"{n}#{i}" for i, n in enumerate(names))
        loaded = [part.load() for _, part in self.parts]
        datasets = dict(zip(domain_names, loaded, strict=True))
        if len({d.num_classes for d in datasets.values()}) > 1:
            found = ", ".join(f"{key}: {d.num_classes} classes" for key, d in datasets.items())
            raise ConfigError(FIELD, found, "sources with the same number of classes")
        shape = _common_shape(datasets)

        def join(splits: list[Split]) -> Split:
            x = [_to_shape(s.x, shape[0], shape[1:]) if len(shape) == 3 else s.x for s in splits]
            domain = [torch.full((len(s),), i, dtype=torch.int64) for i, s in enumerate(splits)]
            return Split(torch.cat(x), torch.cat([s.y for s in splits]), torch.cat(domain))

        train = join([d.train for d in datasets.values()])
        per_class = zip(*(d.class_names for d in datasets.values()), strict=True)
        class_names = tuple("/".join(dict.fromkeys(names_k)) for names_k in per_class)
        mean, std = channel_stats(train.x)
        return InMemoryDataset(
            name="concat",
            train=train,
            test=join([d.test for d in datasets.values()]),
            class_names=class_names,
            mean=mean,
            std=std,
            domain_names=domain_names,
        )


def _common_shape(datasets: dict[str, InMemoryDataset]) -> tuple[int, ...]:
    """The shape every source is brought to, or a `ConfigError` when they cannot match."""
    found = ", ".join(f"{key}: {list(d.input_shape)}" for key, d in datasets.items())
    parts = list(datasets.values())
    if not all(d.is_image for d in parts):
        if any(d.is_image for d in parts) or len({d.input_shape for d in parts}) > 1:
            raise ConfigError(FIELD, found, "vector sources of one dimension, or images")
        return parts[0].input_shape
    channels = max(d.input_shape[0] for d in parts)
    if any(d.input_shape[0] not in (1, channels) for d in parts):
        raise ConfigError(FIELD, found, "images with the same channels, or grey and RGB")
    height = max(d.input_shape[1] for d in parts)
    width = max(d.input_shape[2] for d in parts)
    return channels, height, width
