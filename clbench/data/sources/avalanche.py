"""`avalanche`: the data of an Avalanche benchmark (classic class name + kwargs), in memory.

Paired with the `avalanche` scenario (``scenarios/avalanche.py``), which turns the stream
structure recorded here back into a plan. Every experience's dataset is read once through its
*eval* transform group (deterministic: no augmentation) and stored in experience order; each
sample's experience id is kept in ``Split.domain`` and each experience's task label in
``domain_names`` (``"exp<i>:task<t>"``). Images are stored as uint8 with the per-channel affine
map that reproduces Avalanche's normalised tensors exactly (when the values are ``a·u + b`` for
integer pixels ``u`` in 0..255 spanning the full range); otherwise as float32 as Avalanche
produced them (mean 0, std 1: no further normalisation).

Avalanche is imported only when data is loaded. clbench requires ``kwargs.dataset_root`` (an
existing folder) and never lets a benchmark fall back to ``~/.avalanche``.

MNIST-format benchmarks (SplitMNIST, PermutedMNIST, RotatedMNIST, SplitFMNIST) never download:
their four idx files are found and checked by clbench's own `mnist` / `fashion_mnist` sources
(plain or gzipped, flat as in Debian's ``dataset-fashion-mnist`` or in torchvision's
``<Name>/raw``), and missing files are refused before any work, naming the files and the fix.
Avalanche's factories read through torchvision, which downloads unless it finds the files
uncompressed in ``<dataset_root>/<Name>/raw``. When the files are laid out otherwise, clbench
stages that layout once in its cache (``$CLBENCH_CACHE``, default ``~/.cache/clbench``):
decompressed copies of ``.gz`` files, links to plain ones. The factory then reads the staged
folder; class order, seeds, transforms and permutations are all Avalanche's own code. Other
benchmarks use Avalanche's loaders, which download into ``dataset_root`` when files are missing.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

from clbench.data.dataset import InMemoryDataset, Split
from clbench.data.source import DataSource
from clbench.data.sources.specs.avalanche import AvalancheDataSpec
from clbench.errors import ConfigError, DataNotFoundError
from clbench.registry import DATASETS

# benchmark -> the clbench source that finds and checks its idx files
IDX_BENCHMARKS: dict[str, str] = {
    "SplitMNIST": "mnist",
    "PermutedMNIST": "mnist",
    "RotatedMNIST": "mnist",
    "SplitFMNIST": "fashion_mnist",
}


@DATASETS.register("avalanche")
class AvalancheData(AvalancheDataSpec, DataSource):
    """An Avalanche classic benchmark's train and test streams, materialised in memory."""

    def check_available(self) -> None:
        root = self.config.kwargs.get("dataset_root")
        if root is None:
            raise ConfigError(
                "data.kwargs.dataset_root", None, "a local folder holding the benchmark's files"
            )
        if not Path(root).expanduser().is_dir():
            raise DataNotFoundError(f"avalanche: dataset_root {root} is not a folder")
        source = self._idx_source()
        if source is not None and source._find() is None:
            raise DataNotFoundError(
                f"avalanche {self.config.benchmark}: its {source.name} files are not in "
                f"dataset_root; expected {source._expected()}. Nothing is downloaded: put the "
                "four idx files (plain or .gz) there"
                + (
                    "; on Debian: apt-get install dataset-fashion-mnist and "
                    "dataset_root: /usr/share/datasets/fashion-mnist"
                    if source.name == "fashion_mnist"
                    else ""
                )
            )

    def _idx_source(self) -> Any:
        """clbench's source for the benchmark's idx files (None: not an MNIST-format one)."""
        name = IDX_BENCHMARKS.get(self.config.benchmark)
        if name is None:
            return None
        cls = DATASETS.get(name)
        root = Path(self.config.kwargs["dataset_root"]).expanduser()
        return cls(cls.Config(), root, download=False)

    def load(self) -> InMemoryDataset:
        import avalanche.benchmarks.classic as classic

        cfg = self.config
        factory = getattr(classic, cfg.benchmark, None)
        if factory is None or not callable(factory):
            names = [n for n in dir(classic) if n[:1].isupper()]
            raise ConfigError("data.benchmark", cfg.benchmark, names)
        kwargs = dict(cfg.kwargs)
        kwargs["dataset_root"] = str(Path(kwargs["dataset_root"]).expanduser())
        idx_root = self._torchvision_layout()
        if idx_root is not None:
            kwargs["dataset_root"] = str(idx_root)
        try:
            benchmark = factory(**kwargs)
        except (TypeError, ValueError) as exc:  # bad arguments: one line, not a traceback
            allowed = f"arguments {cfg.benchmark} accepts ({exc})"
            raise ConfigError("data.kwargs", cfg.kwargs, allowed) from None
        return benchmark_to_dataset(benchmark, name=cfg.benchmark, max_gb=cfg.max_gb)

    def _torchvision_layout(self) -> Path | None:
        """A dataset_root where torchvision finds this benchmark's idx files without downloading
        (None: not an MNIST-format benchmark). The files are parsed first, so corrupt ones are
        refused by clbench's reader with the file named."""
        source = self._idx_source()
        if source is None:
            return None
        files = source._locate()
        source._read(files)  # header, size and label checks
        raw = Path(source.root) / source.folder / "raw"
        if all(path == raw / name for name, path in files.items()):
            return Path(source.root)  # already torchvision's layout, uncompressed
        key = hashlib.sha256(
            "\n".join(
                f"{p.resolve()}:{p.stat().st_size}:{p.stat().st_mtime_ns}" for p in files.values()
            ).encode()
        ).hexdigest()[:16]
        staged = cache_root() / "avalanche" / f"{source.folder}-{key}"
        staged_raw = staged / source.folder / "raw"
        if not (staged / ".complete").is_file():
            staged_raw.mkdir(parents=True, exist_ok=True)
            for name, path in files.items():
                _stage(path, staged_raw / name)
            (staged / ".complete").touch()
        return staged


