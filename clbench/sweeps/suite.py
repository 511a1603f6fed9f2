"""Sweep suites: one YAML file that expands into a deterministic list of validated run configs.

A suite names a ``base`` run config, ``overrides`` for every run, a ``grid`` (cartesian product
of config keys' values), named ``axes`` (cartesian product of labelled override lists, e.g. a
dataset axis where each dataset brings its own budget) and ``seeds``; ``entries`` add named
variants, each with its own overrides, grid and axes (one suite can cover several strategies with
their own hyperparameters). Expansion order is fixed: entries as
listed, then grid points (keys sorted, so their order in the YAML does not matter; values as
listed), then seeds ascending. Every expanded config is resolved (`clbench.config.resolve_config`)
before anything runs, and each run is named exactly as `clbench run` names it, so a sweep and a
single run of the same config share one folder. Identical expanded configs run once.
"""

from __future__ import annotations

import itertools
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from clbench.config import (
    RunConfig,
    apply_overrides,
    default_config_path,
    load_yaml,
    parse_yaml,
    refuse_bools,
    resolve_config,
    run_name,
)
from clbench.errors import ClbenchError, ConfigError

# Settings the sweep itself controls: a suite sets them through `seeds`, `threads`, `output`.
_RESERVED = ("seed", "threads", "output")


def parse_seeds(spec: int | str | list[int], field: str = "seeds") -> list[int]:
    """``3``, ``[0, 2]``, ``"0-4"`` or ``"0,2,5"`` -> sorted distinct non-negative seeds."""
    if isinstance(spec, bool):
        raise ConfigError(field, spec, 'a list of seeds, a range "0-4" or "0,2,5"')
    if isinstance(spec, int):
        seeds = [spec]
    elif isinstance(spec, list):
        seeds = spec
    else:
        seeds = []
        for part in str(spec).replace(" ", "").split(","):
            low, dash, high = part.partition("-")
            if not (low.isdigit() and (not dash or high.isdigit())):
                raise ConfigError(field, spec, 'a list of seeds, a range "0-4" or "0,2,5"')
            seeds.extend(range(int(low), int(high if dash else low) + 1))
    if not seeds or any(not isinstance(s, int) or isinstance(s, bool) or s < 0 for s in seeds):
        raise ConfigError(field, spec, "one or more non-negative integer seeds")
    return sorted(set(seeds))


def format_value(value: Any) -> str:
    """A grid value as override text that `apply_overrides` parses back to the same value."""
    text = yaml.safe_dump(value, default_flow_style=True, width=math.inf).strip()
    return text.removesuffix("...").strip()


def parse_grid_option(option: str) -> tuple[str, list[Any]]:
    """``--grid train.lr=0.01,0.05`` -> ("train.lr", [0.01, 0.05]); commas inside [] are kept."""
    key, sep, values = option.partition("=")
    if not sep or not key or not values:
        raise ConfigError("--grid", option, "key.sub=value1,value2,...")
    parts, depth, start = [], 0, 0
    for i, char in enumerate(values):
        depth += {"[": 1, "{": 1, "]": -1, "}": -1}.get(char, 0)
        if char == "," and depth == 0:
            parts.append(values[start:i])
            start = i + 1
    parts.append(values[start:])
    return key, [parse_yaml(p, "--grid", option) for p in parts]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


Grid = dict[str, list[Any]]
Axes = dict[str, dict[str, list[str]]]


def _check_grid(grid: Grid) -> Grid:
    for key, values in grid.items():
        if key.split(".", 1)[0] in _RESERVED:
            raise ValueError(f"{key}: set seeds, threads and output at the suite level")
        if not values:
            raise ValueError(f"{key}: needs at least one value")
    return grid


def _check_axes(axes: Axes) -> Axes:
    for name, values in axes.items():
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
            raise ValueError(f"{name!r}: axis names are identifiers (no dots: not a config key)")
        if not values:
            raise ValueError(f"{name}: needs at least one labelled value")
        for overrides in values.values():
            _check_overrides(overrides)
    return axes


