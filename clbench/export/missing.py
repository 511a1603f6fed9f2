"""The error for a tracker package that is not installed."""

from __future__ import annotations

from clbench.errors import ClbenchError

# the pip extra of each tracker (pyproject.toml); `loggers` installs all of them
EXTRAS = {"tensorboard": "tensorboard", "wandb": "wandb", "mlflow": "mlflow"}


def missing_tracker(tracker: str, exc: ImportError, where: str = "export") -> ClbenchError:
    extra = EXTRAS.get(tracker, "loggers")
    return ClbenchError(
        f"{where}: the {tracker} package is not installed ({exc}); install it with: "
        f'pip install "clbench[{extra}]" (or "clbench[loggers]" for every tracker)'
    )
