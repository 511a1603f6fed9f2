"""View-Batch Model on Split-Fashion-MNIST: base vs base+VBM for ER and naive, class-IL and task-IL.

Kang et al., CVPR 2025 (arXiv:2503.18371). Paper reference (Table 1, S-CIFAR-10, ResNet-18, 50
epochs, buffer 200, class-IL / task-IL): ER 50.27 / 91.66 -> VBM-ER 52.56 / 93.58. This is a
shortened CPU setting: Split-Fashion-MNIST (Debian ``dataset-fashion-mnist``; digits when absent) 5
tasks x 2 classes in the order 0..9, MLP 784-400-400, SGD lr 0.1 momentum 0 (the Mammoth ER best
args, ``utils/best_args.py`` of hankyul2/ViewBatchModel@ed83f71), batch 32, 4 epochs per task (one
V-cycle at V = 4, so VBM sees every sample once, as 4 views, where the base sees it 4 times), ER
with a 200-slot reservoir and replay batch 32, VBM defaults (V 4, light strong views, KL weight 1)
with the KL term on from epoch 0 (the code's 6/50 warm-up scaled to 4 epochs rounds to 0).
Evaluation every 100 updates on 200 test samples per seen task (min-ACC), full test sets at task
boundaries.

    OMP_NUM_THREADS=1 python benchmarks/view_batch.py [--seeds 0 1 2] [--epochs 4]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from _common import mean_std

from clbench.config import build_config
from clbench.engine.job import run_job

FASHION_ROOT = Path("/usr/share/datasets/fashion-mnist")
SETTINGS = {"class-IL": "class_incremental", "task-IL": "task_incremental"}
KEYS = ("final_acc", "min_acc", "forgetting")


def overrides(base: str, vbm: bool, setting: str, seed: int, args: argparse.Namespace) -> list[str]:
    if FASHION_ROOT.is_dir():
        data = ["data.name=fashion_mnist", f"data.root={FASHION_ROOT}"]
    else:
        data = ["data.name=digits"]
    strategy = (
        [
            "strategy.name=view_batch",
            f"strategy.base.name={base}",
            f"strategy.views={args.views}",
            f"strategy.ssl_start_epoch={args.ssl_start_epoch}",
        ]
        if vbm
        else [f"strategy.name={base}"]
    )
    if base == "er":
        key = "strategy.base" if vbm else "strategy"
        strategy += [f"{key}.buffer_size=200"]
    return [
        *data,
        f"scenario.name={SETTINGS[setting]}",
        "scenario.n_experiences=5",
        "scenario.shuffle_classes=false",
        "model.name=mlp",
        "model.hidden_sizes=[400,400]",
        f"train.epochs={args.epochs}",
        "train.batch_size=32",
        "train.lr=0.1",
        "train.momentum=0",
        "eval.every=100",
        "eval.subset_size=200",
        "threads=1",
        f"seed={seed}",
        f"output.root={args.out}",
        "output.plot=false",
        *strategy,
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--views", type=int, default=4)
    parser.add_argument("--ssl-start-epoch", type=int, default=0)
    parser.add_argument("--out", default="results/benchmarks/view_batch")
    args = parser.parse_args()
    data = "Split-Fashion-MNIST" if FASHION_ROOT.is_dir() else "Split-digits (Fashion-MNIST absent)"
    print(
        f"{data}, 5x2, MLP 784-400-400, SGD lr 0.1, batch 32, {args.epochs} epochs/task, "
        f"ER buffer 200, V={args.views}, KL from epoch {args.ssl_start_epoch}, seeds {args.seeds}"
    )
    start = time.perf_counter()
    results: dict[tuple[str, str, str], list[dict]] = {}
    updates: dict[str, int] = {}
    for base in ("er", "naive"):
        for vbm in (False, True):
            name = f"VBM-{base}" if vbm else base
            for setting in SETTINGS:
                for seed in args.seeds:
                    config = build_config(None, overrides(base, vbm, setting, seed, args))
                    outcome = run_job(config, progress=False)
                    m = outcome.summary["metrics"]
                    results.setdefault((base, name, setting), []).append(m)
                    updates[name] = outcome.summary["budget"]["updates"]
                    print(
                        f"  {name:<10} {setting:<8} seed {seed}: final {m['final_acc']:.3f} "
                        f"min-ACC {m['min_acc']:.3f} forgetting {m['forgetting']:.3f}",
                        flush=True,
                    )
    print(f"\nmean ± std over {len(args.seeds)} seeds (accuracy in %, final = after the last task)")
    head = " ".join(f"{s + ' ' + k:>22}" for s in SETTINGS for k in ("final", "min-ACC", "forget"))
    print(f"{'method':<10} {'updates':>7} {head}")
    for base in ("er", "naive"):
        for name in (base, f"VBM-{base}"):
            cells = []
            for setting in SETTINGS:
                runs = results[(base, name, setting)]
                for key in KEYS:
                    cells.append(
                        mean_std([100 * r[key] for r in runs if r[key] is not None], "{:.2f}")
                    )
            print(f"{name:<10} {updates[name]:>7} " + " ".join(f"{c:>22}" for c in cells))
    print(f"\ntotal time {time.perf_counter() - start:.0f}s")


if __name__ == "__main__":
    main()
