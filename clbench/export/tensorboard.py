"""TensorBoard: one event-file folder per run, ``<out>/<run id>/`` (export) or
``<run>/trackers/tensorboard/`` (live).

Scalars vs update step (`clbench.export.scalars`), the resolved config as text, the accuracy
figure as an image, and the hyperparameters with the final metrics for the HParams dashboard.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from clbench.export.missing import missing_tracker
from clbench.export.run_log import RunLog
from clbench.export.scalars import RunMeta
from clbench.export.sink import replay

EVENT_PREFIX = "events.out.tfevents."
FLUSH_SECS = 10  # live: what was logged reaches the event file within this many seconds


def require_tensorboard(where: str = "export") -> None:
    """Fail early, before any run is read, when TensorBoard is not installed."""
    try:
        from torch.utils.tensorboard import SummaryWriter  # noqa: F401
    except ImportError as exc:
        raise missing_tracker("tensorboard", exc, where) from None


def exported_tensorboard(out: Path, run_id: str) -> list[Path]:
    """Event files of an earlier export of ``run_id`` under ``out``."""
    return event_files(out / run_id)


def event_files(folder: Path) -> list[Path]:
    return sorted(folder.glob(f"{EVENT_PREFIX}*"))


class TensorBoardSink:
    """A `SummaryWriter` on ``folder``, which must hold no earlier event files of the run
    (appending would show every scalar twice)."""

    def __init__(self, folder: Path, meta: RunMeta) -> None:
        require_tensorboard()
        from torch.utils.tensorboard import SummaryWriter

        self.meta = meta
        self.last_step = 0
        self.writer: Any = SummaryWriter(log_dir=str(folder), flush_secs=FLUSH_SECS)
        config = yaml.safe_dump(meta.config, sort_keys=False)
        self.writer.add_text("config", "```yaml\n" + config + "```", 0)

    def log_steps(self, steps: Mapping[int, Mapping[str, float]]) -> None:
        for step, values in steps.items():
            for tag, value in values.items():
                self.writer.add_scalar(tag, value, step)
            self.last_step = max(self.last_step, step)

    def log_summary(self, metrics: Mapping[str, float]) -> None:
        # run_name "." keeps the hparams next to the scalars: one run in TensorBoard, not two
        self.writer.add_hparams(
            self.meta.hparams, dict(metrics), run_name=".", global_step=self.last_step
        )

    def log_file(self, path: Path) -> None:
        if path.suffix.lower() != ".png":
            return  # TensorBoard keeps images, not files
        import numpy as np
        from PIL import Image

        with Image.open(path) as image:
            pixels = np.asarray(image.convert("RGB"))
        self.writer.add_image(path.stem, pixels, self.last_step, dataformats="HWC")

    def flush(self) -> None:
        self.writer.flush()

    def close(self, status: str) -> None:
        self.writer.close()


def export_tensorboard(log: RunLog, out: Path, replace: bool = False) -> Path:
    """Write ``log`` to ``out/<run id>``; ``replace`` first deletes an earlier export's event
    files there (appending would show every scalar twice)."""
    require_tensorboard()
    target = out / log.run_id
    if replace:
        for old in exported_tensorboard(out, log.run_id):
            old.unlink()
    replay(log, TensorBoardSink(target, log))
    return target
