"""``clbench run CONFIG --dry-run``: everything a run would check, and its plan, without training.

The config is validated as for a run and the plan is described: tasks and their sizes, updates
per phase, continual evaluations per phase under the config's schedule, and the memory the run's
fixed parts take (activations, which depend on the model's forward, are not estimated).

When every component's spec can state its part (`clbench.engine.spec_plan`), the figures come
from the specs and the data's arrays without torch. Otherwise the files the run needs (dataset,
pretrained weights) are looked for and every missing one is listed; when they are all there the
data is loaded and the run is built (model, strategy and plugins set up, nothing trained) and
the figures are read from it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from clbench.config import RunConfig, component
from clbench.data.source import resolve_data_root
from clbench.engine.schedule import EvalSchedule
from clbench.engine.spec_plan import PlanFigures, spec_figures, spec_missing_files
from clbench.errors import DataNotFoundError, MissingFileError
from clbench.registry import DATASETS, MODELS


@dataclass
class DryRun:
    missing: list[str] = field(default_factory=list)  # files the run needs that are not there
    lines: list[str] = field(default_factory=list)  # the plan, once everything is there


def _mb(n: float) -> str:
    return f"{n / 2**20:,.1f} MB"


def evaluations_per_phase(config: RunConfig, batches_per_epoch: tuple[int, ...]) -> list[int]:
    """Continual evaluations each phase makes (with ``eval.refine``: the fewest it can make)."""
    schedule = EvalSchedule(config.eval)
    counts, step = [], 0
    for phase, per_epoch in enumerate(batches_per_epoch):
        count, n = 0, per_epoch * config.train.epochs
        for s in range(1, n + 1):
            step += 1
            batch = (s - 1) % per_epoch + 1
            if schedule.due(phase, step, s, batch, s == n):
                count += 1
                schedule.evaluated(s)
        counts.append(count)
    return counts


def dry_run(config: RunConfig) -> DryRun:
    """Validate ``config``, list missing files, and describe the run when nothing is missing.

    The figures come from the component specs when they can state them (`spec_figures`: no
    torch, milliseconds), else from the run built without training. Raises what a run would
    raise for any other bad input (`ConfigError`, `IncompatibleError`).
    """
    missing = spec_missing_files(config)
    if missing is None:
        missing = missing_files(config)
    if missing:
        return DryRun(missing=missing)
    figures = spec_figures(config) or built_figures(config)
    return DryRun(lines=describe(config, figures))


def missing_files(config: RunConfig) -> list[str]:
    """The files the run needs that are not there: pretrained weights, then the dataset."""
    from clbench.engine.runner import resolve_device

    missing = []
    resolve_device(config.device)
    model_name, model_params = component(config, "model")
    try:
        MODELS.get(model_name)(model_params).check()
    except MissingFileError as exc:
        missing.append(str(exc))
    data_name, data_params = component(config, "data")
    root = resolve_data_root(config.data.get("root"))
    source = DATASETS.get(data_name)(data_params, root, bool(config.data.get("download")))
    try:
        source.check_available()
    except DataNotFoundError as exc:
        missing.append(str(exc))
    return missing


def built_figures(config: RunConfig) -> PlanFigures:
    """The figures of the run built without training (imports torch)."""
    import torch

    from clbench.data.stream import split_bytes
    from clbench.engine.runner import Experiment, prepare, resolve_storage

    exp = Experiment(prepare(config))
    dataset = exp.prepared.dataset
    params = [p for net in exp.strategy.networks() for p in net.parameters()]
    memories = [
        m for m in (exp.strategy.memory(), *(p.memory() for p in exp.plugins)) if m is not None
    ]
    widths = {m.extra.shape[1] for m in memories if getattr(m, "extra", None) is not None}
    subset = exp.evaluator.subset.x
    cuda = exp.device.type == "cuda"
    return PlanFigures(
        plan=exp.prepared.plan,
        batches_per_epoch=exp.loop.plan.batches_per_epoch,
        eval_samples=int(exp.evaluator.ends[-1]),
        data_bytes=split_bytes(dataset.train) + split_bytes(dataset.test),
        storage=resolve_storage(config, dataset, exp.device),
        device=str(exp.device),
        parameters=sum(p.numel() for p in params),
        parameter_bytes=sum(p.numel() * p.element_size() for p in params),
        trainable_bytes=sum(p.numel() * p.element_size() for p in params if p.requires_grad),
        subset_bytes=subset.numel() * subset.element_size(),
        memory_slots=sum(getattr(m, "capacity", len(m)) for m in memories),
        stored_values=max(widths, default=0),
        device_total_bytes=(
            torch.cuda.get_device_properties(exp.device).total_memory if cuda else None
        ),
    )


def describe(config: RunConfig, figures: PlanFigures) -> list[str]:
    """The dry run's report: the scenario plan, the loop, evaluations and fixed memory."""
    f, t = figures, config.train
    updates = [t.epochs * n for n in f.batches_per_epoch]
    evals = evaluations_per_phase(config, f.batches_per_epoch)
    refine = " at least" if EvalSchedule(config.eval).watches_results else ""
    slots = 2 if t.optimizer in ("adam", "adamw") else (1 if t.momentum > 0 else 0)
    lines = [
        f.plan.describe(),
        f"updates: {sum(updates)} ({' / '.join(map(str, updates))} per phase; "
        f"{t.epochs} epochs x {' / '.join(map(str, f.batches_per_epoch))} batches "
        f"of {t.batch_size})",
        f"continual evaluations ({config.eval.schedule}):{refine} {sum(evals)} "
        f"({' / '.join(map(str, evals))} per phase), each on up to {f.eval_samples} samples",
        f"memory on {f.device} (fixed parts; activations come on top):",
        f"  data: {_mb(f.data_bytes)} ({f.storage} storage"
        + (", on the host" if f.storage == "host" else "")
        + ")",
        f"  model: {_mb(f.parameter_bytes)} parameters ({f.parameters:,}), "
        f"gradients {_mb(f.trainable_bytes)}, optimizer state {_mb(slots * f.trainable_bytes)}",
        f"  evaluation subsets: {_mb(f.subset_bytes)}",
        f"  replay memory: {f.memory_slots:,} slots ({_slot_contents(f.stored_values)}, "
        "not images)",
    ]
    if f.device_total_bytes is not None:
        lines.append(f"  device total: {_mb(f.device_total_bytes)}")
    return lines


def _slot_contents(stored_values: int) -> str:
    """What a replay slot holds: indices and labels, plus e.g. DER's stored logits."""
    if not stored_values:
        return "sample indices and labels"
    return f"sample indices, labels and {stored_values} stored values (e.g. logits) each"
