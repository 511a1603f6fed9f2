"""Recipe settings a strategy or the data cannot honour, checked before a run (torch-free).

The device-dependent check (fp16 loss scaling) is `clbench.engine.recipe.check_recipe`'s; these
need only the config, so a dry run makes them without importing torch.
"""

from __future__ import annotations

from typing import Any

from clbench.errors import ConfigError
from clbench.strategy.spec import TRAIN_BATCHES, Capabilities


def check_recipe_settings(config: Any, strategy: str, capabilities: Capabilities) -> None:
    """Refuse settings ``strategy`` cannot honour (fp16, clipping or augmentation it bypasses)
    and incomplete schedules."""
    train = config.train
    if not capabilities.steps_through_api:
        why = (
            f"fp32 or bf16 for strategy {strategy!r}: it runs its own backward and optimizer "
            "step, so loss scaling would not apply"
        )
        if config.precision == "fp16":
            raise ConfigError("precision", "fp16", why)
        if train.grad_clip is not None:
            raise ConfigError(
                "train.grad_clip",
                train.grad_clip,
                f"unset for strategy {strategy!r}: it runs its own backward and optimizer step, "
                "so clipping would not apply",
            )
    if train.augment != "none" and TRAIN_BATCHES not in capabilities.routes:
        raise ConfigError(
            "train.augment",
            train.augment,
            f"none for strategy {strategy!r}: it does not form its training batches through "
            "the strategy API (replayed samples would go unaugmented)",
        )
    if train.scheduler == "multistep" and not train.milestones:
        raise ConfigError("train.milestones", [], "at least one epoch for scheduler multistep")


def check_augment_inputs(config: Any, is_image: bool) -> None:
    """Refuse training augmentation of vector inputs."""
    if config.train.augment != "none" and not is_image:
        raise ConfigError(
            "train.augment",
            config.train.augment,
            f"none for data {config.data['name']!r}: its inputs are vectors, not images",
        )


def check_pretrained_given(strategy: str, capabilities: Capabilities, model_params: Any) -> None:
    """Refuse a strategy that starts from pretrained weights on a model without any."""
    if capabilities.needs_pretrained and not getattr(model_params, "pretrained", None):
        raise ConfigError("model.pretrained", None, f"{strategy} needs pretrained weights")
