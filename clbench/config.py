"""Typed run configuration: YAML files, ``key.sub=value`` overrides, validation before any work.

A run config has four component sections (``data``, ``scenario``, ``model``, ``strategy``), each
a ``name`` plus that component's parameters, validated against the component's own
pydantic ``Config``; and fixed sections ``train``, ``eval``, ``metrics``, ``output`` plus ``seed``,
``device`` and ``precision``. `resolve_config` returns the fully defaulted config whose hash
names the run.
"""

from __future__ import annotations

import copy
import hashlib
import json
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from clbench.errors import ConfigError
from clbench.metrics.summary import MetricOptions
from clbench.registry import DATASETS, MODELS, SCENARIOS, STRATEGIES, Registry, validate_params


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TrainConfig(_Section):
    epochs: int = Field(1, ge=1, description="Epochs over each phase's data")
    batch_size: int = Field(32, ge=1, description="New samples per update")
    optimizer: Literal["sgd", "adam", "adamw"] = Field("sgd", description="Optimizer")
    lr: float = Field(0.01, gt=0, description="Learning rate")
    momentum: float = Field(0.0, ge=0, lt=1, description="SGD momentum")
    weight_decay: float = Field(0.0, ge=0, description="Weight decay")
    drop_last: bool = Field(False, description="Drop the last incomplete batch of each epoch")


class EvalConfig(_Section):
    """Continual evaluation protocol (continual-evaluation spec §3.2)."""

    every: int = Field(1, ge=1, description="Evaluate all seen tasks every N updates (rho_eval)")
    subset_size: int = Field(
        1000, description="Test samples per task for continual evaluation; -1 = whole test set"
    )
    subset_sampling: Literal["stratified", "uniform"] = Field(
        "stratified", description="Class-stratified (clbench) or uniform (official code) subsets"
    )
    batch_size: int = Field(1024, ge=1, description="Evaluation batch size")
    counter: Literal["global", "per_phase", "per_epoch"] = Field(
        "global", description="Which update counter `every` applies to"
    )
    preupdate_every_task: bool = Field(
        False,
        description="Also evaluate before the first update of every phase (not only the first)",
    )
    boundary_full_eval: bool = Field(True, description="Full test sets of seen tasks at phase ends")
    track_forward: bool = Field(
        True,
        description="At phase ends also evaluate the next task and, at step 0, all tasks (FWT)",
    )

    def model_post_init(self, _: Any) -> None:
        if self.subset_size == 0 or self.subset_size < -1:
            raise ValueError("subset_size must be positive or -1 (whole test set)")


class CheckpointConfig(_Section):
    """When a run saves ``checkpoint.pt`` (not part of the run hash: it never changes results)."""

    every: int = Field(500, ge=0, description="Checkpoint every N updates (0 = only at phase ends)")
    at_phase_end: bool = Field(True, description="Also checkpoint after every phase")
    keep: bool = Field(False, description="Keep the last checkpoint when the run finishes")


RUN_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._=+-]{0,199}$"


class OutputConfig(_Section):
    root: str = Field("results", description="Root folder of run folders")
    name: str | None = Field(
        None,
        description="Run folder name inside root (default: derived from the config hash); "
        "letters, digits and . _ = + - only, so it cannot leave the results root",
        pattern=RUN_NAME_PATTERN,
    )
    plot: bool = Field(True, description="Write a PNG of per-task accuracy vs update")
    tags: dict[str, str] = Field(
        default_factory=dict,
        description="Free labels written to the run's summary (e.g. sweep name, protocol phase); "
        "not part of the run hash",
    )


class RunConfig(_Section):
    """A whole experiment."""

    data: dict[str, Any] = Field(default_factory=lambda: {"name": "digits"})
    scenario: dict[str, Any] = Field(default_factory=lambda: {"name": "class_incremental"})
    model: dict[str, Any] = Field(default_factory=lambda: {"name": "mlp"})
    strategy: dict[str, Any] = Field(default_factory=lambda: {"name": "er"})
    train: TrainConfig = Field(default_factory=TrainConfig)
    eval: EvalConfig = Field(default_factory=EvalConfig)
    metrics: MetricOptions = Field(default_factory=MetricOptions)
    output: OutputConfig = Field(default_factory=OutputConfig)
    checkpoint: CheckpointConfig = Field(default_factory=CheckpointConfig)
    seed: int = Field(0, ge=0, description="Seed of everything (derived per purpose)")
    device: str = Field("auto", description="auto, cpu, cuda or cuda:N")
    precision: Literal["fp32", "bf16"] = Field(
        "fp32", description="bf16 = autocast mixed precision"
    )
    deterministic: bool = Field(False, description="torch.use_deterministic_algorithms")
    threads: int | None = Field(
        None,
        ge=1,
        description="torch CPU threads (default: torch's choice, one per core); 1 on a shared "
        "machine, where spinning threads of two busy processes slow both many-fold",
    )


