"""A run's plan from the component specs alone, without torch (``clbench run --dry-run``).

The figures a dry run prints (`PlanFigures`) follow from the config, the data's labels and
shapes and a few facts each spec can state: the data source's arrays (`DataSource.arrays`), the
model's parameter count (`ModelSpec.parameter_count`) and the strategy's memory
(`StrategySpec.spec_plan`). When every component can state them, `spec_figures` makes the
checks of `clbench.engine.runner.prepare` (raising the same errors) and returns the figures
without importing torch; otherwise it returns None and the dry run builds the run (seconds:
torch's import). ``tests/engine/test_dry_run.py`` compares the two for every registered
strategy. A sweep checks its configs the same way (`checked_by_specs`).
"""

from __future__ import annotations

import glob
import json
import math
from dataclasses import dataclass

from clbench.config import RunConfig, component
from clbench.data.arrays import LastLoaded
from clbench.data.batch_rule import batches_per_epoch
from clbench.data.source import DataSource, resolve_data_root
from clbench.engine.recipe_checks import (
    check_augment_inputs,
    check_pretrained_given,
    check_recipe_settings,
)
from clbench.engine.seeding import derive_seed
from clbench.errors import DataNotFoundError, IncompatibleError
from clbench.registry import DATASETS, MODELS, SCENARIOS, STRATEGIES
from clbench.scenario.plan import ScenarioPlan

FLOAT32_BYTES = 4  # parameters and normalised evaluation inputs are float32
# Device files of a GPU torch could use (NVIDIA, ROCm, WSL): with none of them ``device=auto``
# is the CPU whatever torch would find
GPU_DEVICE_FILES = ("/dev/nvidiactl", "/dev/nvidia[0-9]*", "/dev/kfd", "/dev/dxg")


@dataclass(frozen=True)
class PlanFigures:
    """What a dry run prints about a run: its scenario plan, loop and the memory of its parts."""

    plan: ScenarioPlan
    batches_per_epoch: tuple[int, ...]  # per phase
    eval_samples: int  # every task's evaluation subset together
    data_bytes: int
    storage: str
    device: str
    parameters: int
    parameter_bytes: int
    trainable_bytes: int
    subset_bytes: int
    memory_slots: int
    stored_values: int  # per slot besides index and label (0: none)
    device_total_bytes: int | None = None  # a CUDA device's memory


def gpu_may_be_visible() -> bool:
    """Whether this machine has a GPU device file, so ``device=auto`` needs torch to resolve."""
    return any(glob.glob(pattern) for pattern in GPU_DEVICE_FILES)


def evaluation_subset_sizes(plan: ScenarioPlan, subset_size: int) -> list[int]:
    """Samples of each task's evaluation subset: ``eval.subset_size`` or the whole test set when
    smaller or negative (`clbench.engine.evaluator.draw_subset`)."""
    sizes = []
    for task in plan.tasks:
        n = len(task.test_indices)
        sizes.append(n if subset_size < 0 or subset_size >= n else subset_size)
    return sizes


def _answerable(config: RunConfig) -> bool:
    """Whether the run's settings leave the specs something to answer: no plugin (they compose
    batches), nothing probed on a device, no cache to build."""
    return not (
        config.plugins
        or config.storage == "memmap"  # the dry run would build the cache
        or config.precision == "fp16"  # the device's loss scaling is probed with torch
        or config.train.channels_last
        or config.device not in ("cpu", "auto")
        or (config.device == "auto" and gpu_may_be_visible())
    )


def _source(config: RunConfig) -> DataSource | None:
    """The data source's spec, instantiated, when it states its arrays (else None)."""
    data_name, data_params = component(config, "data")
    cls = DATASETS.spec_of(data_name)
    if not spec_states(cls, "arrays"):
        return None
    root = resolve_data_root(config.data.get("root"))
    return cls(data_params, root, bool(config.data.get("download")))


def check_without_torch(config: RunConfig) -> None:
    """The checks of `prepare` the specs make without torch, so that a run refuses such bad
    input in well under a second (it then imports torch and makes them all): a strategy that
    needs pretrained weights, recipe settings, the model's files (a missing weights file), the
    data's files."""
    strategy_name, _ = component(config, "strategy")
    capabilities = STRATEGIES.spec_of(strategy_name).capabilities
    model_name, model_params = component(config, "model")
    check_pretrained_given(strategy_name, capabilities, model_params)
    check_recipe_settings(config, strategy_name, capabilities)
    MODELS.spec_of(model_name).check_files(model_params)
    check_data_files(config)


