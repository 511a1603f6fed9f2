"""SLCA vs slow learner vs seq FT with a backbone pretrained offline (issue: SLCA on timm).

1. Pretrain timm ``resnet10t`` (28x28, grey repeated to RGB) supervised on Fashion-MNIST classes
   0-4 (`configs/slca/pretrain_fmnist04.yaml`, `clbench.engine.pretrain`); reused if the file
   exists.
2. Class-incremental Split-digits (scikit-learn 8x8 digits resized to 28 px on the device,
   5 tasks x 2 classes, class order drawn from the seed) from that backbone
   (`configs/slca/slca_digits.yaml`, official SLCA hyperparameters): ``seq_ft`` (backbone lr =
   head lr), slow learner (``slca`` with ``ca_epochs=0``: backbone lr 1/100) and ``slca``.
   Seeds 0, 1, 2; final accuracy and min-ACC (continual evaluation every 5 updates).

    OMP_NUM_THREADS=1 python benchmarks/slca.py [--seeds 0 1 2] [--out-dir results/slca_bench]

About 7 minutes on a shared 2-core CPU with threads=1 (pretraining ~3 min, 9 runs ~25 s each).
Paper claim checked qualitatively: SL beats seq FT, CA adds on top (Split CIFAR-100, ViT-B/16
IN-21k: SLCA 91.53 vs seq FT 41.77 last accuracy, from the official README figure and the +49.76
gain in the arXiv:2303.05118v4 abstract).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from clbench.config import build_config
from clbench.engine.pretrain import pretrain
from clbench.engine.runner import Experiment, prepare
from clbench.metrics import chance_levels, compute_metrics

ROOT = Path(__file__).resolve().parent.parent
PRETRAIN_CONFIG = ROOT / "configs" / "slca" / "pretrain_fmnist04.yaml"
CIL_CONFIG = ROOT / "configs" / "slca" / "slca_digits.yaml"
METHODS = {
    "seq_ft": ["strategy.name=seq_ft"],
    "slow_learner": ["strategy.name=slca", "strategy.ca_epochs=0"],
    "slca": ["strategy.name=slca"],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--out-dir", default=str(ROOT / "results" / "slca_bench"))
    parser.add_argument("--epochs", type=int, default=5, help="epochs per task")
    parser.add_argument("--pretrain-epochs", type=int, default=2)
    args = parser.parse_args()
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()

    backbone = out / "resnet10t_fmnist04.pth"
    if backbone.is_file():
        print(f"reusing {backbone}")
    else:
        cfg = build_config(PRETRAIN_CONFIG, [f"train.epochs={args.pretrain_epochs}"])
        info = pretrain(cfg, backbone)
        print(
            f"pretrained {backbone}: {info['updates']} updates, {info['train_s']:.0f} s, "
            f"Fashion-MNIST 0-4 test accuracy {info['source_test_acc']:.4f}"
        )

    rows = []
    for seed in args.seeds:
        for method, overrides in METHODS.items():
            cfg = build_config(
                CIL_CONFIG,
                [
                    *overrides,
                    f"model.pretrained={backbone}",
                    f"train.epochs={args.epochs}",
                    f"seed={seed}",
                    "threads=1",
                ],
            )
            t0 = time.perf_counter()
            exp = Experiment(prepare(cfg))
            exp.run()
            m = compute_metrics(exp.log.frame(), cfg.metrics, chance_levels(exp.prepared.plan))
            row = {
                "method": method,
                "seed": seed,
                "final_acc": m["final_acc"],
                "min_acc": m["min_acc"],
                "per_task_final_acc": m["per_task_final_acc"],
                "wall_s": time.perf_counter() - t0,
            }
            rows.append(row)
            print(
                f"seed {seed} {method:13s} final {row['final_acc']:.4f} "
                f"min-ACC {row['min_acc']:.4f} ({row['wall_s']:.0f} s)",
                flush=True,
            )

    print("\nmethod          final acc        min-ACC   (mean ± std over seeds)")
    summary = {}
    for method in METHODS:
        sel = [r for r in rows if r["method"] == method]
        stats = {}
        for key in ("final_acc", "min_acc"):
            vals = [r[key] for r in sel]
            std = statistics.stdev(vals) if len(vals) > 1 else 0.0
            stats[key] = (statistics.mean(vals), std)
        summary[method] = stats
        print(
            f"{method:13s} {stats['final_acc'][0]:.4f} ± {stats['final_acc'][1]:.4f}  "
            f"{stats['min_acc'][0]:.4f} ± {stats['min_acc'][1]:.4f}"
        )
    total = time.perf_counter() - start
    print(f"total wall time {total:.0f} s")
    (out / "results.json").write_text(
        json.dumps({"rows": rows, "summary": summary, "wall_s": total}, indent=2)
    )


if __name__ == "__main__":
    main()
