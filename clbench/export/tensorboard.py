"""TensorBoard export: one event-file folder per run, ``<out>/<run id>/``.

Scalars vs update step (``acc/task_<t>``, ``acc_full/task_<t>``, ``train/loss``), the resolved
config as text, and the hyperparameters with the final metrics for the HParams dashboard.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from clbench.export.missing import missing_tracker
from clbench.export.run_log import RunLog

EVENT_PREFIX = "events.out.tfevents."


def require_tensorboard() -> None:
    """Fail early, before any run is read, when TensorBoard is not installed."""
    try:
        from torch.utils.tensorboard import SummaryWriter  # noqa: F401
    except ImportError as exc:
        raise missing_tracker("tensorboard", exc) from None


def exported_tensorboard(out: Path, run_id: str) -> list[Path]:
    """Event files of an earlier export of ``run_id`` under ``out``."""
    return sorted((out / run_id).glob(f"{EVENT_PREFIX}*"))


def export_tensorboard(log: RunLog, out: Path, replace: bool = False) -> Path:
    """Write ``log`` to ``out/<run id>``; ``replace`` first deletes an earlier export's event
    files there (appending would show every scalar twice)."""
    require_tensorboard()
    from torch.utils.tensorboard import SummaryWriter

    target = out / log.run_id
    if replace:
        for old in exported_tensorboard(out, log.run_id):
            old.unlink()
    with SummaryWriter(log_dir=str(target)) as writer:
        for step, values in log.steps.items():
            for tag, value in values.items():
                writer.add_scalar(tag, value, step)
        config = yaml.safe_dump(log.config, sort_keys=False)
        writer.add_text("config", "```yaml\n" + config + "```", 0)
        # run_name "." keeps the hparams next to the scalars: one run in TensorBoard, not two
        writer.add_hparams(log.hparams, log.metrics, run_name=".", global_step=log.last_step)
    return target
