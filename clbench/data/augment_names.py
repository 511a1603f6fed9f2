"""The training augmentations' names, torch-free so that config validation stays light."""

from __future__ import annotations

import typing
from typing import Literal

TrainAugment = Literal[
    "none", "crop_flip", "resized_crop_flip", "autoaugment", "autoaugment_imagenet", "randaugment"
]
TRAIN_AUGMENTS: tuple[str, ...] = typing.get_args(TrainAugment)
