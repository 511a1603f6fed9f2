"""`synthetic`: seeded Gaussian class clusters with a knob for how similar consecutive tasks are.

No files, fully determined by its parameters, so tests and smoke runs need no data at all. The
samples are drawn in `SyntheticSpec.arrays`.
"""

from __future__ import annotations

from clbench.data.dataset import InMemoryDataset, Split
from clbench.data.source import DataSource
from clbench.data.sources._common import channel_stats
from clbench.data.sources.specs.synthetic import SyntheticSpec
from clbench.registry import DATASETS


@DATASETS.register("synthetic")
class Synthetic(SyntheticSpec, DataSource):
    """Gaussian class clusters (`SyntheticSpec.arrays`): vector data is announced as already
    standardised (mean 0, std 1); images get the statistics of their train split."""

    config: SyntheticSpec.Config

    def load(self) -> InMemoryDataset:
        data = self.arrays()
        if self.config.image_size is None:
            mean, std = (0.0,), (1.0,)
        else:
            mean, std = channel_stats(Split.from_arrays(data.train).x)
        return InMemoryDataset.from_arrays(data, mean, std)