def check_data_files(config: RunConfig) -> bool:
    """Raise `DataNotFoundError` when the data source's spec finds its files missing (no torch;
    a run checks this before importing it). Returns whether the spec could tell."""
    source = _source(config)
    if source is None:
        return False
    source.check_available()
    return True


def checked_by_specs(config: RunConfig, last_read: LastLoaded | None = None) -> bool:
    """Make `prepare`'s checks from the specs (no torch): False when they cannot tell, True when
    the run can start; raises what `prepare` raises (missing data: `DataNotFoundError`)."""
    return spec_figures(config, last_read) is not None


def spec_missing_files(config: RunConfig) -> list[str] | None:
    """The files a dry run reports missing, from the specs: the data's when its spec states its
    arrays and the model's spec states its parameter count (such a model needs no files); None
    when the specs cannot tell."""
    model_name, _ = component(config, "model")
    if not (_answerable(config) and spec_states(MODELS.spec_of(model_name), "parameter_count")):
        return None
    try:
        if not check_data_files(config):
            return None
    except DataNotFoundError as exc:
        return [str(exc)]
    return []


def spec_figures(config: RunConfig, last_read: LastLoaded | None = None) -> PlanFigures | None:
    """The dry run's figures from the specs, or None when a component cannot state its part
    (the dry run then builds the run). Raises what `prepare` would for bad input (missing data:
    `DataNotFoundError`). ``last_read`` keeps the arrays read for the next
    call with the same data (a sweep's check of many configs)."""
    if not _answerable(config):
        return None
    strategy_name, strategy_params = component(config, "strategy")
    strategy = STRATEGIES.spec_of(strategy_name)
    model_name, model_params = component(config, "model")
    model = MODELS.spec_of(model_name)
    source = _source(config)
    if (
        source is None
        or not spec_states(strategy, "spec_plan")
        or not spec_states(model, "parameter_count")
    ):
        return None

    check_without_torch(config)  # the rest of `prepare`'s checks follow the plan
    key = json.dumps(config.data, sort_keys=True, default=str)
    data = last_read.get(key) if last_read is not None else None
    if data is None:
        data = source.arrays()
        if data is None:
            return None
        if last_read is not None:
            last_read.keep(key, data)
    scenario_name, scenario_params = component(config, "scenario")
    plan = SCENARIOS.get(scenario_name)(scenario_params).build(
        data, derive_seed(config.seed, "scenario")
    )
    check_augment_inputs(config, data.is_image)
    problems = strategy.capabilities.problems_with(plan)
    if problems:
        raise IncompatibleError(
            f"strategy {strategy_name!r} cannot run scenario {scenario_name!r}: "
            + "; ".join(problems)
        )
    parameters = model.parameter_count(model_params, data.input_shape, plan.num_outputs)
    memory = strategy.spec_plan(strategy_params, plan)
    if parameters is None or memory is None:
        return None

    t = config.train
    batches = tuple(
        batches_per_epoch(sum(len(p.indices) for p in phase.parts), t.batch_size, t.drop_last)
        for phase in plan.phases
    )
    eval_samples = sum(evaluation_subset_sizes(plan, config.eval.subset_size))
    return PlanFigures(
        plan=plan,
        batches_per_epoch=batches,
        eval_samples=eval_samples,
        data_bytes=data.train.nbytes + data.test.nbytes,
        storage="device" if config.storage == "auto" else config.storage,
        device="cpu",
        parameters=parameters,
        parameter_bytes=FLOAT32_BYTES * parameters,
        trainable_bytes=FLOAT32_BYTES * parameters,
        subset_bytes=FLOAT32_BYTES * eval_samples * math.prod(data.input_shape),
        memory_slots=memory.memory_slots,
        stored_values=memory.stored_values,
    )


def spec_states(cls: type, method: str) -> bool:
    """Whether the registered class states ``method``: defines it, or inherits it from a class of
    its own module (built-in specs of one file). A subclass of a built-in implementation elsewhere
    (which may change the loop) does not inherit the built-in's statement."""
    owner = next((k for k in cls.__mro__ if method in vars(k)), None)
    return owner is not None and owner.__module__ == cls.__module__
