"""Helpers shared by tests of several areas: tiny datasets, fast run configs, small runs of any
strategy, temporary registrations and real-format data files. Fixtures are in conftest.py."""

from __future__ import annotations

import contextlib
import gzip
import struct
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch

from clbench.config import build_config
from clbench.data.dataset import InMemoryDataset, Split
from clbench.engine.runner import Experiment, prepare
from clbench.registry import Registry

C = TypeVar("C", bound=type)

REPO = Path(__file__).resolve().parents[1]  # the repository root


def make_image_dataset(
    classes: int = 4, train_per_class: int = 12, test_per_class: int = 6
) -> InMemoryDataset:
    """uint8 [N,1,4,4] images whose pixels encode (class, sample) so batches are checkable."""

    def split(per_class: int, offset: int) -> Split:
        y = torch.arange(classes).repeat_interleave(per_class)
        x = (
            (torch.arange(len(y)) + offset)
            .remainder(256)
            .to(torch.uint8)
            .view(-1, 1, 1, 1)
            .expand(-1, 1, 4, 4)
        )
        return Split(x.contiguous(), y)

    return InMemoryDataset(
        name="tiny",
        train=split(train_per_class, 0),
        test=split(test_per_class, 100),
        class_names=tuple(str(c) for c in range(classes)),
        mean=(0.0,),
        std=(1.0,),
    )


# digits as 8x8 images, two 2-class tasks, a small conv net (BatchNorm): what image recipes need
IMAGE_RUN: dict[str, Any] = {
    "data.name": "digits",
    "scenario.class_order": "[0,1,2,3]",
    "scenario.n_experiences": 2,
    "model.name": "slim_resnet18",
    "model.nf": 4,
    "train.epochs": 2,
    "eval.subset_size": 30,
    "threads": 1,
}


def fast_overrides(tmp_path: Any, **extra: Any) -> list[str]:
    """Overrides for a seconds-long run on synthetic data (4 tasks x 2 classes)."""
    base = {
        "data.name": "synthetic",
        "data.num_classes": 8,
        "data.dim": 16,
        "data.train_per_class": 60,
        "data.test_per_class": 30,
        "data.noise": 0.5,
        "scenario.name": "class_incremental",
        "scenario.n_experiences": 4,
        "model.hidden_sizes": "[32]",
        "train.epochs": 2,
        "train.batch_size": 16,
        "eval.subset_size": 40,
        "output.root": str(tmp_path),
        "output.plot": "false",
    }
    base.update({k: str(v) for k, v in extra.items()})
    return [f"{k}={v}" for k, v in base.items()]


def spy_observed_indices(exp: Experiment) -> list[torch.Tensor]:
    """The dataset indices of every batch ``exp``'s strategy observes from now on (a list the
    runs fill)."""
    seen: list[torch.Tensor] = []
    observe = exp.strategy.observe

    def spy(batch: Any) -> torch.Tensor:
        seen.append(batch.index.clone())
        return observe(batch)

    exp.strategy.observe = spy  # type: ignore[method-assign]
    return seen


def experiment(tmp_path: Any, run: bool = True, **extra: Any) -> Experiment:
    """The `fast_overrides` run with ``extra``, in process; run to the end unless ``run=False``."""
    exp = Experiment(prepare(build_config(None, fast_overrides(tmp_path, **extra))))
    if run:
        exp.run()
    return exp


# --------------------------------------------------------------------------- any strategy

# strategies that start from a pretrained backbone (SLCA needs one; seq_ft and linear_probe are
# its baselines): they run on 4 digits classes with a timm resnet18 instead of the synthetic MLP
PRETRAINED = frozenset({"slca", "seq_ft", "linear_probe"})
# settings a strategy declares, picked so each runs on the synthetic stream
SETTING = {"hyperinterval": "task_incremental"}
# the synthetic source's and the MLP's parameters, dropped where a strategy runs on digits
_SYNTHETIC_ONLY = (
    "data.num_classes",
    "data.dim",
    "data.train_per_class",
    "data.test_per_class",
    "data.noise",
    "model.hidden",
)


def strategy_overrides(
    tmp_path: Path,
    strategy: str,
    backbone: Path,
    plugins: Mapping[str, Mapping[str, Any]] | None = None,
    pretrained: Mapping[str, Any] | None = None,
    **extra: Any,
) -> list[str]:
    """Overrides of a small run of any registered ``strategy``, with ``plugins`` (name ->
    parameters; empty for the defaults) and ``extra`` settings. A strategy in `PRETRAINED` runs
    on digits (2 tasks) with the resnet18 saved at ``backbone`` and ``pretrained``'s settings."""
    settings: dict[str, Any] = {
        "strategy.name": strategy,
        "scenario.name": SETTING.get(strategy, "class_incremental"),
        "threads": 1,
    }
    for plugin, params in (plugins or {}).items():
        if params:
            settings |= {f"plugins.{plugin}.{k}": v for k, v in params.items()}
        else:
            settings[f"plugins.{plugin}"] = "{}"
    settings |= extra
    if strategy not in PRETRAINED:
        return fast_overrides(tmp_path, **settings)
    settings |= {
        "data.name": "digits",
        "scenario.class_order": "[0,1,2,3]",
        "scenario.n_experiences": 2,
        "model.name": "timm",
        "model.arch": "resnet18",
        "model.image_size": 16,
        "model.pretrained": backbone,
        "train.epochs": 1,
        "eval.subset_size": 30,
    }
    if strategy == "slca":
        settings |= {"strategy.ca_samples_per_class": 8, "strategy.ca_epochs": 1}
    settings |= pretrained or {}
    return [o for o in fast_overrides(tmp_path, **settings) if not o.startswith(_SYNTHETIC_ONLY)]


@contextlib.contextmanager
def registered(registry: Registry[Any], name: str, cls: C) -> Iterator[C]:
    """``cls`` registered in ``registry`` as ``name`` for the block, removed afterwards (with the
    ``registered_name`` the registry gave it), so no later test sees it."""
    assert name not in registry, f"{registry.kind} {name!r} is registered already"
    had_name = "registered_name" in vars(cls)
    registry.register(name)(cls)
    try:
        yield cls
    finally:
        registry.unregister(name)
        if not had_name:
            delattr(cls, "registered_name")


# --------------------------------------------------------------------------- real-format files


def write_idx(path: Path, array: np.ndarray) -> None:
    """An unsigned-byte idx file (magic 0x0000080<ndim>, big-endian dims); gzipped if *.gz."""
    header = struct.pack(">I", 0x800 + array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    raw = header + array.astype(np.uint8).tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(raw) if path.suffix == ".gz" else raw)
