"""Typed run configuration: YAML files, ``key.sub=value`` overrides, validation before any work.

A run config has four component sections (``data``, ``scenario``, ``model``, ``strategy``), each
a ``name`` plus that component's parameters, validated against the component's own
pydantic ``Config``; ``plugins``, a mapping from plugin names to their parameters (applied in
that order); and fixed sections ``train``, ``eval``, ``metrics``, ``output`` plus ``seed``,
``device`` and ``precision``. `resolve_config` returns the fully defaulted config whose hash
names the run.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import types
import typing
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator

from clbench.data.augment_names import TRAIN_AUGMENTS, TrainAugment
from clbench.errors import ConfigError, clip
from clbench.later_keys import without_unset_later_keys
from clbench.metrics.options import MetricOptions
from clbench.registry import (
    DATASETS,
    MODELS,
    PLUGINS,
    SCENARIOS,
    STRATEGIES,
    Registry,
    validate_params,
)

# Limits on what an input may hold (README "Limits"): hostile or mistyped input is refused with
# a message instead of hanging, exhausting memory or running for years.
MAX_YAML_BYTES = 4 * 1024 * 1024  # a config or suite file
MAX_YAML_NODES = 100_000  # values of one YAML document, each alias counted as its expansion
MAX_INT = 10**9  # any integer setting without a tighter bound of its own
MAX_EPOCHS = 10_000
MAX_BATCH = 1_000_000
MAX_SEED = 2**32 - 1  # numpy's seed range


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class TrainConfig(_Section):
    epochs: int = Field(1, ge=1, le=MAX_EPOCHS, description="Epochs over each phase's data")
    batch_size: int = Field(32, ge=1, le=MAX_BATCH, description="New samples per update")
    optimizer: Literal["sgd", "adam", "adamw"] = Field("sgd", description="Optimizer")
    lr: float = Field(0.01, gt=0, description="Learning rate")
    momentum: float = Field(0.0, ge=0, lt=1, description="SGD momentum")
    weight_decay: float = Field(0.0, ge=0, description="Weight decay")
    drop_last: bool = Field(False, description="Drop the last incomplete batch of each epoch")
    augment: TrainAugment | list[TrainAugment] = Field(
        "none",
        description="Augmentation of every training batch (new and replayed samples), on the "
        "device with the run's seeded generator: crop_flip = the CIFAR standard (4-px padded "
        "random crop + horizontal flip), resized_crop_flip = RandomResizedCrop + flip, "
        "autoaugment / autoaugment_imagenet = AutoAugment's CIFAR-10 / ImageNet policy, "
        "randaugment = RandAugment (2 ops, magnitude 9), the last three with torchvision's maths; "
        "a list applies several in order, e.g. [crop_flip, autoaugment] "
        "(clbench.data.augment); evaluation data is never augmented",
    )
    scheduler: Literal["none", "multistep", "cosine"] = Field(
        "none",
        description="Learning-rate schedule, a function of the loop position "
        "(clbench.strategy.lr_schedule): multistep (gamma at each milestone epoch) or cosine "
        "(to min_lr_ratio), both after warmup_epochs of linear warm-up",
    )
    scheduler_scope: Literal["phase", "run"] = Field(
        "phase",
        description="Restart the schedule every phase (Mammoth, PTM papers) or span the run",
    )
    milestones: list[Annotated[int, Field(ge=1, le=MAX_EPOCHS)]] = Field(
        default_factory=list,
        description="multistep: epochs (of the phase, or of the run with scope run) at which the "
        "rate is multiplied by gamma",
    )
    gamma: float = Field(0.1, gt=0, le=1, description="multistep: factor at each milestone")
    warmup_epochs: float = Field(
        0.0, ge=0, le=MAX_EPOCHS, description="Linear warm-up length, in epochs of the scope"
    )
    min_lr_ratio: float = Field(
        0.0, ge=0, lt=1, description="cosine: the final rate as a fraction of the base rate"
    )
    grad_clip: float | None = Field(
        None, gt=0, description="Clip the gradients' global L2 norm to this (unset: no clipping)"
    )
    channels_last: bool = Field(
        False, description="Convolutional models in channels_last memory format (faster on GPUs)"
    )
    compile: bool = Field(False, description="torch.compile the model (Module.compile, in place)")

    @field_validator("augment", mode="before")
    @classmethod
    def _one_spelling(cls, value: Any) -> Any:
        """Name each unknown augmentation (a union's own error would not), and keep one spelling
        per augmentation (so one hash): 'none' entries dropped, an empty list is 'none', a
        one-name list is that name."""
        for name in value if isinstance(value, list) else [value]:
            if name not in TRAIN_AUGMENTS:
                raise ValueError(
                    f"one of {', '.join(TRAIN_AUGMENTS)}, or a list of them ({name!r} is not)"
                )
        if not isinstance(value, list):
            return value
        names = [name for name in value if name != "none"]
        return names if len(names) > 1 else (names[0] if names else "none")


class EvalConfig(_Section):
    """Continual evaluation protocol of De Lange et al., ICLR 2023 (official code
    Mattdl/ContinualEvaluation@7ffa368:src/eval/continual_eval.py), with subsets drawn once.
    """

    schedule: Literal["every", "adaptive"] = Field(
        "every",
        description="every: after every `every` updates; adaptive: every update for the first "
        "`dense` updates of each phase (where the stability gap lives), then at spacings that "
        "grow by `growth` up to `max_every`, and at every phase end (clbench.engine.schedule)",
    )
    every: int = Field(1, ge=1, description="Evaluate all seen tasks every N updates (rho_eval)")
    dense: int = Field(
        50,
        ge=0,
        le=MAX_INT,
        description="adaptive: updates evaluated one by one after each phase start",
    )
    growth: float = Field(
        1.5, ge=1, le=100, description="adaptive: factor by which the spacing grows after `dense`"
    )
    max_every: int = Field(
        50, ge=1, le=MAX_INT, description="adaptive: the largest spacing between evaluations"
    )
    refine: float | None = Field(
        None,
        gt=0,
        lt=1,
        description="adaptive: an evaluation past the dense window at which some seen task's "
        "accuracy moved by more than this since the previous one restarts the spacings at 1 "
        "(e.g. 0.02; unset: spacings only grow)",
    )
    subset_size: int = Field(
        1000,
        le=MAX_BATCH * 100,
        description="Test samples per task for continual evaluation; -1 = whole test set",
    )
    subset_sampling: Literal["stratified", "uniform"] = Field(
        "stratified", description="Class-stratified (clbench) or uniform (official code) subsets"
    )
    batch_size: int = Field(1024, ge=1, le=MAX_BATCH, description="Evaluation batch size")
    precision: Literal["train", "fp32", "bf16"] = Field(
        "train",
        description="Precision of evaluation forward passes: the run's `precision` (train), or "
        "fp32 / bf16 autocast whatever training uses (bf16: 3-5x faster passes on CPUs with AMX "
        "and on GPUs; measured effect in docs/performance.md)",
    )
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
    online_accuracy: Literal[True, False, "auto"] = Field(
        "auto",
        description="Also evaluate each incoming training batch before the first update that "
        "uses it (online accuracy; `online` rows of records.parquet, which also hold the "
        "stream's task mix per update). auto: on for streams whose generator draws a task mix "
        "(online, blurry, gaussian_schedule), off for the others",
    )

    @field_validator("subset_size")
    @classmethod
    def _positive_or_whole(cls, value: int) -> int:
        # a field validator (not model_post_init) so the error names eval.subset_size alone
        if value == 0 or value < -1:
            raise ValueError("a positive number of samples or -1 (whole test set)")
        return value


class CheckpointConfig(_Section):
    """When a run saves ``checkpoint.pt`` (not part of the run hash: it never changes results)."""

    every: int = Field(500, ge=0, description="Checkpoint every N updates (0 = only at phase ends)")
    at_phase_end: bool = Field(True, description="Also checkpoint after every phase")
    keep: bool = Field(False, description="Keep the last checkpoint when the run finishes")


RUN_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._=+-]{0,199}$"
# live experiment trackers of `output.trackers` (clbench.export.live)
Tracker = Literal["tensorboard", "wandb", "mlflow", "csv"]
TRACKERS: tuple[str, ...] = typing.get_args(Tracker)


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
    trackers: list[Tracker] = Field(
        default_factory=list,
        description="Experiment trackers that follow the run live (docs/tracking.md): "
        "tensorboard, wandb (offline unless WANDB_MODE says otherwise), mlflow (a file store "
        "under root, or MLFLOW_TRACKING_URI), csv (trackers/metrics.csv); not part of the run hash",
    )

    @field_validator("trackers", mode="before")
    @classmethod
    def _known_trackers(cls, value: Any) -> Any:
        # one message naming the value and every tracker (not pydantic's per-item error)
        names = [value] if isinstance(value, str) else value
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise ValueError(f"a list of tracker names, each one of: {', '.join(TRACKERS)}")
        unknown = [n for n in names if n not in TRACKERS]
        if unknown:
            raise ValueError(
                f"tracker names, each one of: {', '.join(TRACKERS)} ({unknown[0]!r} is not one)"
            )
        return list(dict.fromkeys(names))  # each tracker once


class RunConfig(_Section):
    """A whole experiment."""

    _parts: dict[str, Any] | None = PrivateAttr(default=None)

    data: dict[str, Any] = Field(default_factory=lambda: {"name": "digits"})
    scenario: dict[str, Any] = Field(default_factory=lambda: {"name": "class_incremental"})
    model: dict[str, Any] = Field(default_factory=lambda: {"name": "mlp"})
    strategy: dict[str, Any] = Field(default_factory=lambda: {"name": "er"})
    plugins: dict[str, dict[str, Any] | None] = Field(
        default_factory=dict,
        description="Plugins over the strategy, in order: {name: {parameters}}, e.g. "
        "{view_batch: {views: 4}}",
    )
    train: TrainConfig = Field(default_factory=TrainConfig)
    eval: EvalConfig = Field(default_factory=EvalConfig)
    metrics: MetricOptions = Field(default_factory=MetricOptions)
    output: OutputConfig = Field(default_factory=OutputConfig)
    checkpoint: CheckpointConfig = Field(default_factory=CheckpointConfig)
    seed: int = Field(0, ge=0, le=MAX_SEED, description="Seed of everything (derived per purpose)")
    device: str = Field("auto", description="auto, cpu, cuda or cuda:N")
    precision: Literal["fp32", "bf16", "fp16"] = Field(
        "fp32",
        description="Autocast mixed precision: bf16, or fp16 with loss scaling (a GradScaler; "
        "for GPUs without bf16 such as V100/T4)",
    )
    storage: Literal["auto", "device", "host", "memmap"] = Field(
        "auto",
        description="Where the dataset lives: on the device (batches gathered there), in host "
        "memory (each batch gathered, pinned and copied over), memmap: like host but memory-mapped "
        "from a cache built once under $CLBENCH_CACHE (default ~/.cache/clbench), or auto: on the "
        "device when both splits take at most storage_device_fraction of its memory, else host "
        "(never memmap). Never changes results",
    )
    storage_device_fraction: float = Field(
        0.25, gt=0, le=1, description="auto storage: the share of device memory data may take"
    )
    deterministic: bool = Field(False, description="torch.use_deterministic_algorithms")
    threads: int | None = Field(
        None,
        ge=1,
        le=1024,
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


class _StrictLoader(yaml.SafeLoader):
    """PyYAML's safe loader that refuses a key repeated in one mapping (last-wins would hide a
    typo); alias expansion is bounded by `parse_yaml` before anything is constructed."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":  # `<<: *base` may be overridden
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                repeated = key in seen
                seen.add(key)
            except TypeError:  # unhashable: the base constructor reports it
                continue
            if repeated:
                raise yaml.constructor.ConstructorError(
                    "while constructing a mapping",
                    node.start_mark,
                    f"found the key {clip(repr(key), 80)} twice",
                    key_node.start_mark,
                )
        return super().construct_mapping(node, deep=deep)


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def _check_expansion(root: yaml.Node) -> None:
    """Refuse a document whose expanded size (aliases counted at every use) passes
    MAX_YAML_NODES, or that refers to itself: an alias bomb is caught before it is expanded."""
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()  # nodes whose children are being sized: an ancestor path
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        key = id(node)
        if children_done:
            open_nodes.discard(key)
            sizes[key] = 1 + sum(sizes[id(c)] for c in _children(node))
            if sizes[key] > MAX_YAML_NODES:
                raise yaml.YAMLError(
                    f"more than {MAX_YAML_NODES} values once aliases are expanded "
                    f"(near {str(node.start_mark).strip()})"
                )
            continue
        if key in sizes:
            continue
        if key in open_nodes:
            raise yaml.YAMLError(f"an alias refers to itself ({str(node.start_mark).strip()})")
        open_nodes.add(key)
        stack.append((node, True))
        stack.extend((c, False) for c in _children(node) if id(c) not in sizes)


