"""Batch iterator throughput vs a torch DataLoader over the same tensors.

Split-Fashion-MNIST-shaped data: 60,000 uint8 28x28 images, 10 classes, class-incremental 5x2,
so one phase holds 12,000 samples. Both sides produce the same thing per batch: normalised float
inputs and mapped targets for a shuffled batch of the phase. Measured in one run, interleaved.

    python benchmarks/data_path.py [--data synthetic|fashion_mnist] [--batch-sizes 32 256]

Batch 256 is the stability-gap paper's Split-MNIST batch size
(Mattdl/ContinualEvaluation@7ffa368:reproduce/configs/splitmnist_ER.yaml);
batch 32 shows the small-batch end, where fixed per-batch overhead matters most.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader, TensorDataset

from clbench.data.batches import PhaseBatches
from clbench.data.dataset import InMemoryDataset, Split
from clbench.data.stream import StreamData
from clbench.registry import SCENARIOS, validate_params

FASHION_ROOT = Path("/usr/share/datasets/fashion-mnist")


def load(kind: str) -> InMemoryDataset:
    if kind == "fashion_mnist" and FASHION_ROOT.is_dir():
        from clbench.registry import DATASETS

        source = DATASETS.get("fashion_mnist")
        return source(source.Config(), FASHION_ROOT).load()
    g = torch.Generator().manual_seed(0)  # same shapes and dtypes as Fashion-MNIST

    def split(n: int) -> Split:
        return Split(
            torch.randint(0, 256, (n, 1, 28, 28), dtype=torch.uint8, generator=g),
            torch.arange(n) % 10,
        )

    return InMemoryDataset(
        "fmnist_shaped",
        split(60000),
        split(10000),
        tuple(map(str, range(10))),
        (0.2860,),
        (0.3530,),
    )


def clbench_epoch(batches: PhaseBatches, data: StreamData) -> int:
    n = 0
    for index, task in batches.epoch():
        batch = data.make_batch(index, task)
        n += 1
    assert batch.x.dtype == torch.float32
    return n


def dataloader_epoch(loader: DataLoader, mean: float, std: float, label_table: torch.Tensor) -> int:
    n = 0
    for x, y in loader:
        x = (x.float().div_(255.0) - mean) / std
        y = label_table[y]
        n += 1
    return n


def measure(dataset: InMemoryDataset, batch_size: int, repeats: int) -> tuple[float, float, int]:
    """Median batches/s of (clbench, DataLoader) over one phase; interleaved repeats."""
    builder = SCENARIOS.get("class_incremental")
    config = validate_params(builder.Config, {"n_experiences": 5}, "scenario")
    plan = builder(config).build(dataset, 0)
    data = StreamData(dataset, plan, torch.device("cpu"))
    phase = plan.phases[0]
    batches = PhaseBatches(phase.parts, batch_size, torch.Generator().manual_seed(0))
    index = torch.as_tensor(phase.parts[0].indices)
    loader = DataLoader(
        TensorDataset(dataset.train.x[index], dataset.train.y[index]),
        batch_size=batch_size,
        shuffle=True,
        generator=torch.Generator().manual_seed(0),
    )
    label_table = data.label_table[0].clamp(min=0)
    ours, theirs = [], []
    for _ in range(repeats):  # interleaved so machine noise hits both alike
        start = time.perf_counter()
        n = clbench_epoch(batches, data)
        ours.append(n / (time.perf_counter() - start))
        start = time.perf_counter()
        n = dataloader_epoch(loader, dataset.mean[0], dataset.std[0], label_table)
        theirs.append(n / (time.perf_counter() - start))
    return statistics.median(ours), statistics.median(theirs), phase.size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="fashion_mnist", choices=["synthetic", "fashion_mnist"])
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[32, 256])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()

    dataset = load(args.data)
    print(
        f"data: {dataset.name} ({len(dataset.train)} train, one 2-class phase per epoch), "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
        f"medians of {args.repeats} interleaved epochs"
    )
    print(f"{'batch':>6} {'clbench b/s':>12} {'DataLoader b/s':>15} {'speed-up':>9}  target >= 5x")
    for batch_size in args.batch_sizes:
        ours, theirs, _ = measure(dataset, batch_size, args.repeats)
        ratio = ours / theirs
        verdict = "PASS" if ratio >= 5 else "FAIL"
        print(f"{batch_size:>6} {ours:>12.0f} {theirs:>15.0f} {ratio:>8.1f}x  {verdict}")


if __name__ == "__main__":
    main()
