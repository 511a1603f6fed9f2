"""Run time of each native baseline against its Avalanche counterpart (``avl_*``) on the same work.

Usage::

    OMP_NUM_THREADS=1 python benchmarks/native_vs_avalanche.py [--repeats 3] [--epochs 1]
        [--data auto|fashion_mnist|synthetic] [--pairs lwf,ewc,...] [--max-wait 120] [--quick]

Setting: the stability-gap paper's Split-MNIST configuration run on Split-Fashion-MNIST
(``configs/stability_gap/split_fashion_mnist_er.yaml``: 5 tasks x 2 classes of 28x28 images,
MLP 784-400-400, SGD, batch 256) with ``--epochs`` per task, evaluated only at phase ends
(``eval.every=100000``), so the time measured is the method's training; on synthetic images of
the same shapes where the Fashion-MNIST files are missing. Each pair runs with the settings of
its class-incremental entries in ``configs/baselines/native_vs_avalanche_split_fmnist.yaml``, read
from the suite (the same memory sizes and weights on both sides; EWC's λ scaled as its header
explains). Native and Avalanche runs alternate, ``--repeats`` times, in fresh folders through
`run_job` (the whole `clbench run` path); the script prints the median training time
(``summary.json`` budget) and wall time of each and the ratio Avalanche / native. A run during
which other processes used more than 10% of the CPU is marked NOISY (see `machine_load.py`).
``--quick`` (a test runs it) uses 100 synthetic images per class, one repeat, no waiting.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import yaml
from machine_load import QUIET, ForeignLoad, say

from clbench.config import build_config
from clbench.engine.job import run_job

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "configs/stability_gap/split_fashion_mnist_er.yaml"
FASHION_ROOT = Path("/usr/share/datasets/fashion-mnist")
SYNTHETIC = [
    "data.name=synthetic",
    "data.num_classes=10",
    "data.image_size=28",
    "data.train_per_class=6000",
    "data.test_per_class=1000",
]
SUITE = ROOT / "configs/baselines/native_vs_avalanche_split_fmnist.yaml"


def suite_pairs(suite: Path = SUITE) -> dict[str, tuple[list[str], list[str]]]:
    """``{method: (native overrides, Avalanche overrides)}``: the suite's class-incremental
    entries, paired by their ``output.tags.method`` (the settings live once, in the suite)."""
    sides: dict[str, dict[str, list[str]]] = {}
    for entry in yaml.safe_load(suite.read_text())["entries"]:
        overrides = entry["overrides"]
        if any(o.startswith("scenario.") for o in overrides):  # task/domain-IL repeats
            continue
        tags = dict(o.removeprefix("output.tags.").split("=", 1) for o in overrides if "tags." in o)
        if tags["impl"] in ("native", "avalanche"):
            own = [o for o in overrides if not o.startswith("output.tags.")]
            sides.setdefault(tags["method"], {})[tags["impl"]] = own
    return {m: (s["native"], s["avalanche"]) for m, s in sides.items()}


# native overrides, Avalanche overrides: the same method with the same settings
PAIRS = suite_pairs()


def base_overrides(args: argparse.Namespace, root: Path) -> list[str]:
    fashion = (FASHION_ROOT / "train-images-idx3-ubyte.gz").is_file()
    use_fashion = args.data == "fashion_mnist" or (args.data == "auto" and fashion)
    data = [f"data.root={FASHION_ROOT}"] if use_fashion else SYNTHETIC
    if args.quick:
        data = [*SYNTHETIC, "data.train_per_class=100", "data.test_per_class=20"]
    return [
        *data,
        f"train.epochs={args.epochs}",
        "eval.every=100000",
        "threads=1",
        "output.plot=false",
        f"output.root={root}",
        "checkpoint.every=0",
        "checkpoint.at_phase_end=false",
    ]


def timed_run(overrides: list[str]) -> tuple[float, float, float | None]:
    """(training seconds, wall seconds, foreign CPU share) of one fresh run."""
    config = build_config(CONFIG, overrides)
    start = time.perf_counter()
    with ForeignLoad() as load:
        outcome = run_job(config, progress=False)
    wall = time.perf_counter() - start
    return float(outcome.summary["budget"]["train_time_s"]), wall, load.share


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--data", choices=("auto", "fashion_mnist", "synthetic"), default="auto")
    parser.add_argument("--pairs", default=",".join(PAIRS), help="comma-separated pair names")
    parser.add_argument("--max-wait", type=float, default=120.0, help="seconds to wait for quiet")
    parser.add_argument("--quick", action="store_true", help="tiny synthetic data, 1 repeat")
    args = parser.parse_args()
    if args.quick:
        args.repeats, args.max_wait = 1, 0.0
    names = [n.strip() for n in args.pairs.split(",") if n.strip()]
    unknown = sorted(set(names) - set(PAIRS))
    if unknown:
        parser.error(f"--pairs: unknown {unknown}; known: {', '.join(PAIRS)}")
    ForeignLoad.wait_budget_s = args.max_wait
    say(f"native vs Avalanche: {args.epochs} epoch(s) per task, {args.repeats} repeat(s)")
    say(f"{'pair':<11} {'native train s':>15} {'avl train s':>12} {'ratio':>7}   wall s (n/avl)")
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            native, avalanche = PAIRS[name]
            times: dict[str, list[tuple[float, float, float | None]]] = {"n": [], "a": []}
            for repeat in range(args.repeats):
                for side, extra in (("n", native), ("a", avalanche)):
                    root = Path(tmp) / f"{name}-{side}-{repeat}"
                    times[side].append(timed_run([*base_overrides(args, root), *extra]))
            train = {s: statistics.median(t[0] for t in times[s]) for s in times}
            wall = {s: statistics.median(t[1] for t in times[s]) for s in times}
            noisy = any(t[2] is not None and t[2] > QUIET for s in times for t in times[s])
            say(
                f"{name:<11} {train['n']:>15.2f} {train['a']:>12.2f} "
                f"{train['a'] / train['n']:>6.2f}x   {wall['n']:.1f} / {wall['a']:.1f}"
                + ("   NOISY" if noisy else "")
            )


if __name__ == "__main__":
    main()