def parse_yaml(text: str, field: str, value: str) -> Any:
    """Parse one YAML document safely (no Python tags, no repeated keys, bounded aliases);
    any problem is a `ConfigError` naming ``field`` and ``value`` (a file or an override)."""
    loader: _StrictLoader | None = None
    try:
        loader = _StrictLoader(text)  # checks the characters already
        loader.name = value  # YAML's error marks name the file instead of "<unicode string>"
        node = loader.get_single_node()
        if node is None:
            return None
        _check_expansion(node)
        return loader.construct_document(node)
    except yaml.YAMLError as exc:
        problem = clip(" ".join(str(exc).split()), 300)  # one line, however YAML formats it
        raise ConfigError(field, value, f"valid YAML ({problem})") from None
    except RecursionError:
        raise ConfigError(field, value, "YAML nested less deeply") from None
    finally:
        if loader is not None:
            loader.dispose()


def read_yaml_file(path: str | Path, what: str = "config") -> Any:
    """The YAML document in ``path`` (UTF-8, at most MAX_YAML_BYTES); errors name the file."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(what, str(path), "an existing YAML file")
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_YAML_BYTES + 1)
    except OSError as exc:
        raise ConfigError(what, str(path), f"a readable file ({exc.strerror})") from None
    if len(data) > MAX_YAML_BYTES:
        raise ConfigError(what, str(path), f"a YAML file of at most {MAX_YAML_BYTES} bytes")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            what, str(path), f"UTF-8 text (byte {exc.start} is 0x{data[exc.start]:02x})"
        ) from None
    return parse_yaml(text, what, str(path))


def load_yaml(path: str | Path, what: str = "config") -> dict[str, Any]:
    """Safely load a YAML mapping; errors name the file."""
    loaded = read_yaml_file(path, what)
    if not isinstance(loaded, dict):
        raise ConfigError(what, str(path), f"a YAML mapping of {what} sections")
    return loaded


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``a.b=value`` overrides (values parsed as YAML scalars/lists)."""
    values: dict[str, Any] = {}
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError("override", item, "key.sub=value")
        values[key] = parse_yaml(value, key, value) if value else value
    return apply_values(raw, values)