DATA_COMMON = ("name", "root", "download")
_COMPONENTS: dict[str, Registry[Any]] = {
    "data": DATASETS,
    "scenario": SCENARIOS,
    "model": MODELS,
    "strategy": STRATEGIES,
}


def default_config_path() -> Path:
    return Path(str(resources.files("clbench") / "default.yaml"))


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Safely load a YAML mapping; errors name the file."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError("config", str(path), "an existing YAML file")
    try:
        loaded = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError("config", str(path), f"valid YAML ({exc})") from None
    if not isinstance(loaded, dict):
        raise ConfigError("config", str(path), "a YAML mapping of config sections")
    return loaded


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``a.b=value`` overrides (values parsed as YAML scalars/lists)."""
    raw = copy.deepcopy(raw)
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError("override", item, "key.sub=value")
        node = raw
        parts = key.split(".")
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(key, item, f"{part} is not a section")
            node = child
        previous = node.get(parts[-1])
        node[parts[-1]] = yaml.safe_load(value) if value else value
        # switching to another component drops the parameters of the old one
        renamed = previous is not None and previous != node[parts[-1]]
        if renamed and parts[-1] == "name" and len(parts) == 2 and parts[0] in _COMPONENTS:
            keep = DATA_COMMON if parts[0] == "data" else ("name",)
            for other in [k for k in node if k not in keep]:
                if f"{parts[0]}.{other}" not in {o.partition("=")[0] for o in overrides}:
                    del node[other]
    return raw


def resolve_config(raw: dict[str, Any]) -> RunConfig:
    """Validate every section and fill all defaults; raise `ConfigError` naming the field."""
    try:
        config = RunConfig.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"])
        if err["type"] == "extra_forbidden":
            raise ConfigError(field, err.get("input"), "not a known setting") from None
        raise ConfigError(
            field, err.get("input"), err["msg"].removeprefix("Value error, ")
        ) from None
    for section, registry in _COMPONENTS.items():
        params = dict(getattr(config, section))
        name = params.pop("name", None)
        if not isinstance(name, str):
            raise ConfigError(f"{section}.name", name, registry.names())
        component = registry.get(name, field=f"{section}.name")
        common = {}
        if section == "data":
            common = {
                "root": params.pop("root", None),
                "download": bool(params.pop("download", False)),
            }
        validated = validate_params(component.Config, params, section)
        setattr(config, section, {"name": name, **common, **validated.model_dump(mode="json")})
    return config


def build_config(path: str | Path | None = None, overrides: list[str] | None = None) -> RunConfig:
    """Config file (or the embedded default) + overrides -> validated, fully resolved config."""
    raw = load_yaml(path if path is not None else default_config_path())
    return resolve_config(apply_overrides(raw, overrides or []))


# Sections that never change a run's results (where they are written, when checkpoints are
# saved): left out of the run hash, and of what tells runs apart in labels (clbench.results.labels).
HASH_EXCLUDED = frozenset({"output", "checkpoint"})


def config_hash(config: RunConfig) -> str:
    """Hash of the resolved config (seed included) without output and checkpoint settings (which
    never change results): names the run."""
    payload = config.model_dump(mode="json", exclude=set(HASH_EXCLUDED))
    blob = json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(blob).hexdigest()[:12]


def component(config: RunConfig, section: str) -> tuple[str, BaseModel]:
    """(name, validated params model) of a resolved component section."""
    params = dict(getattr(config, section))
    name = params.pop("name")
    if section == "data":
        for key in ("root", "download"):
            params.pop(key, None)
    cls = _COMPONENTS[section].get(name)
    return name, cls.Config.model_validate(params)
