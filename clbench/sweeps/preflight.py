"""Before the first run: check every run can start, and make missing pretrained backbones.

`check_runs` makes `clbench.engine.runner.prepare`'s checks (data files, scenario fit, strategy
capabilities, weights) once per distinct config up to the seed, so a bad combination stops the
sweep with exit code 2 before any run folder is written; from the specs without torch where they
can tell (`clbench.engine.spec_plan.checked_by_specs`), else by `prepare`; consecutive configs on
the same data read it once. Runs of ``optional`` entries whose data is
missing are skipped with a message instead. Runs that need a backbone made by a ``pretrain:`` step
are checked after that step.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from clbench.config import RunConfig
from clbench.data.arrays import LastLoaded
from clbench.errors import ClbenchError, DataNotFoundError
from clbench.sweeps.suite import LoadedSuite, PlannedRun, SuiteError, describe


@dataclass
class Checked:
    """Runs that can start, runs left for after pretraining, and what was skipped (with why)."""

    runnable: list[PlannedRun] = field(default_factory=list)
    deferred: list[PlannedRun] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # "entry 'x' (point)" -> why

    def skip_messages(self) -> list[str]:
        return [f"skipped {what}: {why}" for what, why in self.skipped.items()]


def needed_backbone(run: PlannedRun) -> str | None:
    pretrained = run.config.model.get("pretrained")
    return str(Path(pretrained)) if isinstance(pretrained, str) else None


def _group(run: PlannedRun) -> str:
    """What a skip message names: the entry and grid point (all seeds and phases)."""
    return f"entry {run.entry!r}" + (f" ({run.point_label})" if run.point else "")


def check_runs(
    loaded: LoadedSuite,
    runs: list[PlannedRun],
    pending_backbones: frozenset[str] | set[str] = frozenset(),
    missing_backbones: dict[str, str] | None = None,
    checked: Checked | None = None,
) -> Checked:
    """Sort ``runs`` into runnable / deferred (backbone still to make) / skipped.

    Raises `SuiteError` naming the entry, grid point and field for the first run that cannot
    start; an optional entry's missing data (or missing optional backbone) only skips its runs.
    """
    checked = checked or Checked()
    missing_backbones = missing_backbones or {}
    to_check: list[tuple[PlannedRun, RunConfig]] = []
    for run in runs:
        backbone = needed_backbone(run)
        if backbone in missing_backbones:
            checked.skipped[_group(run)] = missing_backbones[backbone]
        elif backbone in pending_backbones:
            checked.deferred.append(run)
        else:
            # seeds never change whether a run can start: one check per config up to the seed
            to_check.append((run, run.config.model_copy(update={"seed": 0})))
    verdicts = _verdicts([config for _, config in to_check])
    for run, config in to_check:
        problem = verdicts[config.model_dump_json()]
        if problem is None:
            checked.runnable.append(run)
        elif isinstance(problem, DataNotFoundError) and run.optional:
            first_line = str(problem).split(";")[0]
            checked.skipped[_group(run)] = f"optional, and its data is missing ({first_line})"
        else:
            where = describe(loaded, run.entry, run.point, run.seed, run.phase)
            raise SuiteError(f"{where}: {problem}")
    return checked


def _verdicts(configs: list[RunConfig]) -> dict[str, ClbenchError | None]:
    """Each distinct config's problem (None: it can start), checked in the order of their data
    so that each dataset is read once: from the specs without torch where they can tell,
    else by `prepare`."""
    from clbench.engine.spec_plan import checked_by_specs
    from clbench.export.installed import check_trackers

    distinct = {config.model_dump_json(): config for config in configs}
    by_data = sorted(distinct.items(), key=lambda item: json.dumps(item[1].data, default=str))
    last_read, last_loaded = LastLoaded(), LastLoaded()  # as arrays for the specs, as tensors
    verdicts: dict[str, ClbenchError | None] = {}
    for key, config in by_data:
        try:
            if not checked_by_specs(config, last_read):
                from clbench.engine.runner import prepare

                prepare(config, last_loaded)
            check_trackers(config)  # output.trackers' packages are installed
            verdicts[key] = None
        except ClbenchError as exc:
            verdicts[key] = exc
    return verdicts


def pending_backbones(loaded: LoadedSuite) -> set[str]:
    """``out`` files of the suite's pretrain steps that do not exist yet."""
    return {str(Path(step.out)) for step in loaded.suite.pretrain if not Path(step.out).exists()}


def validate_pretrain_steps(loaded: LoadedSuite) -> list[RunConfig]:
    """Resolved configs of the pretrain steps (validated before anything runs)."""
    from clbench.config import apply_overrides, build_config, resolve_config

    configs = []
    for i, step in enumerate(loaded.suite.pretrain):
        path = loaded.resolve_path(step.config) if isinstance(step.config, str) else None
        overrides = list(step.overrides)
        if loaded.suite.threads is not None:
            overrides.insert(0, f"threads={loaded.suite.threads}")
        try:
            if isinstance(step.config, dict):
                config = resolve_config(apply_overrides(step.config, overrides))
            else:
                config = build_config(path, overrides)
        except ClbenchError as exc:
            raise SuiteError(f"suite {loaded.path}, pretrain[{i}] ({step.out}): {exc}") from None
        configs.append(config)
    return configs


def run_pretrain_steps(loaded: LoadedSuite, echo: Callable[[str], None] = print) -> dict[str, str]:
    """Make each missing backbone; returns {out: why} for optional steps that were skipped."""
    from clbench.engine.pretrain import pretrain

    skipped: dict[str, str] = {}
    for step, config in zip(loaded.suite.pretrain, validate_pretrain_steps(loaded), strict=True):
        if Path(step.out).exists():
            continue
        echo(f"pretrain: making {step.out} (once; later sweeps reuse it)")
        try:
            info = pretrain(config, step.out)
        except DataNotFoundError as exc:
            if not step.optional:
                raise
            why = str(exc).split(";")[0]
            skipped[str(Path(step.out))] = f"its backbone {step.out} needs missing data ({why})"
            echo(f"pretrain: skipped {step.out}: data missing")
            continue
        acc = info["source_test_acc"]
        acc_text = "n/a" if acc is None else f"{acc:.4f}"
        echo(f"pretrain: {info['path']} in {info['train_s']:.1f} s, source accuracy {acc_text}")
    return skipped
