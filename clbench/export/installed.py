"""Whether every package of ``output.trackers`` is installed: checked before a run or a sweep
starts, without importing the trackers' own machinery (pandas and the rest of `clbench.export`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from clbench.config import RunConfig


def require(tracker: str) -> None:
    """Raise `ClbenchError` (exit 2) naming the pip extra when ``tracker``'s package is missing."""
    where = "output.trackers"
    if tracker == "tensorboard":
        from clbench.export.tensorboard import require_tensorboard

        require_tensorboard(where)
    elif tracker == "wandb":
        from clbench.export.wandb import require_wandb

        require_wandb(where)
    elif tracker == "mlflow":
        from clbench.export.mlflow import require_mlflow

        require_mlflow(where)


def check_trackers(config: RunConfig) -> None:
    """Raise `ClbenchError` (exit 2) when a package of ``output.trackers`` is missing."""
    for name in config.output.trackers:
        require(name)
