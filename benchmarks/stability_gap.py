"""The stability gap on real data: Split-Fashion-MNIST, ER vs fine-tuning, per-update evaluation.

Runs configs/stability_gap/split_fashion_mnist_er.yaml (the stability-gap paper's Split-MNIST ER
setting on Fashion-MNIST from Debian's `dataset-fashion-mnist`; digits when it is absent) for ER
and naive fine-tuning and prints, per task boundary, how far the old tasks dip right after the
switch and how long they take to recover, next to what evaluating only at task boundaries shows.

    python benchmarks/stability_gap.py [--seeds 0 1 2] [--epochs 10] [--out results/benchmarks]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd
from _common import mean_std

from clbench.config import build_config
from clbench.engine.job import run_job

FASHION_ROOT = Path("/usr/share/datasets/fashion-mnist")
CONFIGS = Path(__file__).resolve().parent.parent / "configs" / "stability_gap"


def boundary_only_min_acc(records: pd.DataFrame) -> float | None:
    """min-ACC as evaluation at task boundaries alone would report it (full test sets)."""
    full = records[records.kind == "full"]
    old = full[full.task < full.current_task]
    if old.empty:
        return None
    minima = (old.correct / old.n).groupby(old.task).min()
    return float(minima.mean())


def fmt(x: float | None) -> str:
    return "  null" if x is None else f"{x:6.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--out", default="results/benchmarks/stability_gap")
    args = parser.parse_args()

    if FASHION_ROOT.is_dir():
        config_path, data = CONFIGS / "split_fashion_mnist_er.yaml", [f"data.root={FASHION_ROOT}"]
    else:
        print("Fashion-MNIST not found (apt-get install dataset-fashion-mnist); using digits")
        config_path, data = CONFIGS / "split_digits_er.yaml", []
    rows = []
    for strategy in ("er", "naive"):
        for seed in args.seeds:
            overrides = [
                *data,
                f"strategy.name={strategy}",
                f"seed={seed}",
                f"train.epochs={args.epochs}",
                f"output.root={args.out}",
            ]
            outcome = run_job(build_config(config_path, overrides), progress=False)
            records = pd.read_parquet(outcome.path / "records.parquet")
            m = outcome.summary["metrics"]
            rows.append(
                {
                    "strategy": strategy,
                    "seed": seed,
                    "metrics": m,
                    "path": outcome.path,
                    "boundary_min_acc": boundary_only_min_acc(records),
                    "time": outcome.summary["budget"],
                }
            )
            if strategy == "er" and seed == args.seeds[0]:
                print(f"\nER seed {seed}: gaps of old tasks after each boundary ({outcome.path})")
                print("task  phase  acc@boundary  min after  depth  min@step  recovery(updates)")
                for g in m["gaps"]:
                    rec = "not recovered" if g["recovery_time"] is None else g["recovery_time"]
                    print(
                        f"{g['task']:>4} {g['phase']:>6} {g['reference']:>13.3f} "
                        f"{g['minimum']:>10.3f} {g['depth']:>6.3f} {g['min_step']:>9} {rec:>10}"
                    )

    print(f"\nmean ± std over seeds {args.seeds} ({config_path.name}, {args.epochs} epochs/task)")
    keys = [
        "final_acc",
        "forgetting",
        "min_acc",
        "wc_acc",
        "wf_10",
        "gap_depth_mean",
        "recovery_time_mean",
    ]
    print(f"{'strategy':<8} " + " ".join(f"{k:>18}" for k in [*keys, "boundary-only min"]))
    for strategy in ("er", "naive"):
        sel = [r for r in rows if r["strategy"] == strategy]
        cells = []
        for key in keys:
            vals = [r["metrics"][key] for r in sel if r["metrics"][key] is not None]
            cells.append(mean_std(vals))
        cells.append(
            mean_std([r["boundary_min_acc"] for r in sel if r["boundary_min_acc"] is not None])
        )
        print(f"{strategy:<8} " + " ".join(f"{c:>18}" for c in cells))
    t = rows[0]["time"]
    print(
        f"\none run: {t['updates']} updates, train {t['train_time_s']:.0f}s, "
        f"eval {t['eval_time_s']:.0f}s (every update, all seen tasks)"
    )


if __name__ == "__main__":
    main()
