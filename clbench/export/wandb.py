"""Weights & Biases: offline runs that never touch the network nor need an API key.

`clbench export --to wandb` forces offline mode; live tracking (`clbench.export.live`) is
offline unless ``WANDB_MODE`` (or an API key) says otherwise. Each exported run becomes
``<out>/wandb/offline-run-<time>-<id>/`` with the resolved config, the same per-step scalars as
TensorBoard and the final metrics in the run summary; the seeds of one setting share a W&B
group. ``wandb sync <folder>`` uploads it later, to the W&B run whose id is
the clbench run id (so syncing again updates that run instead of adding one).
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from clbench.export.missing import missing_tracker
from clbench.export.run_log import RunLog
from clbench.export.scalars import RunMeta
from clbench.export.sink import replay

DEFAULT_PROJECT = "clbench"
# W&B run ids: at most 64 characters, none of / \ # ? % :
_ID_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")
_OFFLINE_ENV = {"WANDB_MODE": "offline", "WANDB_SILENT": "true", "WANDB_DISABLE_GIT": "true"}


def require_wandb(where: str = "export") -> None:
    """Fail early, before any run is read, when wandb is not installed."""
    try:
        import wandb  # noqa: F401
    except ImportError as exc:
        raise missing_tracker("wandb", exc, where) from None


def wandb_id(run_id: str) -> str:
    """The W&B run id of a clbench run (the end is kept: it holds the config hash)."""
    return _ID_UNSAFE.sub("-", run_id)[-64:]


def exported_wandb(out: Path, run_id: str) -> list[Path]:
    """Offline run folders of earlier exports of ``run_id`` under ``out``."""
    return sorted((out / "wandb").glob(f"offline-run-*-{wandb_id(run_id)}"))


@contextlib.contextmanager
def _offline() -> Iterator[None]:
    """Force offline mode even where the user's environment says online; restore after."""
    saved = {key: os.environ.get(key) for key in _OFFLINE_ENV}
    os.environ.update(_OFFLINE_ENV)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


class WandbSink:
    """A W&B run in ``folder`` (``<folder>/wandb/<mode>-run-<time>-<id>/``) whose id is the
    clbench run id's (`wandb_id`). ``mode`` "offline" never touches the network; "online"
    continues the W&B run of that id if it exists (``resume="allow"``)."""

    def __init__(self, folder: Path, meta: RunMeta, mode: str, project: str) -> None:
        require_wandb()
        import wandb

        folder.mkdir(parents=True, exist_ok=True)
        settings = wandb.Settings(
            silent=True,
            console="off",
            x_disable_stats=True,
            disable_git=True,
            disable_code=True,
            disable_job_creation=True,
        )
        self.last_step = 0
        self.run: Any = wandb.init(
            mode=mode,
            dir=str(folder),
            project=project,
            id=wandb_id(meta.run_id),
            name=meta.run_id,
            group=meta.setting,
            tags=[f"{k}={v}"[:64] for k, v in meta.tags.items()],
            config=meta.config,
            settings=settings,
            reinit="create_new",
            **({"resume": "allow"} if mode == "online" else {}),
        )

    @property
    def path(self) -> Path:
        """The W&B run folder (what ``wandb sync`` takes)."""
        return Path(self.run.dir).parent

    def log_steps(self, steps: Mapping[int, Mapping[str, float]]) -> None:
        for step, values in steps.items():
            self.run.log(dict(values), step=step)
            self.last_step = max(self.last_step, step)

    def log_summary(self, metrics: Mapping[str, float]) -> None:
        self.run.summary.update(dict(metrics))

    def log_file(self, path: Path) -> None:
        import wandb

        if path.suffix.lower() == ".png":
            self.run.log({path.stem: wandb.Image(str(path))}, step=self.last_step)
        else:
            self.run.save(str(path), base_path=str(path.parent), policy="now")

    def flush(self) -> None:
        pass  # the W&B service writes as it receives

    def close(self, status: str) -> None:
        self.run.finish(exit_code=0 if status == "finished" else 1)


def export_wandb(
    log: RunLog, out: Path, project: str = DEFAULT_PROJECT, replace: bool = False
) -> Path:
    """Write ``log`` as an offline W&B run under ``out``; ``replace`` first deletes an earlier
    export of the same run (two offline copies would sync into one W&B run twice)."""
    require_wandb()
    import shutil

    if replace:
        for old in exported_wandb(out, log.run_id):
            shutil.rmtree(old)
    with _offline():
        sink = WandbSink(out, log, mode="offline", project=project)
        replay(log, sink)
    return sink.path