def _check_overrides(overrides: list[str]) -> list[str]:
    for item in overrides:
        key = item.partition("=")[0]
        if "=" not in item or not key:
            raise ValueError(f"{item!r} is not key.sub=value")
        if (
            key.split(".", 1)[0] in _RESERVED
            and key != "output.tags"
            and not key.startswith("output.tags.")
        ):
            raise ValueError(f"{key}: set seeds, threads and output at the suite level")
    return overrides


class Entry(_Strict):
    """A named variant: its own overrides and grid on top of the suite's."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.+-]+$", description="Unique entry name")
    overrides: list[str] = Field(default_factory=list, description="key.sub=value for this entry")
    grid: Grid = Field(default_factory=dict, description="key -> values, added to the suite grid")
    axes: Axes = Field(
        default_factory=dict, description="axis -> {label: overrides}; replaces the suite's axis"
    )
    optional: bool | None = Field(
        None,
        description="Skip this entry's runs whose dataset files are missing, with a message, "
        "instead of stopping the sweep (default: the suite's `optional`)",
    )

    _overrides = field_validator("overrides")(_check_overrides)
    _grid = field_validator("grid")(_check_grid)
    _axes = field_validator("axes")(_check_axes)


class PretrainStep(_Strict):
    """A backbone made once by `clbench.engine.pretrain` before the runs, if ``out`` is missing."""

    config: str | dict[str, Any] | None = Field(
        None, description="Run config (path relative to the suite file, or a mapping)"
    )
    overrides: list[str] = Field(default_factory=list)
    out: str = Field(description="Backbone file; entries use it as model.pretrained=<out>")
    optional: bool = Field(
        False,
        description="When its dataset is missing, skip it and the entries that use its output",
    )


class GtepSelect(_Strict):
    metric: str = Field("final_acc", description="summary metric compared across grid points")
    mode: Literal["max", "min"] = "max"


class GtepProtocol(_Strict):
    """Cha & Cho's two-phase protocol: tune on one scenario, evaluate the choice on another."""

    name: Literal["gtep"]
    tuning: list[str] = Field(description="Overrides making the tuning scenario (phase 1)")
    evaluation: list[str] = Field(description="Overrides making the evaluation scenario (phase 2)")
    select: GtepSelect = Field(default_factory=GtepSelect)
    tuning_seeds: int | str | list[int] | None = None
    evaluation_seeds: int | str | list[int] | None = None

    _overrides = field_validator("tuning", "evaluation")(_check_overrides)


class SuiteReport(_Strict):
    """How ``--report FILE`` renders the sweep (`clbench.reporting.render_report` options)."""

    split_by: list[str] = Field(
        default_factory=list, description="one table per value, e.g. [data.name, scenario.name]"
    )
    group_by: list[str] | None = Field(None, description="row keys (default: what varies)")
    treatment: list[str] = Field(
        default_factory=list,
        description="config keys varied on purpose, e.g. [scenario.kernel]: a row each, "
        "compared for best values; other scenario settings are still checked",
    )
    metrics: list[str] | None = Field(None, description="columns (default: the report's)")
    sort_by: str | None = Field(None, description="order rows best first by this column")
    include_partial: bool = Field(
        False, description="count unfinished (failed, diverged) runs in n, with a footnote"
    )
    ci: Literal["t", "bootstrap", "none"] = Field(
        "t", description="cell interval: Student t, BCa bootstrap, or none (mean ± std)"
    )
    confidence: float = Field(
        0.95, gt=0, lt=1, description="interval level; the significance tests use 1 - this"
    )


class SuiteOutput(_Strict):
    root: str | None = Field(None, description="Results root (default: results/<suite name>)")