def apply_values(raw: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``raw`` with each dotted key of ``values`` (``"train.lr"``) set to its value.

    Switching a component (``strategy.name``) drops the old component's parameters that
    ``values`` does not set itself.
    """
    raw = copy.deepcopy(raw)
    for key, value in values.items():
        node = raw
        parts = key.split(".")
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(key, value, f"{part} is not a section")
            node = child
        previous = node.get(parts[-1])
        node[parts[-1]] = value
        # switching to another component drops the parameters of the old one
        renamed = previous is not None and previous != value
        if renamed and parts[-1] == "name" and len(parts) == 2 and parts[0] in _COMPONENTS:
            keep = DATA_COMMON if parts[0] == "data" else ("name",)
            for other in [k for k in node if k not in keep]:
                if f"{parts[0]}.{other}" not in values:
                    del node[other]
    return raw


def _is_numeric(annotation: Any) -> bool:
    """Whether a field annotation takes numbers (int/float, possibly optional or in a list)."""
    if annotation in (int, float):
        return True
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _is_numeric(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType, list, tuple, set, frozenset):
        args = [a for a in typing.get_args(annotation) if a is not Ellipsis]
        return bool(args) and not any(a is bool for a in args) and any(map(_is_numeric, args))
    return False


def refuse_bools(model: type[BaseModel], raw: Any, prefix: str) -> None:
    """``true`` where a number goes is a mistake, not 1 (pydantic would accept it)."""
    if not isinstance(raw, dict):
        return
    for name, info in model.model_fields.items():
        value = raw.get(name, raw.get(info.alias) if info.alias else None)
        where = f"{prefix}{name}"
        annotation = info.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            refuse_bools(annotation, value, f"{where}.")
        elif _is_numeric(annotation):
            items = value if isinstance(value, list | tuple) else [value]
            if any(isinstance(v, bool) for v in items):
                raise ConfigError(where, value, f"a number, not true/false ({_type_name(info)})")


def _type_name(info: Any) -> str:
    annotation = info.annotation
    return getattr(annotation, "__name__", None) or str(annotation).replace("typing.", "")


def _check_keys(value: Any, where: str) -> None:
    """Setting names are text: a number or null as a key (``1: x``, ``~: x``) is refused here,
    naming where it is, instead of as an anonymous pydantic error."""
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise ConfigError(where or "config", key, "setting names (text) as keys")
            _check_keys(item, f"{where}.{key}" if where else key)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _check_keys(item, f"{where}[{index}]")


def _check_values(value: Any, where: str) -> None:
    """Every number finite and every integer within MAX_INT, at any depth (nan/inf would train
    nonsense; a huge size would hang or exhaust memory long after the run started)."""
    if isinstance(value, bool):
        return
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(where, value, "a finite number")
    if isinstance(value, int) and abs(value) > MAX_INT:
        raise ConfigError(where, value, f"an integer of magnitude at most {MAX_INT}")
    if isinstance(value, dict):
        for key, item in value.items():
            _check_values(item, f"{where}.{key}" if where else str(key))
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            _check_values(item, f"{where}[{index}]")


def resolve_config(raw: dict[str, Any]) -> RunConfig:
    """Validate every section and fill all defaults; raise `ConfigError` naming the field."""
    _check_keys(raw, "")
    refuse_bools(RunConfig, raw, "")
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
        if section == "strategy" and name in PLUGINS and name not in STRATEGIES:
            raise ConfigError(
                "strategy.name",
                name,
                f"a strategy ({name} is a plugin: name the strategy it modifies here, with its "
                f"parameters, and add `plugins: {{{name}: {{...}}}}`)",
            )
        component_cls = registry.spec_of(name, field=f"{section}.name")
        common = {}
        if section == "data":
            common = {
                "root": params.pop("root", None),
                "download": bool(params.pop("download", False)),
            }
        refuse_bools(component_cls.Config, params, f"{section}.")
        validated = validate_params(component_cls.Config, params, section)
        _check_values(validated.model_dump(), section)  # before JSON turns inf into null
        setattr(config, section, {"name": name, **common, **validated.model_dump(mode="json")})
    _resolve_plugins(config)
    fixed = config.model_dump(exclude={*_COMPONENTS, "plugins"})
    _check_values({k: v for k, v in fixed.items() if k != "seed"}, "")
    # each component resolved once; `component` reuses it while the section is unchanged
    config._parts = {s: (dict(getattr(config, s)), _validated(config, s)) for s in _COMPONENTS}
    for name, params in config.plugins.items():
        spec = PLUGINS.spec_of(name)
        check = getattr(spec, "check_run", None)
        if check is not None:
            check(spec.Config.model_validate(params), config)
    for section in _COMPONENTS:
        # cross-section rules a component states itself (e.g. batch size vs views), so that
        # they are refused here, before any run folder exists
        name, params = component(config, section)
        check = getattr(_COMPONENTS[section].spec_of(name), "check_run", None)
        if check is not None:
            check(params, config)
    return config


def _resolve_plugins(config: RunConfig) -> None:
    """Validate each plugin's parameters (errors name ``plugins.<name>.<field>``)."""
    resolved: dict[str, dict[str, Any]] = {}
    for name, params in config.plugins.items():
        if name in STRATEGIES and name not in PLUGINS:
            raise ConfigError(
                f"plugins.{name}", params, f"a plugin ({name} is a strategy: strategy.name)"
            )
        plugin_cls = PLUGINS.spec_of(name, field="plugins")
        raw = params or {}
        if not isinstance(raw, dict):
            raise ConfigError(f"plugins.{name}", raw, "a mapping of the plugin's parameters")
        where = f"plugins.{name}"
        refuse_bools(plugin_cls.Config, raw, f"{where}.")
        validated = validate_params(plugin_cls.Config, raw, where)
        _check_values(validated.model_dump(), where)
        resolved[name] = validated.model_dump(mode="json")
    config.plugins = resolved


def build_config(path: str | Path | None = None, overrides: list[str] | None = None) -> RunConfig:
    """Config file (or the embedded default) + overrides -> validated, fully resolved config."""
    raw = load_yaml(path if path is not None else default_config_path())
    return resolve_config(apply_overrides(raw, overrides or []))


# Sections that never change a run's results (where they are written, when checkpoints are
# saved): left out of the run hash, and of what tells runs apart in labels (clbench.results.labels).
HASH_EXCLUDED = frozenset({"output", "checkpoint", "storage", "storage_device_fraction"})


def config_hash(config: RunConfig) -> str:
    """Hash of the resolved config (seed included) without output and checkpoint settings (which
    never change results): names the run."""
    payload = config.model_dump(mode="json", exclude=set(HASH_EXCLUDED))
    if not payload["plugins"]:
        del payload["plugins"]  # runs without plugins keep the names they had before plugins
    payload["eval"] = normalized_eval(payload["eval"])
    payload["train"] = without_later_defaults("train", payload["train"])
    payload["scenario"] = without_unset_later_keys(payload["scenario"])
    blob = json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(blob).hexdigest()[:12]


def run_name(config: RunConfig) -> str:
    """The run folder's name: ``output.name``, else strategy (+ plugins), scenario, data (its
    source's ``run_label``: the name, or e.g. an Avalanche benchmark's), seed and hash."""
    if config.output.name:
        return config.output.name
    data = DATASETS.spec_of(config.data["name"]).run_label(config.data)  # e.g. the benchmark
    learner = "+".join([config.strategy["name"], *config.plugins])
    names = (learner, config.scenario["name"], data)
    return f"{'-'.join(names)}-s{config.seed}-{config_hash(config)}"


ADAPTIVE_KEYS = ("schedule", "dense", "growth", "max_every", "refine")
# keys added to a section after runs were made: left out of the hash at their default, so those
# runs keep their names and compare equal to runs made before the key existed
LATER_KEYS: dict[str, tuple[str, ...]] = {
    "eval": ("precision", "refine", "online_accuracy"),
    "train": (
        "augment",
        "scheduler",
        "scheduler_scope",
        "milestones",
        "gamma",
        "warmup_epochs",
        "min_lr_ratio",
        "grad_clip",
        "channels_last",
        "compile",
    ),
}
# their defaults, read from the sections' own fields (one place states a default)
LATER_DEFAULTS: dict[str, dict[str, Any]] = {
    section: {
        key: model.model_fields[key].get_default(call_default_factory=True)
        for key in LATER_KEYS[section]
    }
    for section, model in (("eval", EvalConfig), ("train", TrainConfig))
}


def without_later_defaults(section: str, values: dict[str, Any]) -> dict[str, Any]:
    """``values`` of ``section`` less the later-added keys at their defaults."""
    later = LATER_DEFAULTS.get(section, {})
    return {k: v for k, v in values.items() if k not in later or v != later[k]}


def normalized_eval(section: dict[str, Any]) -> dict[str, Any]:
    """The ``eval`` section as it identifies a run: the adaptive schedule's settings only when
    it is used, so `every` runs keep the hash (and compare equal to runs made before
    ``eval.schedule`` existed)."""
    section = without_later_defaults("eval", section)
    if section.get("schedule", "every") == "every":
        return {k: v for k, v in section.items() if k not in ADAPTIVE_KEYS}
    return {k: v for k, v in section.items() if k not in ("every", "counter")}  # unused


def component(config: RunConfig, section: str) -> tuple[str, BaseModel]:
    """(name, validated params model) of a resolved component section."""
    cached = (config._parts or {}).get(section)
    if cached is not None and cached[0] == getattr(config, section):
        return cached[1]
    return _validated(config, section)


def plugin_params(config: RunConfig) -> list[tuple[str, BaseModel]]:
    """(name, validated params model) of each configured plugin, in order."""
    return [(n, PLUGINS.spec_of(n).Config.model_validate(p)) for n, p in config.plugins.items()]


def _validated(config: RunConfig, section: str) -> tuple[str, BaseModel]:
    params = dict(getattr(config, section))
    name = params.pop("name")
    if section == "data":
        for key in ("root", "download"):
            params.pop(key, None)
    cls = _COMPONENTS[section].spec_of(name)
    return name, cls.Config.model_validate(params)
