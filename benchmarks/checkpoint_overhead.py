"""Cost of checkpointing: a run checkpointing every 100 updates (and at phase ends) vs none.

Usage::

    OMP_NUM_THREADS=1 python benchmarks/checkpoint_overhead.py [--epochs 2] [--repeats 3]
        [--eval-every 1] [--data auto|fashion_mnist|synthetic]

Setting: the stability-gap paper's Split-MNIST ER configuration
(``configs/stability_gap/split_fashion_mnist_er.yaml``: 5 tasks x 2 classes of 28x28 images, MLP
784-400-400, batch 256 + 256 replayed from a 2000-slot class-balanced memory, evaluation of every
seen task after every update) with ``--epochs`` per task, on the Debian Fashion-MNIST files when
present, else synthetic images of the same shapes. Both variants run through `run_job` (the
whole `clbench run` path, run folder included) into fresh folders, interleaved, ``--repeats``
times; the script prints the median wall times, the ratio (target below 1.1x) and the
checkpoint size and write time. ``--eval-every 1000`` shows the harsher ratio against training
alone. Single-threaded (threads=1) so a second process on the 2 shared cores does not distort it.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from clbench.config import build_config
from clbench.engine.job import run_job
from clbench.engine.run_dir import CHECKPOINT_FILE

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "configs/stability_gap/split_fashion_mnist_er.yaml"
FASHION_ROOT = Path("/usr/share/datasets/fashion-mnist")
SYNTHETIC_SPLIT_MNIST = [
    "data.name=synthetic",
    "data.num_classes=10",
    "data.image_size=28",
    "data.train_per_class=6000",
    "data.test_per_class=1000",
]


def overrides(args: argparse.Namespace, root: Path, every: int) -> list[str]:
    data = (
        [f"data.root={FASHION_ROOT}"]
        if args.data == "fashion_mnist"
        or (args.data == "auto" and (FASHION_ROOT / "train-images-idx3-ubyte.gz").is_file())
        else SYNTHETIC_SPLIT_MNIST
    )
    return [
        *data,
        f"train.epochs={args.epochs}",
        f"eval.every={args.eval_every}",
        "threads=1",
        "output.plot=false",
        f"output.root={root}",
        f"checkpoint.every={every}",
        f"checkpoint.at_phase_end={'true' if every else 'false'}",
        "checkpoint.keep=true",
    ]


def timed_run(args: argparse.Namespace, every: int) -> tuple[float, float, int]:
    with tempfile.TemporaryDirectory() as tmp:
        config = build_config(CONFIG, overrides(args, Path(tmp), every))
        start = time.perf_counter()
        outcome = run_job(config, progress=False)
        wall = time.perf_counter() - start
        ckpt = outcome.path / CHECKPOINT_FILE
        size = ckpt.stat().st_size if ckpt.is_file() else 0
        return wall, outcome.summary["budget"]["checkpoint_time_s"], size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--eval-every", type=int, default=1)
    parser.add_argument("--every", type=int, default=100, help="checkpoint interval (updates)")
    parser.add_argument("--data", choices=["auto", "fashion_mnist", "synthetic"], default="auto")
    args = parser.parse_args()

    timed_run(args, 0)  # warm-up: data loading caches, allocator
    plain, checkpointed, ckpt_time, size = [], [], [], 0
    for r in range(args.repeats):
        order = [0, args.every] if r % 2 == 0 else [args.every, 0]
        for every in order:
            wall, spent, nbytes = timed_run(args, every)
            if every:
                checkpointed.append(wall)
                ckpt_time.append(spent)
                size = nbytes
            else:
                plain.append(wall)
        print(f"repeat {r}: none {plain[-1]:.2f} s, every {args.every}: {checkpointed[-1]:.2f} s")
    base, with_ckpt = statistics.median(plain), statistics.median(checkpointed)
    print(
        f"\nmedian wall time: no checkpoints {base:.2f} s, checkpoint every {args.every} updates "
        f"and at phase ends {with_ckpt:.2f} s"
    )
    print(f"checkpoint overhead ratio: {with_ckpt / base:.3f}x (target < 1.1x)")
    print(
        f"time spent writing checkpoints: {statistics.median(ckpt_time):.2f} s per run; "
        f"checkpoint size {size / 1e6:.1f} MB"
    )


if __name__ == "__main__":
    main()
