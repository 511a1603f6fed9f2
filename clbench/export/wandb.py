"""Weights & Biases export in offline mode: never touches the network nor needs an API key.

Each run becomes ``<out>/wandb/offline-run-<time>-<id>/`` with the resolved config, the same
per-step scalars as TensorBoard and the final metrics in the run summary; the seeds of one
setting share a W&B group. ``wandb sync <folder>`` uploads it later, to the W&B run whose id is
the clbench run id (so syncing again updates that run instead of adding one).
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator
from pathlib import Path

from clbench.export.missing import missing_tracker
from clbench.export.run_log import RunLog

DEFAULT_PROJECT = "clbench"
# W&B run ids: at most 64 characters, none of / \ # ? % :
_ID_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")
_OFFLINE_ENV = {"WANDB_MODE": "offline", "WANDB_SILENT": "true", "WANDB_DISABLE_GIT": "true"}


def require_wandb() -> None:
    """Fail early, before any run is read, when wandb is not installed."""
    try:
        import wandb  # noqa: F401
    except ImportError as exc:
        raise missing_tracker("wandb", exc) from None


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


def export_wandb(
    log: RunLog, out: Path, project: str = DEFAULT_PROJECT, replace: bool = False
) -> Path:
    """Write ``log`` as an offline W&B run under ``out``; ``replace`` first deletes an earlier
    export of the same run (two offline copies would sync into one W&B run twice)."""
    require_wandb()
    import shutil

    import wandb

    if replace:
        for old in exported_wandb(out, log.run_id):
            shutil.rmtree(old)
    out.mkdir(parents=True, exist_ok=True)
    settings = wandb.Settings(
        silent=True,
        console="off",
        x_disable_stats=True,
        disable_git=True,
        disable_code=True,
        disable_job_creation=True,
    )
    with _offline():
        run = wandb.init(
            mode="offline",
            dir=str(out),
            project=project,
            id=wandb_id(log.run_id),
            name=log.run_id,
            group=log.setting,
            tags=[f"{k}={v}"[:64] for k, v in log.tags.items()],
            config=log.config,
            settings=settings,
            reinit="create_new",
        )
        try:
            for step, values in log.steps.items():
                run.log(values, step=step)
            run.summary.update(log.metrics)
        finally:
            run.finish()
    return Path(run.dir).parent
