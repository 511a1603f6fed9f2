"""Evaluation schedules: ``eval.schedule=every`` (``eval.every=1``) vs ``adaptive`` (defaults).

Usage::

    OMP_NUM_THREADS=1 python benchmarks/eval_schedule.py [--quick] [--only runs|scaling]
        [--scaling-tasks 5,10,20,50]

Full: about 20 minutes on one core of the 2-core reference machine; ``--quick`` about 3 minutes
(shorter phases: its ratios are smaller and its targets are not the issue's, see below).
Single-threaded (``threads=1``, ``OMP_NUM_THREADS=1``) so that a second process on the shared
cores distorts it less; every timed run also records the CPU share other processes used
meanwhile (``load``), and a run above 10% is marked NOISY.

Part 1, same seed under both schedules (evaluation draws no random numbers, so the script asserts
identical training losses and final parameters, and compares the metrics of the two):

* Split-Fashion-MNIST, 5 tasks: the stability-gap paper's settings
  (``configs/stability_gap/split_fashion_mnist_er.yaml``: 10 epochs, batch 256, MLP 784-400-400,
  470 updates per phase, 1000 evaluation samples per task), Debian's Fashion-MNIST files
  (``/usr/share/datasets/fashion-mnist``; scikit-learn's digits if they are missing).
  ``--quick``: 2 epochs (94 updates per phase).
* Permuted digits, 20 tasks: ``domain_incremental`` permutation of scikit-learn's 8x8 digits
  (every task the whole 1437-sample train set under its own pixel permutation; the whole
  360-sample test set per task), MLP 64-100-100, batch 32, 10 epochs (450 updates per phase).
  ``--quick``: 10 tasks, 3 epochs.

Strategies: ``er`` (the config's class-balanced 2000-slot memory on Fashion-MNIST, clbench's
default 200-slot reservoir on digits), ``naive``, ``er`` + View-Batch (``views=2``,
``ssl_start_epoch=0``) and ``avl_lwf`` (Avalanche's LwF, a regularisation baseline).

Part 2, cost as tasks accumulate: ``data.name=synthetic data.dim=784 data.train_per_class=500
data.test_per_class=500``, class-incremental 2 classes per task, MLP 2x400, batch 64, 1 epoch
(16 updates per phase), ER with clbench's default 200-slot memory, 1000 evaluation samples per
task, at 5, 10, 20 and 50 tasks (``--quick``: 5 and 10). Besides ``every`` and ``adaptive`` it
times ``ends``: only the phase ends (``adaptive`` with ``dense=0 growth=100``), the least
evaluation a schedule that sees every task once per phase can do.

Targets (the issue's; printed PASS/FAIL, measured in this one run): ``adaptive`` makes >= 5x
fewer evaluations and spends >= 4x less evaluation time than ``every``, with |Δ min-ACC|,
|Δ WC-ACC| and |Δ gap depth| <= 0.01 on every run of part 1; an ``adaptive`` run costs <= 1.3x its
training time on the 5-task setting; evaluation is < 1/3 of the run time at 50 tasks with
``adaptive``. The script exits 0 whatever the outcome (it is a report), except when the two
schedules train differently (an AssertionError: a bug).
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # before torch is imported

import argparse
import math
import platform
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from machine_load import QUIET, ForeignLoad, say

from clbench.config import build_config
from clbench.engine.runner import Experiment, prepare
from clbench.metrics.stability import chance_levels
from clbench.metrics.summary import compute_metrics

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "configs/stability_gap/split_fashion_mnist_er.yaml"
FASHION_ROOT = Path("/usr/share/datasets/fashion-mnist")

COMMON = ["threads=1", "device=cpu", "output.plot=false"]
SCHEDULES = {
    "every": ["eval.schedule=every", "eval.every=1"],
    "adaptive": ["eval.schedule=adaptive"],  # dense 50, growth 1.5, max_every 50
    # only the phase ends: spacings min(50, round(100^k)) = 50 > any phase of part 2
    "ends": ["eval.schedule=adaptive", "eval.dense=0", "eval.growth=100"],
}
STRATEGIES = {
    "er": [],  # the setting's own ER
    "naive": ["strategy.name=naive"],
    "er+view_batch": ["plugins.view_batch.views=2", "plugins.view_batch.ssl_start_epoch=0"],
    "lwf": ["strategy.name=avl_lwf"],
}
# metric, its label, and the target tolerance of |Δ| (None: reported only)
DELTAS = (
    ("min_acc", "min-ACC", 0.01),
    ("wc_acc", "WC-ACC", 0.01),
    ("gap_depth_mean", "gap depth", 0.01),
    ("recovery_time_mean", "recovery", None),
    ("wf_10", "WF^10", None),
    ("final_acc", "final acc", None),
)


# --------------------------------------------------------------------------- one run


@dataclass
class Run:
    name: str
    evaluations: int  # distinct steps with subset evaluations (step 0 included)
    subset_rows: int  # (step, task) subset evaluations
    updates: int
    run_s: float  # Experiment.run() wall time (building the experiment excluded)
    train_s: float
    eval_s: float
    load: float | None  # CPU share of other processes meanwhile
    metrics: dict[str, Any]
    losses: torch.Tensor
    params: list[torch.Tensor]
    per_phase: tuple[int, ...]

    @property
    def noisy(self) -> bool:
        return self.load is not None and self.load > QUIET


def run_once(name: str, overrides: list[str], config: Path | None) -> Run:
    cfg = build_config(config, [*overrides, *COMMON])
    exp = Experiment(prepare(cfg))
    start = time.perf_counter()
    with ForeignLoad(wait=False) as foreign:
        exp.run()
    run_s = time.perf_counter() - start
    load = foreign.share
    frame = exp.log.frame()
    subset = frame[frame["kind"] == "subset"]
    metrics = compute_metrics(frame, cfg.metrics, chance_levels(exp.prepared.plan))
    return Run(
        name=name,
        evaluations=int(subset["step"].nunique()),
        subset_rows=len(subset),
        updates=exp.timing.updates,
        run_s=run_s,
        train_s=exp.timing.train_s,
        eval_s=exp.timing.eval_s,
        load=load,
        metrics=metrics,
        losses=torch.stack(exp.train_losses).detach().cpu(),
        params=[p.detach().cpu().clone() for p in exp.model.parameters()],
        per_phase=tuple(exp.loop.plan.updates_per_phase),
    )


def trains_identically(a: Run, b: Run) -> bool:
    return torch.equal(a.losses, b.losses) and all(
        torch.equal(p, q) for p, q in zip(a.params, b.params, strict=True)
    )


def delta(a: Any, b: Any) -> float | None:
    if a is None or b is None:
        return None if a is None and b is None else math.inf  # defined under one schedule only
    return abs(float(a) - float(b))


def fmt(value: float | None, digits: int = 4) -> str:
    if value is None:
        return "-"
    if math.isinf(value):
        return "inf"
    return f"{value:.{digits}f}"


def load_text(run: Run) -> str:
    text = "n/a" if run.load is None else f"{100 * run.load:.0f}%"
    return text + (" NOISY" if run.noisy else "")


# --------------------------------------------------------------------------- part 1


def settings(quick: bool) -> list[tuple[str, Path | None, list[str]]]:
    """(name, config file, overrides) of the settings of part 1."""
    if (FASHION_ROOT / "train-images-idx3-ubyte.gz").is_file() or (
        FASHION_ROOT / "train-images-idx3-ubyte"
    ).is_file():
        fashion = ("split-fmnist-5", [f"data.root={FASHION_ROOT}"])
    else:
        say(f"(no Fashion-MNIST files under {FASHION_ROOT}: Split-digits instead)")
        fashion = ("split-digits-5", ["data.name=digits", "train.batch_size=32"])
    name, data = fashion
    first = [*data, *(["train.epochs=2"] if quick else [])]
    tasks, epochs = (10, 3) if quick else (20, 10)
    permuted = [
        "data.name=digits",
        "scenario.name=domain_incremental",
        "scenario.domain=permutation",
        f"scenario.n_experiences={tasks}",
        "model.hidden_sizes=[100,100]",
        f"train.epochs={epochs}",
        "train.batch_size=32",
        "eval.subset_size=-1",
    ]
    return [
        (name, CONFIG, first),
        (f"permuted-digits-{tasks}", None, permuted),
    ]


@dataclass
class Pair:
    setting: str
    strategy: str
    every: Run
    adaptive: Run


def part1(quick: bool) -> list[Pair]:
    pairs = []
    for setting, config, base in settings(quick):
        for strategy, extra in STRATEGIES.items():
            runs = {}
            for schedule in ("every", "adaptive"):
                runs[schedule] = run_once(
                    f"{setting}/{strategy}/{schedule}",
                    [*base, *extra, *SCHEDULES[schedule]],
                    config,
                )
                r = runs[schedule]
                say(
                    f"  {r.name}: {r.evaluations} evaluations, eval {r.eval_s:.2f} s, "
                    f"run {r.run_s:.2f} s, train {r.train_s:.2f} s (load {load_text(r)})"
                )
            same = trains_identically(runs["every"], runs["adaptive"])
            say(f"  {setting}/{strategy}: identical training losses and parameters: {same}")
            assert same, f"{setting}/{strategy}: the schedules trained differently"
            pairs.append(Pair(setting, strategy, runs["every"], runs["adaptive"]))
    return pairs


def report1(pairs: list[Pair]) -> None:
    say()
    say("Part 1: the same seed under `every` (eval.every=1) and `adaptive` (defaults)")
    say()
    say(
        "| setting | strategy | updates/phase | evals every | evals adaptive | ratio | "
        "eval s every | eval s adaptive | ratio | run s every | run s adaptive | "
        "adaptive run/train | load |"
    )
    say("|" + "---|" * 13)
    for p in pairs:
        e, a = p.every, p.adaptive
        phases = sorted(set(e.per_phase))
        say(
            f"| {p.setting} | {p.strategy} | {'/'.join(map(str, phases))} | {e.evaluations} | "
            f"{a.evaluations} | {e.evaluations / a.evaluations:.1f}x | {e.eval_s:.2f} | "
            f"{a.eval_s:.2f} | {e.eval_s / a.eval_s:.1f}x | {e.run_s:.2f} | {a.run_s:.2f} | "
            f"{a.run_s / a.train_s:.2f}x | {load_text(e)}, {load_text(a)} |"
        )
    say()
    say(
        "|Δ| of the metrics between the two schedules (recovery in updates; '-': undefined in both)"
    )
    say()
    say("| setting | strategy | " + " | ".join(label for _, label, _ in DELTAS) + " |")
    say("|" + "---|" * (2 + len(DELTAS)))
    for p in pairs:
        cells = [
            fmt(delta(p.every.metrics[k], p.adaptive.metrics[k]), 2 if k.startswith("rec") else 4)
            for k, _, _ in DELTAS
        ]
        say(f"| {p.setting} | {p.strategy} | " + " | ".join(cells) + " |")
    say()
    say("Values under `every` (adaptive in brackets)")
    say()
    say("| setting | strategy | " + " | ".join(label for _, label, _ in DELTAS) + " |")
    say("|" + "---|" * (2 + len(DELTAS)))
    for p in pairs:
        cells = []
        for k, _, _ in DELTAS:
            d = 1 if k.startswith("rec") else 4
            e, a = p.every.metrics[k], p.adaptive.metrics[k]
            cells.append(f"{fmt(e, d)} ({fmt(a, d)})")
        say(f"| {p.setting} | {p.strategy} | " + " | ".join(cells) + " |")


# --------------------------------------------------------------------------- part 2


def scaling_overrides(tasks: int) -> list[str]:
    return [
        "data.name=synthetic",
        f"data.num_classes={2 * tasks}",
        "data.dim=784",
        "data.train_per_class=500",
        "data.test_per_class=500",
        f"scenario.n_experiences={tasks}",
        "model.hidden_sizes=[400,400]",
        "train.epochs=1",
        "train.batch_size=64",
        "eval.subset_size=1000",
    ]


def part2(task_counts: list[int]) -> dict[int, dict[str, Run]]:
    out: dict[int, dict[str, Run]] = {}
    for tasks in task_counts:
        out[tasks] = {}
        for schedule in ("every", "adaptive", "ends"):
            r = run_once(
                f"synthetic-{tasks}/{schedule}",
                [*scaling_overrides(tasks), *SCHEDULES[schedule]],
                None,
            )
            out[tasks][schedule] = r
            say(
                f"  {r.name}: {r.evaluations} evaluations, eval {r.eval_s:.2f} s, "
                f"run {r.run_s:.2f} s, train {r.train_s:.2f} s (load {load_text(r)})"
            )
        runs = out[tasks]
        assert trains_identically(runs["every"], runs["adaptive"]), tasks
        assert trains_identically(runs["every"], runs["ends"]), tasks
    return out


def report2(scaling: dict[int, dict[str, Run]]) -> None:
    say()
    say("Part 2: cost as tasks accumulate (synthetic 784-d, MLP 2x400, batch 64, 1 epoch, ER)")
    say()
    say(
        "| tasks | updates/phase | eval share every | eval share adaptive | eval share ends | "
        "evals every/adaptive | eval s every/adaptive | adaptive run/train | "
        "eval s every | eval s adaptive | train s | load |"
    )
    say("|" + "---|" * 12)
    for tasks, runs in scaling.items():
        e, a = runs["every"], runs["adaptive"]
        share = {k: r.eval_s / r.run_s for k, r in runs.items()}
        loads = ", ".join(load_text(r) for r in runs.values())
        say(
            f"| {tasks} | {e.per_phase[0]} | {100 * share['every']:.1f}% | "
            f"{100 * share['adaptive']:.1f}% | {100 * share['ends']:.1f}% | "
            f"{e.evaluations / a.evaluations:.2f}x | {e.eval_s / a.eval_s:.2f}x | "
            f"{a.run_s / a.train_s:.2f}x | {e.eval_s:.2f} | {a.eval_s:.2f} | {a.train_s:.2f} | "
            f"{loads} |"
        )


# --------------------------------------------------------------------------- targets


def targets(pairs: list[Pair], scaling: dict[int, dict[str, Run]], quick: bool) -> None:
    say()
    say("Targets" + (" (--quick: shorter phases than the issue's setting)" if quick else ""))
    rows: list[tuple[str, bool, str]] = []
    if pairs:
        evals = [p.every.evaluations / p.adaptive.evaluations for p in pairs]
        times = [p.every.eval_s / p.adaptive.eval_s for p in pairs]
        worst_e = min(zip(evals, pairs, strict=True), key=lambda x: x[0])
        worst_t = min(zip(times, pairs, strict=True), key=lambda x: x[0])
        total_e = sum(p.every.evaluations for p in pairs) / sum(
            p.adaptive.evaluations for p in pairs
        )
        total_t = sum(p.every.eval_s for p in pairs) / sum(p.adaptive.eval_s for p in pairs)
        rows.append(
            (
                ">= 5x fewer evaluations (every run)",
                worst_e[0] >= 5,
                f"least {worst_e[0]:.2f}x ({worst_e[1].setting}/{worst_e[1].strategy}); "
                f"all runs together {total_e:.2f}x",
            )
        )
        rows.append(
            (
                ">= 4x less evaluation time (every run)",
                worst_t[0] >= 4,
                f"least {worst_t[0]:.2f}x ({worst_t[1].setting}/{worst_t[1].strategy}); "
                f"all runs together {total_t:.2f}x",
            )
        )
        for key, label, tol in DELTAS:
            if tol is None:
                continue
            ds = [delta(p.every.metrics[key], p.adaptive.metrics[key]) for p in pairs]
            worst = max((d for d in ds if d is not None), default=0.0)
            rows.append((f"|Δ {label}| <= {tol} on every run", worst <= tol, f"max {fmt(worst)}"))
        five = [p for p in pairs if p.setting.endswith("-5")]
        for p in five:
            ratio = p.adaptive.run_s / p.adaptive.train_s
            rows.append(
                (
                    f"adaptive run <= 1.3x training, {p.setting}/{p.strategy}",
                    ratio <= 1.3,
                    f"{ratio:.2f}x ({p.adaptive.run_s:.2f} s / {p.adaptive.train_s:.2f} s)",
                )
            )
    if 5 in scaling:
        a = scaling[5]["adaptive"]
        ratio = a.run_s / a.train_s
        rows.append(
            (
                "adaptive run <= 1.3x training, synthetic 5 tasks (part 2)",
                ratio <= 1.3,
                f"{ratio:.2f}x",
            )
        )
    if 50 in scaling:
        a = scaling[50]["adaptive"]
        share = a.eval_s / a.run_s
        rows.append(
            (
                "evaluation < 1/3 of run time at 50 tasks, adaptive",
                share < 1 / 3,
                f"{100 * share:.1f}%",
            )
        )
    for label, ok, detail in rows:
        say(f"  {'PASS' if ok else 'FAIL'}  {label}: {detail}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="reduced version (~3 minutes)")
    parser.add_argument("--only", choices=("runs", "scaling"), help="one part only")
    parser.add_argument(
        "--scaling-tasks", help="comma-separated task counts of part 2 (default 5,10,20,50)"
    )
    args = parser.parse_args()
    counts = (
        [int(t) for t in args.scaling_tasks.split(",")]
        if args.scaling_tasks
        else ([5, 10] if args.quick else [5, 10, 20, 50])
    )
    say(
        f"torch {torch.__version__}, {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} CPUs, threads=1, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}"
    )
    start = time.perf_counter()
    pairs = part1(args.quick) if args.only != "scaling" else []
    if pairs:
        report1(pairs)
    scaling = part2(counts) if args.only != "runs" else {}
    if scaling:
        report2(scaling)
    targets(pairs, scaling, args.quick)
    say(f"\nbenchmark time {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
