"""Rehearsal environments at one budget: fine-tuning vs uniform vs exponential vs power law.

Gandhi et al. (arXiv 2401.10393) compare rehearsal environments on permuted MNIST; this runs
configs/power_law/v1_permuted_fashion_mnist_budget.yaml (permuted Fashion-MNIST from Debian's
`dataset-fashion-mnist`; permuted digits when it is absent) with four lag kernels at the same
rehearsal budget (each phase: the new task's samples + r·n_new rehearsal samples of the earlier
tasks, drawn fresh), the same seeds and per-update continual evaluation, and prints final
accuracy, min-ACC and forgetting per environment (mean ± std over seeds).

    python benchmarks/power_law.py [--seeds 0 1 2] [--threads 1] [--out DIR]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from _common import mean_std

from clbench.config import build_config
from clbench.engine.job import run_job
from clbench.engine.runner import prepare

FASHION_ROOT = Path("/usr/share/datasets/fashion-mnist")
CONFIGS = Path(__file__).resolve().parent.parent / "configs" / "power_law"
# Environment -> scenario overrides; every one keeps the config's budget normalisation and r.
ENVIRONMENTS = {
    "fine-tuning": ["scenario.kernel=none"],
    "uniform": ["scenario.kernel=uniform"],
    "exponential": ["scenario.kernel=exponential", "scenario.beta=1"],
    "power-law": ["scenario.kernel=power", "scenario.d=5.6", "scenario.tau=10"],
}
METRICS = ("final_acc", "min_acc", "forgetting")


def rehearsal_per_phase(counts: np.ndarray) -> float:
    """Mean rehearsal samples per phase after the first (off-diagonal of N[phase, task])."""
    off_diagonal = counts.sum(axis=1) - np.diag(counts)
    return float(off_diagonal[1:].mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch intra-op threads (default 1: on 2 shared cores, 2 threads under any other "
        "load slow small-MLP ops down many-fold)",
    )
    parser.add_argument("--out", default="results/benchmarks/power_law")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    config_path = CONFIGS / "v1_permuted_fashion_mnist_budget.yaml"
    data = [f"data.root={FASHION_ROOT}"]
    if not FASHION_ROOT.is_dir():
        print("Fashion-MNIST not found (apt-get install dataset-fashion-mnist); using digits")
        config_path, data = CONFIGS / "v1_permuted_digits_budget_power.yaml", []
    start = time.perf_counter()
    rows: dict[str, list[dict[str, float | None]]] = {}
    rehearsal: dict[str, float] = {}
    for env, scenario in ENVIRONMENTS.items():
        base = [*data, *scenario, f"output.root={args.out}", "output.plot=false"]
        rehearsal[env] = rehearsal_per_phase(
            prepare(build_config(config_path, base)).plan.count_matrix()
        )
        for seed in args.seeds:
            outcome = run_job(build_config(config_path, [*base, f"seed={seed}"]), progress=False)
            rows.setdefault(env, []).append(outcome.summary["metrics"])
            budget = outcome.summary["budget"]
            print(
                f"{env:<12} seed {seed}: final_acc {outcome.summary['metrics']['final_acc']:.3f} "
                f"({budget['updates']} updates, {outcome.path})",
                flush=True,
            )
    elapsed = time.perf_counter() - start

    cfg = build_config(config_path, data)
    scenario, train = cfg.scenario, cfg.train
    print(
        f"\n{config_path.name}: {cfg.data['name']}, {scenario['base']['n_experiences']} permuted "
        f"tasks, {scenario['samples_new']} new samples per phase, rehearsal budget r = "
        f"{scenario['replay_fraction']} ({scenario['normalisation']} normalisation, "
        f"{scenario['resample']} draws), MLP {cfg.model['hidden_sizes']} (batch norm, dropout "
        f"{cfg.model['dropout']}), "
        f"{train.optimizer} lr {train.lr}, {train.epochs} epochs/phase, batch {train.batch_size}; "
        f"evaluation every {cfg.eval.every} update(s) on {cfg.eval.subset_size} test samples "
        f"per seen task; seeds {args.seeds}"
    )
    print(
        "Scaled down from the paper's prototype (10 tasks x 57927 samples, 32x32 MNIST, MLP "
        "3x1000, ~100 epochs per phase): fewer samples, smaller net, fewer epochs."
    )
    header = f"{'environment':<12} {'rehearsal/phase':>15} " + " ".join(f"{m:>15}" for m in METRICS)
    print(header)
    print("-" * len(header))
    for env, runs in rows.items():
        cells = [mean_std([r[m] for r in runs if r[m] is not None]) for m in METRICS]
        print(f"{env:<12} {rehearsal[env]:>15.0f} " + " ".join(f"{c:>15}" for c in cells))
    print(
        f"\nfinal_acc: mean accuracy over all tasks after the last phase; min_acc: mean over "
        f"old tasks of their worst accuracy after they were learned (continual evaluation); "
        f"forgetting: mean drop from end-of-task to final accuracy. {len(args.seeds)} seeds x "
        f"{len(rows)} environments in {elapsed / 60:.1f} min, {torch.get_num_threads()} torch "
        "thread(s)."
    )


if __name__ == "__main__":
    main()