class Suite(_Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9_.+-]+$", description="Suite name (folder-safe)")
    base: str | dict[str, Any] | None = Field(
        None, description="Run config: a YAML path relative to the suite file, or a mapping"
    )
    overrides: list[str] = Field(default_factory=list)
    grid: Grid = Field(default_factory=dict)
    axes: Axes = Field(
        default_factory=dict,
        description="Named axes: {axis: {label: [overrides]}}, multiplied like grid keys",
    )
    entries: list[Entry] | None = None
    seeds: int | str | list[int] | None = None
    threads: int | None = Field(1, ge=1, description="CPU threads per run (config.threads)")
    optional: bool = Field(
        False,
        description="Skip runs whose dataset files are missing (e.g. Fashion-MNIST on a machine "
        "without it) with a message instead of stopping the sweep; entries may override",
    )
    output: SuiteOutput = Field(default_factory=SuiteOutput)
    pretrain: list[PretrainStep] = Field(default_factory=list)
    protocol: GtepProtocol | None = None
    report: SuiteReport = Field(default_factory=SuiteReport)

    _overrides = field_validator("overrides")(_check_overrides)
    _grid = field_validator("grid")(_check_grid)
    _axes = field_validator("axes")(_check_axes)

    @field_validator("entries")
    @classmethod
    def _unique_names(cls, entries: list[Entry] | None) -> list[Entry] | None:
        if entries is not None:
            if not entries:
                raise ValueError("needs at least one entry (or leave entries out)")
            names = [e.name for e in entries]
            repeated = sorted({n for n in names if names.count(n) > 1})
            if repeated:
                raise ValueError(f"entry names must be unique; repeated: {repeated}")
        return entries


@dataclass(frozen=True)
class LoadedSuite:
    suite: Suite
    path: Path
    base: dict[str, Any]

    @property
    def root(self) -> Path:
        return Path(self.suite.output.root or f"results/{self.suite.name}")

    @property
    def entries(self) -> list[Entry]:
        return self.suite.entries or [Entry(name=self.suite.name)]

    def resolve_path(self, relative: str) -> Path:
        """A path written in the suite, relative to the suite file."""
        path = Path(relative)
        return path if path.is_absolute() else self.path.parent / path


def load_suite(path: str | Path) -> LoadedSuite:
    """Read and validate a suite file; errors name the suite field."""
    path = Path(path)
    raw = load_yaml(path, "suite")
    refuse_bools(Suite, raw, "suite.")
    try:
        suite = Suite.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = "suite." + ".".join(str(p) for p in err["loc"])
        if err["type"] == "extra_forbidden":
            raise ConfigError(where, err.get("input"), "not a suite setting") from None
        raise ConfigError(
            where, err.get("input"), err["msg"].removeprefix("Value error, ")
        ) from None
    if suite.base is None:
        base = load_yaml(default_config_path())
    elif isinstance(suite.base, str):
        base = load_yaml(Path(path.parent, suite.base), "suite base")  # absolute stays absolute
    else:
        base = dict(suite.base)
    return LoadedSuite(suite, path, base)


@dataclass(frozen=True)
class PlannedRun:
    """One expanded run: where it came from and its fully resolved config."""

    run_id: str
    entry: str
    point: dict[str, Any]
    seed: int
    phase: str | None
    config: RunConfig
    optional: bool = False

    @property
    def point_label(self) -> str:
        return point_label(self.point)


def point_label(point: dict[str, Any]) -> str:
    return " ".join(f"{k}={format_value(v)}" for k, v in point.items()) or "-"


def grid_points(grid: Grid, axes: Axes | None = None) -> list[dict[str, Any]]:
    """Cartesian product of grid values and axis labels; keys sorted (YAML key order does not
    matter), values as listed."""
    axes = axes or {}
    clash = sorted(set(grid) & set(axes))
    if clash:
        raise ConfigError("suite.axes", clash, "axis names that are not also grid keys")
    choices = {**grid, **{name: list(values) for name, values in axes.items()}}
    keys = sorted(choices)
    return [
        dict(zip(keys, values, strict=True))
        for values in itertools.product(*map(choices.get, keys))
    ]


def point_overrides(point: dict[str, Any], axes: Axes) -> list[str]:
    """Overrides of one grid point: ``key=value`` per grid key, the label's list per axis."""
    overrides: list[str] = []
    for key, value in point.items():
        overrides.extend(axes[key][value] if key in axes else [f"{key}={format_value(value)}"])
    return overrides