def cache_root() -> Path:
    """Where clbench keeps files it derives from the user's data: ``$CLBENCH_CACHE`` or
    ``~/.cache/clbench``."""
    return Path(os.environ.get("CLBENCH_CACHE") or Path.home() / ".cache" / "clbench")


def _stage(source: Path, target: Path) -> None:
    """``target`` as an uncompressed copy of a ``.gz`` file, or a link to a plain one; written
    under a temporary name and renamed, so a killed run never leaves half a file."""
    partial = target.with_name(f".{target.name}.partial")
    if source.suffix == ".gz":
        with gzip.open(source, "rb") as src, open(partial, "wb") as dst:
            shutil.copyfileobj(src, dst)
    else:
        partial.unlink(missing_ok=True)
        partial.symlink_to(source.resolve())
    os.replace(partial, target)


def benchmark_to_dataset(
    benchmark: Any, name: str = "avalanche", max_gb: float = 8.0
) -> InMemoryDataset:
    """Materialise ``benchmark.train_stream`` / ``test_stream`` (see the module docstring)."""
    train, task_labels = _stream(benchmark.train_stream, max_gb)
    test, _ = _stream(benchmark.test_stream, max_gb)
    x_train, x_test, mean, std = _as_uint8(train[0], test[0])
    num_classes = int(max(train[1].max(), test[1].max())) + 1
    return InMemoryDataset(
        name=name,
        train=Split(x_train, train[1], train[2]),
        test=Split(x_test, test[1], test[2]),
        class_names=tuple(str(c) for c in range(num_classes)),
        mean=mean,
        std=std,
        domain_names=tuple(f"exp{i}:task{t}" for i, t in enumerate(task_labels)),
    )


def _stream(stream: Any, max_gb: float) -> tuple[tuple[torch.Tensor, ...], list[int]]:
    xs, ys, exps, task_labels = [], [], [], []
    total = 0.0
    for i, exp in enumerate(stream):
        labels = _task_labels(exp)
        if len(labels) != 1:
            raise ConfigError("data.benchmark", stream.name, "one task label per experience")
        task_labels.append(int(labels[0]))
        dataset = exp.dataset.eval()
        loader = torch.utils.data.DataLoader(
            dataset, batch_size=1024, shuffle=False, collate_fn=dataset.collate_fn
        )
        for mb in loader:
            x, y = mb[0], mb[1]
            total += x.numel() * 4 / 1e9
            if total > max_gb:
                raise ConfigError("data.max_gb", max_gb, "a limit above the benchmark's size")
            xs.append(x.float())
            ys.append(y.long())
            exps.append(torch.full((len(y),), i, dtype=torch.long))
    return (torch.cat(xs), torch.cat(ys), torch.cat(exps)), task_labels


def _task_labels(exp: Any) -> list[int]:
    try:
        return sorted(set(exp.task_labels))
    except AttributeError:  # plain DatasetExperience (benchmark_from_datasets)
        attr = getattr(exp.dataset, "targets_task_labels", None)
        return sorted(set(attr.uniques)) if attr is not None else [0]


def _as_uint8(
    train: torch.Tensor, test: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, tuple[float, ...], tuple[float, ...]]:
    """uint8 images + (mean, std) reproducing the float inputs, else the floats unchanged."""
    if train.dim() == 4:
        lo = train.amin(dim=(0, 2, 3)).double()
        hi = train.amax(dim=(0, 2, 3)).double()
        if bool((hi > lo).all()):
            scale = (255.0 / (hi - lo)).view(1, -1, 1, 1)
            shift = lo.view(1, -1, 1, 1)
            converted = []
            for x in (train, test):
                u = ((x.double() - shift) * scale).round()
                back = u / scale + shift
                if u.min() < 0 or u.max() > 255 or (back - x.double()).abs().max() > 1e-4:
                    break
                converted.append(u.to(torch.uint8))
            else:
                # (u/255 - mean)/std = lo + (hi - lo)·u/255  <=>  std = 1/(hi-lo), mean = -lo·std
                std = 1.0 / (hi - lo)
                mean = -lo * std
                return (converted[0], converted[1], tuple(mean.tolist()), tuple(std.tolist()))
    if train.dim() == 4:
        return train, test, (0.0,) * train.shape[1], (1.0,) * train.shape[1]
    return train, test, (0.0,), (1.0,)


def experience_ids(split: Split) -> np.ndarray:
    """Per-sample experience ids recorded by `benchmark_to_dataset`."""
    if split.domain is None:
        raise ConfigError(
            "data.name", "?", "the `avalanche` data source (scenario `avalanche` reads its stream)"
        )
    return split.domain.numpy()
