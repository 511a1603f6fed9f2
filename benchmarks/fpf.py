"""FPF and k-FPF (Zhao et al., ICML 2023) vs naive and ER on Split-Fashion-MNIST, with costs.

Class-incremental Split-Fashion-MNIST (5 tasks x 2 classes, Debian's `dataset-fashion-mnist`;
scikit-learn's digits when it is absent), MLP 784-400-400 with BatchNorm, SGD lr 0.05 (momentum 0,
as Mammoth), batch 32, reservoir memory of 500. Strategies: naive, er, er+fpf (FPF on BN + head
after the last task), k-fpf-ce and k-fpf-kd (no per-step replay, FPF k times). FPF/k-FPF use the
clbench defaults (unverified placeholders: modules [bn, fc], 300 iterations, lr 0.05, batch 32,
k 10). Prints mean ± std over seeds of final accuracy, min-ACC, forgetting, training MACs split
into SGD and FPF parts, and wall time split the same way.

    OMP_NUM_THREADS=1 python benchmarks/fpf.py [--seeds 0 1 2] [--epochs 1] [--every 10]
        [--out results/benchmarks/fpf] [--force]

Scaled for a 2-core CPU: 1 epoch per task (the paper's Mammoth setting is 50 on CIFAR) and
continual evaluation every 10 updates on 500 test samples per seen task, so min-ACC is measured
at that resolution. One run takes 20-60 s with threads=1.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from _common import mean_std

from clbench.config import build_config
from clbench.engine.job import run_job

FASHION_ROOT = Path("/usr/share/datasets/fashion-mnist")

# naive and er run inside `fpf` with 0 iterations: identical training, measured by the same meter
STRATEGIES = {
    "naive": {"strategy.name": "fpf", "strategy.base": "{name: naive}", "strategy.iterations": 0},
    "er": {
        "strategy.name": "fpf",
        "strategy.base": "{name: er, buffer_size: 500}",
        "strategy.iterations": 0,
    },
    "er+fpf": {
        "strategy.name": "fpf",
        "strategy.base": "{name: er, buffer_size: 500}",
    },
    "k-fpf-ce": {"strategy.name": "k_fpf", "strategy.loss": "ce", "strategy.buffer_size": 500},
    "k-fpf-kd": {"strategy.name": "k_fpf", "strategy.loss": "kd", "strategy.buffer_size": 500},
}


def overrides(args: argparse.Namespace, seed: int, data: dict[str, str]) -> list[str]:
    base = {
        **data,
        "scenario.name": "class_incremental",
        "scenario.n_experiences": "5",
        "model.name": "mlp",
        "model.hidden_sizes": "[400, 400]",
        "model.batch_norm": "true",
        "train.epochs": str(args.epochs),
        "train.batch_size": "32",
        "train.optimizer": "sgd",
        "train.lr": "0.05",
        "train.momentum": "0.0",
        "eval.every": str(args.every),
        "eval.subset_size": "500",
        "threads": "1",
        "seed": str(seed),
        "output.root": args.out,
        "output.plot": "false",
    }
    return [f"{k}={v}" for k, v in base.items()]


def costs(summary: dict) -> dict[str, float]:
    """Training MACs (10^9) and seconds, split into the SGD and the FPF part."""
    macs, secs = (
        summary["strategy_report"]["train_macs"],
        summary["strategy_report"]["train_time_s"],
    )
    return {
        "sgd_gmacs": macs["sgd"] / 1e9,
        "fpf_gmacs": macs["fpf"] / 1e9,
        "sgd_s": secs["sgd"],
        "fpf_s": secs["fpf"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--every", type=int, default=10)
    parser.add_argument("--strategies", nargs="+", default=list(STRATEGIES))
    parser.add_argument("--out", default="results/benchmarks/fpf")
    parser.add_argument("--force", action="store_true", help="re-run finished runs")
    args = parser.parse_args()

    if FASHION_ROOT.is_dir():
        data, label = {"data.name": "fashion_mnist", "data.root": str(FASHION_ROOT)}, "fashion"
    else:
        print("Fashion-MNIST not found (apt-get install dataset-fashion-mnist); using digits")
        data, label = {"data.name": "digits"}, "digits"
    print(
        f"Split-{label} 5x2 class-IL, MLP 784-400-400+BN, SGD lr 0.05 batch 32, "
        f"{args.epochs} epoch(s)/task, memory 500, eval every {args.every} updates "
        f"(500 test samples/task), threads=1, seeds {args.seeds}"
    )
    rows = []
    start = time.perf_counter()
    for name in args.strategies:
        for seed in args.seeds:
            config = build_config(
                None,
                [*overrides(args, seed, data), *(f"{k}={v}" for k, v in STRATEGIES[name].items())],
            )
            outcome = run_job(config, progress=False, force=args.force)
            s = outcome.summary
            rows.append({"strategy": name, "seed": seed, "summary": s, **costs(s)})
            report = s["strategy_report"]
            extra = f" modules={report['fpf_modules']}" if report["train_macs"]["fpf"] else ""
            print(
                f"  {name:<9} seed {seed}: final {s['metrics']['final_acc']:.3f} "
                f"train {s['budget']['train_time_s']:.0f}s{extra}"
            )
    total = time.perf_counter() - start

    cols = ["final acc", "min-ACC", "forgetting", "GMACs SGD", "GMACs FPF", "s SGD", "s FPF"]
    print(f"\nmean ± std over seeds {args.seeds}")
    print(f"| strategy | {' | '.join(cols)} |")
    print("|" + "---|" * (len(cols) + 1))
    for name in args.strategies:
        sel = [r for r in rows if r["strategy"] == name]
        metric = [
            [r["summary"]["metrics"][k] for r in sel if r["summary"]["metrics"][k] is not None]
            for k in ("final_acc", "min_acc", "forgetting")
        ]
        cells = [mean_std(v) for v in metric]
        cells += [mean_std([r[k] for r in sel], "{:.1f}") for k in ("sgd_gmacs", "fpf_gmacs")]
        cells += [mean_std([r[k] for r in sel], "{:.1f}") for k in ("sgd_s", "fpf_s")]
        print(f"| {name} | {' | '.join(cells)} |")
    print(
        "\nMACs: Linear layers, forward + backward (weight grads of trainable layers, input grads "
        "after the first trainable one). naive and er run as fpf with 0 iterations. "
        f"Total wall time {total:.0f}s."
    )


if __name__ == "__main__":
    main()
