"""HyperInterval on task-incremental Split-Fashion-MNIST (digits when it is absent), 3 seeds.

A reduced CPU configuration: target MLP 784-100-100-2 with full interval propagation, hypernetwork
[50, 50], embedding 24, ε = 1 (warm-up over the first half of each task), κ schedule as the official
code (gmum/HyperInterval@d42305d), β = 0.01, Adam 1e-3, batch 128. Fewer iterations than the paper
(--epochs per task; 1000 iterations ≈ 10.7 epochs). Continual evaluation every --eval-every updates
on --subset test samples per seen task. Prints the accuracy of every task at the end, forgetting,
min-ACC and the universal embedding's accuracy. `--beta 0` is the ablation (forgetting of the first
tasks).

Switches: `--variant nested` (cos-map centres of `train_nested_scenario.py`; ε and β default to the
official nested Split MNIST values 10 and 0.001), `--target cnn` (conv 16-32 + FC 100, bounds by
`--cnn-bounds`: the official relaxed three passes, not a sound bound, or exact IBP), `--selection`
(the strategy's `selection` option).

    OMP_NUM_THREADS=1 python benchmarks/hyperinterval.py [--seeds 0 1 2] [--epochs 5]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import pandas as pd
from _common import mean_std

from clbench.config import build_config
from clbench.engine.job import run_job

FASHION_ROOT = Path("/usr/share/datasets/fashion-mnist")


def final_accuracies(records: pd.DataFrame) -> list[float]:
    """Per-task accuracy on the full test sets after the last phase."""
    full = records[records.kind == "full"]
    last = full[full.step == full.step.max()].sort_values("task")
    return [float(a) for a in last.correct / last.n]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--variant", choices=["standard", "nested"], default="standard")
    parser.add_argument("--target", choices=["mlp", "cnn"], default="mlp")
    parser.add_argument("--cnn-bounds", choices=["relaxed", "ibp"], default="relaxed")
    parser.add_argument("--selection", choices=["last", "official", "after_warmup"], default="last")
    parser.add_argument("--eps", type=float, help="default: 1.0 standard, 10.0 nested (official)")
    parser.add_argument(
        "--beta", type=float, help="default: 0.01 standard, 0.001 nested (official)"
    )
    parser.add_argument("--eval-every", type=int, default=100)
    parser.add_argument("--subset", type=int, default=500)
    parser.add_argument("--out", default="results/benchmarks/hyperinterval")
    args = parser.parse_args()
    nested = args.variant == "nested"
    if args.eps is None:
        args.eps = 10.0 if nested else 1.0
    if args.beta is None:
        args.beta = 0.001 if nested else 0.01

    if FASHION_ROOT.is_dir():
        data = ["data.name=fashion_mnist", f"data.root={FASHION_ROOT}"]
    else:
        print("Fashion-MNIST not found (apt-get install dataset-fashion-mnist); using digits")
        data = ["data.name=digits"]
    common = [
        *data,
        "scenario.name=task_incremental",
        "scenario.n_experiences=5",
        "scenario.shuffle_classes=false",
        "model.name=mlp",
        "model.hidden_sizes=[8]",  # built by clbench but unused by HyperInterval
        "strategy.name=hyperinterval",
        "strategy.embedding_dim=24",
        "strategy.hnet_hidden=[50,50]",
        "strategy.target_hidden=[100,100]",
        f"strategy.variant={args.variant}",
        f"strategy.target={args.target}",
        "strategy.cnn_channels=[16,32]",
        "strategy.cnn_fc_hidden=[100]",
        f"strategy.cnn_bounds={args.cnn_bounds}",
        f"strategy.selection={args.selection}",
        f"strategy.eps={args.eps}",
        f"strategy.beta={args.beta}",
        "strategy.lr=0.001",
        f"train.epochs={args.epochs}",
        "train.batch_size=128",
        f"eval.every={args.eval_every}",
        f"eval.subset_size={args.subset}",
        "threads=1",
        f"output.root={args.out}",
        "output.plot=false",
    ]
    print("setting: " + " ".join(common))
    rows = []
    for seed in args.seeds:
        start = time.perf_counter()
        outcome = run_job(build_config(None, [*common, f"seed={seed}"]), progress=False)
        records = pd.read_parquet(outcome.path / "records.parquet")
        m = outcome.summary["metrics"]
        uni = outcome.summary["strategy_report"]["universal"]
        row = {
            "seed": seed,
            "acc": final_accuracies(records),
            "final_acc": m["final_acc"],
            "forgetting": m["forgetting"],
            "min_acc": m["min_acc"],
            "universal": uni["mean_acc"],
            "universal_per_task": uni["per_task_acc"],
            "seconds": time.perf_counter() - start,
            "updates": outcome.summary["budget"]["updates"],
        }
        rows.append(row)
        print(
            f"seed {seed}: per-task acc {_fmt(row['acc'])} | final {row['final_acc']:.4f} "
            f"forgetting {row['forgetting']:.4f} min-ACC {row['min_acc']:.4f} | universal "
            f"{_fmt(row['universal_per_task'])} mean {row['universal']:.4f} | "
            f"{row['updates']} updates, {row['seconds']:.0f}s ({outcome.path})",
            flush=True,
        )
    print(
        f"\nmean ± std over seeds {args.seeds} ({args.variant}, {args.target}, eps={args.eps}, "
        f"beta={args.beta}, {args.epochs} epochs/task)"
    )
    for key in ("final_acc", "forgetting", "min_acc", "universal"):
        print(f"{key:<12} {mean_std([r[key] for r in rows if r[key] is not None], '{:.4f}')}")
    per_task = [statistics.mean(r["acc"][i] for r in rows) for i in range(len(rows[0]["acc"]))]
    print(f"{'per-task':<12} {_fmt(per_task)}")
    print(f"total {sum(r['seconds'] for r in rows):.0f}s")


def _fmt(values: list[float]) -> str:
    return " ".join(f"{v:.4f}" for v in values)


if __name__ == "__main__":
    main()
