"""`digits`: scikit-learn's bundled 8x8 handwritten digits, real data that needs no download.

It is the data of the embedded default run: 1797 images, small enough to train in seconds on a CPU.
"""

from __future__ import annotations

from clbench.data.dataset import InMemoryDataset, Split
from clbench.data.source import DataSource
from clbench.data.sources._common import channel_stats
from clbench.data.sources.specs.digits import DigitsSpec
from clbench.registry import DATASETS


@DATASETS.register("digits")
class Digits(DigitsSpec, DataSource):
    """The UCI optical digits shipped with scikit-learn, as uint8 images ``[N, 1, 8, 8]``.

    The original 0..16 intensities are scaled to 0..255 (``x * 255 // 16``). There is no official
    test split, so a stratified one is drawn from ``split_seed`` (`DigitsSpec.arrays`); mean/std
    come from the train split.
    """

    config: DigitsSpec.Config

    def load(self) -> InMemoryDataset:
        data = self.arrays()
        mean, std = channel_stats(Split.from_arrays(data.train).x)
        return InMemoryDataset.from_arrays(data, mean, std)
