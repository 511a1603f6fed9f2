"""`clbench.sweeps`: a suite's runs from Python, as ``clbench sweep`` runs them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

    from clbench.api.report import Report


@dataclass(frozen=True)
class Results:
    """The run folders a sweep made or found finished; `load` and `report` read them."""

    root: Path  # the suite's results root
    paths: list[Path]  # its runs (the evaluation runs under a GTEP protocol)
    exit_code: int = 0  # 0, 1 when a run failed, 128 + signal when interrupted

    @property
    def ok(self) -> bool:
        return self.exit_code == 0

    def load(self, *, include_partial: bool = False) -> pd.DataFrame:
        """One row per run (`clbench.load` over ``paths``)."""
        from clbench.api.load import load

        return load([p for p in self.paths if p.exists()], include_partial=include_partial)

    def report(self, **options: Any) -> Report:
        """The suite's tables (`clbench.report` over ``paths``, same options)."""
        from clbench.api.report import report

        return report(self, **options)


def sweep(
    suite: str | Path,
    *,
    jobs: int = 1,
    executor: str = "local",
    seeds: str | Sequence[int] | None = None,
    grid: dict[str, Sequence[Any]] | None = None,
    gpus_per_run: float = 0.0,
    dry_run: bool = False,
    **options: Any,
) -> Results:
    """Run the suite YAML ``suite`` (grids x seeds x entries) and return its `Results`.

    Options are ``clbench sweep``'s: ``jobs`` runs at a time on ``executor`` (``local``,
    ``ray``, ``slurm``), ``seeds`` replacing the suite's (``"0-4"`` or a list), ``grid`` axes
    added or replaced (``{"train.lr": [0.01, 0.05]}``), ``gpus_per_run``, and the rest by their
    option names (``address``, ``slurm_partition``, ``slurm_time``, ``report``, ...). Finished
    runs are skipped, so calling it again resumes the sweep. Bad input raises `ConfigError`
    before any run starts.
    """
    from clbench.sweeps.command import SweepOptions, execute_sweep

    seed_text = seeds if seeds is None or isinstance(seeds, str) else ",".join(map(str, seeds))
    axes = [f"{key}={','.join(map(str, values))}" for key, values in (grid or {}).items()]
    settings = SweepOptions(
        suite=str(suite),
        grid=axes,
        seeds=seed_text,
        jobs=jobs,
        executor=executor,
        gpus_per_run=gpus_per_run,
        dry_run=dry_run,
        **options,
    )
    outcome = execute_sweep(settings)
    return Results(outcome.root, outcome.run_paths, outcome.code)