class SuiteError(ClbenchError):
    """An expanded run config is invalid; the message names the entry, grid point and field."""


@dataclass
class Expansion:
    """The suite's runs, in order; GTEP suites have a tuning and an evaluation phase."""

    loaded: LoadedSuite
    runs: list[PlannedRun] = field(default_factory=list)


def expand(
    loaded: LoadedSuite,
    extra_grid: Grid | None = None,
    seeds: list[int] | None = None,
) -> Expansion:
    """All runs of the suite, each config resolved; the first invalid one raises `SuiteError`.

    ``extra_grid`` (``--grid``) adds keys or replaces a key's values in every entry; ``seeds``
    (``--seeds``) replaces the suite's seeds (for GTEP: both phases' seeds).
    """
    suite = loaded.suite
    extra_grid = _check_grid(dict(extra_grid or {}))
    protocol = suite.protocol
    default_seeds = seeds or (
        parse_seeds(suite.seeds) if suite.seeds is not None else [int(loaded.base.get("seed", 0))]
    )
    if protocol is None:
        phases: list[tuple[str | None, list[str], list[int]]] = [(None, [], default_seeds)]
    else:
        phases = [
            (phase, overrides, _phase_seeds(spec, seeds, default_seeds, f"protocol.{phase}_seeds"))
            for phase, overrides, spec in (
                ("tuning", protocol.tuning, protocol.tuning_seeds),
                ("evaluation", protocol.evaluation, protocol.evaluation_seeds),
            )
        ]
    expansion = Expansion(loaded)
    seen: set[str] = set()
    for phase, phase_overrides, phase_seeds in phases:
        for entry in loaded.entries:
            grid = {**suite.grid, **entry.grid, **extra_grid}
            axes = {**suite.axes, **entry.axes}
            for point in grid_points(grid, axes):
                for seed in phase_seeds:
                    overrides = [
                        *suite.overrides,
                        *entry.overrides,
                        *phase_overrides,
                        *point_overrides(point, axes),
                        f"seed={seed}",
                        f"output.root={format_value(str(loaded.root))}",
                        f"output.tags.sweep={suite.name}",
                    ]
                    if suite.threads is not None:
                        overrides.append(f"threads={suite.threads}")
                    if phase is not None:
                        overrides.append(f"output.tags.phase={phase}")
                    config = _resolve(loaded, entry.name, point, seed, phase, overrides)
                    optional = suite.optional if entry.optional is None else entry.optional
                    planned = PlannedRun(
                        run_name(config), entry.name, point, seed, phase, config, optional
                    )
                    # a repeated grid point is dropped; the same config in another entry or
                    # phase stays listed (GTEP selects per entry) and runs once: one folder
                    key = f"{phase}/{entry.name}/{planned.run_id}"
                    if key not in seen:
                        seen.add(key)
                        expansion.runs.append(planned)
    return expansion


def _phase_seeds(
    spec: int | str | list[int] | None, cli: list[int] | None, default: list[int], field: str
) -> list[int]:
    if cli is not None:
        return cli
    return parse_seeds(spec, field) if spec is not None else default


def _resolve(
    loaded: LoadedSuite,
    entry: str,
    point: dict[str, Any],
    seed: int,
    phase: str | None,
    overrides: list[str],
) -> RunConfig:
    try:
        config = resolve_config(apply_overrides(loaded.base, overrides))
        if config.output.name:
            raise ConfigError("output.name", config.output.name, "unset (runs are named by hash)")
    except ClbenchError as exc:
        raise SuiteError(f"{describe(loaded, entry, point, seed, phase)}: {exc}") from None
    return config


def describe(
    loaded: LoadedSuite, entry: str, point: dict[str, Any], seed: int, phase: str | None
) -> str:
    """``suite x.yaml, entry 'er' (train.lr=0.1), seed 0``: where a problem comes from."""
    where = f"suite {loaded.path}, entry {entry!r}"
    if point:
        where += f" ({point_label(point)})"
    where += f", seed {seed}"
    return where + (f", {phase} phase" if phase else "")
