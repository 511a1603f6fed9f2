"""`clbench.run`: one experiment from Python, with the CLI's folder, hashing, resume and checks.

``clbench run`` is a thin layer over this function: both build the config the same way, refuse
bad input before anything is written, return a finished run instead of redoing it, and continue an
interrupted one from its checkpoint.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

    from clbench.config import RunConfig
    from clbench.engine.checkpoint import Position


def flatten_overrides(overrides: dict[str, Any]) -> dict[str, Any]:
    """Keyword overrides as dotted keys: ``train={"lr": 0.1}`` and ``**{"train.lr": 0.1}`` both
    become ``{"train.lr": 0.1}``; an empty mapping is kept as a value (``plugins={"fpf": {}}``)."""
    flat: dict[str, Any] = {}
    for key, value in overrides.items():
        if isinstance(value, dict) and value:
            for sub, inner in flatten_overrides(value).items():
                flat[f"{key}.{sub}"] = inner
        else:
            flat[key] = value
    return flat


def resolve_run_config(config: Any = None, overrides: dict[str, Any] | None = None) -> RunConfig:
    """A validated config from a YAML path, a raw mapping, a `RunConfig` or None (the embedded
    default), with keyword ``overrides`` applied (see `flatten_overrides`)."""
    from clbench.config import (
        RunConfig,
        apply_values,
        default_config_path,
        load_yaml,
        resolve_config,
    )
    from clbench.errors import ConfigError

    if config is None:
        raw = load_yaml(default_config_path())
    elif isinstance(config, str | Path):
        raw = load_yaml(config)
    elif isinstance(config, RunConfig):
        raw = config.model_dump(mode="json")
    elif isinstance(config, dict):
        raw = config
    else:
        raise ConfigError(
            "config", type(config).__name__, "a YAML path, a mapping, a RunConfig or None"
        )
    return resolve_config(apply_values(raw, flatten_overrides(overrides or {})))


@dataclass(frozen=True)
class Run:
    """A run folder written by `run`: its outcome, and its files read on demand."""

    path: Path
    status: str  # "finished" or "diverged" (records kept, no summary)
    skipped: bool = False  # already finished: nothing was run
    resumed_from: Position | None = None  # the checkpoint it continued from, if any
    detail: str = ""  # why it diverged

    @property
    def summary(self) -> dict[str, Any]:
        """``summary.json``: metrics, budget, seeds and timings (empty for a diverged run)."""
        return self._folder().summary if self.status == "finished" else {}

    @property
    def config(self) -> dict[str, Any]:
        """The resolved config the run was made with (``config.yaml``)."""
        return self._folder().config

    @property
    def records(self) -> pd.DataFrame:
        """Every evaluation, long format: ``step``, ``phase``, ``current_task``, ``task``,
        ``kind``, ``n``, ``correct``, ``acc`` (= correct / n), ``loss`` (``docs/results.md``)."""
        from clbench.api.load import with_accuracy

        return with_accuracy(self._folder().records())

    @property
    def train_loss(self) -> pd.DataFrame:
        """The training loss of every update (``step``, ``loss``)."""
        return self._folder().train_loss()

    def plot(self) -> Figure:
        """Per-task accuracy against updates, as a matplotlib Figure (nothing global changes)."""
        from clbench.plotting.curves import draw_curves
        from clbench.plotting.settings import group_settings

        return draw_curves(group_settings([self._folder()]), title=self.path.name)

    def _folder(self) -> Any:
        from clbench.results.reader import RunFolder

        return RunFolder(self.path)


def run(
    config: Any = None,
    /,
    *,
    force: bool = False,
    progress: bool = False,
    **overrides: Any,
) -> Run:
    """Run one experiment and return its `Run`; a finished run is returned, not redone.

    ``config``: a YAML path, a raw mapping (as a YAML file would hold), a `RunConfig`, or None
    for the embedded default (Split-digits ER). ``overrides`` set config keys, by section
    (``train={"epochs": 2}``) or dotted (``**{"train.epochs": 2}``), or top-level
    (``seed=3``). ``force`` re-runs a finished folder; ``progress`` shows the progress bar.

    Bad input raises `clbench.errors.ConfigError` (or another `ClbenchError`) before any
    folder is written. SIGINT/SIGTERM checkpoint the run and raise `RunInterrupted`.
    """
    config = resolve_run_config(config, overrides)
    return run_config(config, force=force, progress=progress)


def run_config(config: RunConfig, *, force: bool = False, progress: bool = False) -> Run:
    """`run` for an already resolved config (the CLI builds its own, then calls this)."""
    check_output_root(config.output.root)  # before the data loads, not after
    if not force:
        finished = finished_run(config)
        if finished is not None:
            return finished
    from clbench.engine.spec_plan import check_without_torch

    check_without_torch(config)  # what the specs can refuse, before torch's import (seconds)
    # a finished run was answered without these (and without torch)
    from clbench.engine.job import run_job
    from clbench.export.live import build_trackers
    from clbench.plotting.curves import plot_task_curves

    trackers = build_trackers(config)  # a tracker's missing package: refused before the run
    outcome = run_job(
        config, progress=progress, force=force, figure=plot_task_curves, observers=trackers
    )
    return Run(
        path=outcome.path,
        status=outcome.status,
        skipped=outcome.skipped,
        resumed_from=outcome.resumed_from,
        detail=outcome.detail,
    )


def check_output_root(root: str) -> None:
    """``output.root`` must be (or be creatable as) a writable folder: refused with exit 2 before
    any data is loaded, instead of an OSError traceback after."""
    import os

    from clbench.errors import ConfigError

    path = Path(root)
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent  # the first folder that exists must let us create the rest
    if not existing.is_dir():
        raise ConfigError("output.root", root, f"a folder ({existing} is not a folder)")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ConfigError("output.root", root, f"a writable folder ({existing} is not writable)")


def finished_run(config: RunConfig) -> Run | None:
    """The run of ``config`` if its folder holds a finished run, else None; its files are
    checked as `clbench.engine.job.run_job` checks them (another config's folder or a damaged
    file: exit 2 naming it), and its summary must be printable."""
    from clbench.config import config_hash, run_name
    from clbench.engine.run_dir import RunDir, finished_summary
    from clbench.errors import CorruptedResultError

    folder = RunDir(Path(config.output.root) / run_name(config))
    summary = finished_summary(folder, config_hash(config))
    if summary is None:
        return None
    for key, kind in (("run_id", str), ("budget", dict), ("eval_every", int)):
        if not isinstance(summary.get(key), kind):
            raise CorruptedResultError(folder.file("summary.json"), f"no {key!r}")
    return Run(path=folder.path, status="finished", skipped=True)
