"""The View-Batch plugin's spec (implementation: `view_batch.py`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import Field

from clbench.errors import ConfigError
from clbench.registry import PLUGINS

if TYPE_CHECKING:
    from clbench.config import RunConfig

from clbench.strategy.spec import PluginSpec


@PLUGINS.spec("view_batch", "clbench.strategies.view_batch:ViewBatch")
class ViewBatchSpec(PluginSpec):
    summary = "View-Batch Model: V-view batches (longer recall interval) + one-to-many KL"

    class Config(PluginSpec.Config):
        views: int = Field(
            4,
            ge=1,
            description="V, views per sample = recall-interval factor (official runs "
            "`--aug-repeat 4`; paper Fig. 6: x3-x4 best); 1 disables view-batching",
        )
        replay_interval: bool = Field(
            True,
            description="View-batch sampler (Eq. 2); false: the strategy's batches, and with "
            "view_aug the official 'strong aug only' ablation (positions p % V != 0 augmented)",
        )
        apply_to: Literal["both", "current", "buffer"] = Field(
            "both",
            description="What is view-batched: the phase's data, buffer draws, or both (paper "
            "Table 7: 'both' best)",
        )
        view_aug: Literal["strong", "noise", "none"] = Field(
            "strong",
            description="Views 2..V: strong augmentation (paper Alg. 1: AutoAugment), the "
            "code's `--prog-aug 1` noise x+U[0,1)·0.2·j/(V-1), or none",
        )
        augment_policy: Literal["auto", "autoaugment", "light", "vector"] = Field(
            "auto",
            description="Strong policy (clbench.data.augment): auto = AutoAugment CIFAR-10 for "
            "RGB, the light policy for grey images, noise/dropout for vectors",
        )
        ssl: bool = Field(
            True, description="One-to-many KL term (Eq. 3); false = the code's `--prog-aug 5`"
        )
        ssl_weight: float = Field(
            1.0, ge=0, description="λ in Eq. 4 (paper; code `--prog-alpha 1.0`)"
        )
        ssl_start_epoch: int = Field(
            6,
            ge=0,
            description="First epoch (0-based, per phase) with the KL term (code: `epoch > 5`; "
            "lower it for short schedules, e.g. 12% of the epochs as the official 6 of 50)",
        )
        kl_normalisation: Literal["per_sample", "official_seen_classes"] = Field(
            "per_sample",
            description="per_sample: mean over views of KL summed over classes (Eq. 3); "
            "official_seen_classes: softmax over seen classes, KL / #seen (code's "
            "kl_div reduction='mean')",
        )

    @classmethod
    def check_run(cls, params: Config, config: RunConfig) -> None:
        """Refused by `resolve_config`, before a run folder exists (as `ViewBatches` would)."""
        views = params.views
        batched = params.replay_interval and params.apply_to != "buffer" and views > 1
        if batched and config.train.batch_size % views:
            raise ConfigError(
                "train.batch_size",
                config.train.batch_size,
                f"a multiple of plugins.view_batch.views ({views})",
            )
