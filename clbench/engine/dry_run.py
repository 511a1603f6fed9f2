"""``clbench run CONFIG --dry-run``: everything a run would check, and its plan, without training.

The config is validated as for a run; the files it needs (dataset, pretrained weights) are looked
for and every missing one is listed. When they are all there the data is loaded and the run is
built (model, strategy and plugins set up, nothing trained), and the plan is described: tasks and
their sizes, updates per phase, continual evaluations per phase under the config's schedule, and
the memory the run's fixed parts take (activations, which depend on the model's forward, are not
estimated).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from clbench.config import RunConfig, component
from clbench.data.source import resolve_data_root
from clbench.data.stream import split_bytes
from clbench.engine.runner import Experiment, prepare, resolve_device, resolve_storage
from clbench.engine.schedule import EvalSchedule
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

    Raises what a run would raise for any other bad input (`ConfigError`, `IncompatibleError`).
    """
    out = DryRun()
    resolve_device(config.device)
    model_name, model_params = component(config, "model")
    try:
        MODELS.get(model_name)(model_params).check()
    except MissingFileError as exc:
        out.missing.append(str(exc))
    data_name, data_params = component(config, "data")
    root = resolve_data_root(config.data.get("root"))
    source = DATASETS.get(data_name)(data_params, root, bool(config.data.get("download")))
    try:
        source.check_available()
    except DataNotFoundError as exc:
        out.missing.append(str(exc))
    if out.missing:
        return out

    exp = Experiment(prepare(config))
    plan, loop = exp.prepared.plan, exp.loop.plan
    out.lines.append(plan.describe())
    updates = loop.updates_per_phase
    evals = evaluations_per_phase(config, loop.batches_per_epoch)
    out.lines.append(
        f"updates: {loop.total_updates} ({' / '.join(map(str, updates))} per phase; "
        f"{config.train.epochs} epochs x {' / '.join(map(str, loop.batches_per_epoch))} batches "
        f"of {config.train.batch_size})"
    )
    refine = " at least" if exp.schedule.watches_results else ""
    out.lines.append(
        f"continual evaluations ({config.eval.schedule}):{refine} {sum(evals)} "
        f"({' / '.join(map(str, evals))} per phase), each on up to "
        f"{int(exp.evaluator.ends[-1])} samples"
    )
    dataset = exp.prepared.dataset
    data_bytes = split_bytes(dataset.train) + split_bytes(dataset.test)
    storage = resolve_storage(config, dataset, exp.device)
    params = [p for net in exp.strategy.networks() for p in net.parameters()]
    param_bytes = sum(p.numel() * p.element_size() for p in params)
    trainable = sum(p.numel() * p.element_size() for p in params if p.requires_grad)
    t = config.train
    slots = 2 if t.optimizer in ("adam", "adamw") else (1 if t.momentum > 0 else 0)
    subset = exp.evaluator.subset.x
    memories = [
        m for m in (exp.strategy.memory(), *(p.memory() for p in exp.plugins)) if m is not None
    ]
    out.lines += [
        f"memory on {exp.device} (fixed parts; activations come on top):",
        f"  data: {_mb(data_bytes)} ({storage} storage"
        + (", on the host" if storage == "host" else "")
        + ")",
        f"  model: {_mb(param_bytes)} parameters ({sum(p.numel() for p in params):,}), "
        f"gradients {_mb(trainable)}, optimizer state {_mb(slots * trainable)}",
        f"  evaluation subsets: {_mb(subset.numel() * subset.element_size())}",
        f"  replay memory: {sum(getattr(m, 'capacity', len(m)) for m in memories):,} slots "
        f"({_slot_contents(memories)}, not images)",
    ]
    if exp.device.type == "cuda":
        out.lines.append(
            f"  device total: {_mb(torch.cuda.get_device_properties(exp.device).total_memory)}"
        )
    return out


def _slot_contents(memories: list[Any]) -> str:
    """What a replay slot holds: indices and labels, plus e.g. DER's stored logits."""
    widths = {m.extra.shape[1] for m in memories if getattr(m, "extra", None) is not None}
    if not widths:
        return "sample indices and labels"
    return f"sample indices, labels and {max(widths)} stored values (e.g. logits) each"
