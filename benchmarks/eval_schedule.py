"""Evaluation schedules: ``eval.schedule=every`` (``eval.every=1``) vs ``adaptive`` (defaults),
``adaptive`` with ``eval.refine=0.05`` and ``adaptive`` with ``eval.precision=bf16``.

Usage::

    OMP_NUM_THREADS=1 python benchmarks/eval_schedule.py [--quick] [--only runs|scaling|pass]
        [--scaling-tasks 5,10,20,50]

Full: about 30 minutes on one core of the 2-core reference machine; ``--quick`` about 3 minutes
(shorter phases: its ratios are smaller and its targets are not the issue's, see below).
Single-threaded (``threads=1``, ``OMP_NUM_THREADS=1``) so that a second process on the shared
cores distorts it less; every timed run also records the CPU share other processes used
meanwhile (``load``), and a run above 10% is marked NOISY.

Part 1, same seed under every schedule (evaluation draws no random numbers, so the script
asserts identical training losses and final parameters, and compares the metrics with `every`'s):

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
evaluation a schedule that sees every task once per phase can do, and ``adaptive+bf16``.

Part 3, the evaluation pass alone: one pass over the Split-Fashion-MNIST subsets by
``eval.batch_size`` (256, 1024, 4096) and evaluation precision (fp32, bf16), with the largest
per-task accuracy difference to fp32.

Targets (the issue's; printed PASS/FAIL, measured in this one run): ``adaptive`` makes >= 5x
fewer evaluations and spends >= 4x less evaluation time than ``every``, with |Δ min-ACC|,
|Δ WC-ACC| and |Δ gap depth| <= 0.01 on every run of part 1; an ``adaptive`` run costs <= 1.3x its
training time on the 5-task setting; evaluation is < 1/3 of the run time at 50 tasks with
``adaptive`` (each also printed for ``refine``, and the cost ones for ``adaptive+bf16``). The
script exits 0 whatever the outcome (it is a report), except when two schedules train
differently (an AssertionError: a bug).
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # before torch is imported

import argparse
import contextlib
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
REFINE = 0.05  # eval.refine of the `refine` schedule
SCHEDULES = {
    "every": ["eval.schedule=every", "eval.every=1"],
    "adaptive": ["eval.schedule=adaptive"],  # dense 50, growth 1.5, max_every 50
    "refine": ["eval.schedule=adaptive", f"eval.refine={REFINE}"],
    # adaptive with bf16 evaluation passes (autocast; training stays fp32)
    "adaptive+bf16": ["eval.schedule=adaptive", "eval.precision=bf16"],
    # only the phase ends: spacings min(50, round(100^k)) = 50 > any phase of part 2
    "ends": ["eval.schedule=adaptive", "eval.dense=0", "eval.growth=100"],
}
PART1 = ("every", "adaptive", "refine", "adaptive+bf16")
PART2 = ("every", "adaptive", "adaptive+bf16", "ends")
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
    runs: dict[str, Run]  # by schedule (PART1)

    @property
    def every(self) -> Run:
        return self.runs["every"]


def part1(quick: bool) -> list[Pair]:
    pairs = []
    for setting, config, base in settings(quick):
        for strategy, extra in STRATEGIES.items():
            runs = {}
            for schedule in PART1:
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
            same = all(trains_identically(runs["every"], r) for r in runs.values())
            say(f"  {setting}/{strategy}: identical training losses and parameters: {same}")
            assert same, f"{setting}/{strategy}: the schedules trained differently"
            pairs.append(Pair(setting, strategy, runs))
    return pairs


def report1(pairs: list[Pair]) -> None:
    say()
    say(
        "Part 1: the same seed under `every` (eval.every=1), `adaptive` (defaults), `refine` "
        f"(adaptive, eval.refine={REFINE}) and `adaptive+bf16` (adaptive, eval.precision=bf16)"
    )
    say()
    others = PART1[1:]
    say(
        "| setting | strategy | updates/phase | evals every | "
        + " | ".join(f"evals {k} (ratio)" for k in others)
        + " | eval s every | "
        + " | ".join(f"eval s {k} (ratio)" for k in others)
        + " | run/train every | "
        + " | ".join(f"run/train {k}" for k in others)
        + " | load |"
    )
    say("|" + "---|" * (6 + 3 * len(others)))
    for p in pairs:
        e = p.every
        phases = sorted(set(e.per_phase))
        cells = [p.setting, p.strategy, "/".join(map(str, phases)), str(e.evaluations)]
        cells += [
            f"{p.runs[k].evaluations} ({e.evaluations / p.runs[k].evaluations:.1f}x)"
            for k in others
        ]
        cells.append(f"{e.eval_s:.2f}")
        cells += [f"{p.runs[k].eval_s:.2f} ({e.eval_s / p.runs[k].eval_s:.1f}x)" for k in others]
        cells += [f"{r.run_s / r.train_s:.2f}x" for r in p.runs.values()]
        cells.append(", ".join(load_text(r) for r in p.runs.values()))
        say("| " + " | ".join(cells) + " |")
    for k in others:
        say()
        say(
            f"|Δ| of the metrics between `every` and `{k}` (recovery in updates; '-': undefined "
            "in both)"
        )
        say()
        say("| setting | strategy | " + " | ".join(label for _, label, _ in DELTAS) + " |")
        say("|" + "---|" * (2 + len(DELTAS)))
        for p in pairs:
            cells = [
                fmt(
                    delta(p.every.metrics[m], p.runs[k].metrics[m]), 2 if m.startswith("rec") else 4
                )
                for m, _, _ in DELTAS
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
            e, a = p.every.metrics[k], p.runs["adaptive"].metrics[k]
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
        for schedule in PART2:
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
        assert all(trains_identically(runs["every"], r) for r in runs.values()), tasks
    return out


def report2(scaling: dict[int, dict[str, Run]]) -> None:
    say()
    say("Part 2: cost as tasks accumulate (synthetic 784-d, MLP 2x400, batch 64, 1 epoch, ER)")
    say()
    say(
        "| tasks | updates/phase | "
        + " | ".join(f"eval share {k}" for k in PART2)
        + " | evals every/adaptive | "
        + " | ".join(f"eval s {k}" for k in PART2)
        + " | train s | load |"
    )
    say("|" + "---|" * (5 + 2 * len(PART2)))
    for tasks, runs in scaling.items():
        e, a = runs["every"], runs["adaptive"]
        shares = " | ".join(f"{100 * runs[k].eval_s / runs[k].run_s:.1f}%" for k in PART2)
        times = " | ".join(f"{runs[k].eval_s:.2f}" for k in PART2)
        loads = ", ".join(load_text(r) for r in runs.values())
        say(
            f"| {tasks} | {e.per_phase[0]} | {shares} | {e.evaluations / a.evaluations:.2f}x | "
            f"{times} | {a.train_s:.2f} | {loads} |"
        )


# --------------------------------------------------------------------------- part 3


def part3(quick: bool) -> None:
    """The evaluation pass alone: one continual evaluation of the 5 Split-Fashion-MNIST tasks
    (5,000 subset samples, MLP 784-400-400) with the model after phase 0 of ER, by
    eval.batch_size and eval.precision; time per pass (median of repeats) and the largest
    per-task accuracy difference to fp32 at batch 1024."""
    name, config, base = settings(quick)[0]
    cfg = build_config(config, [*base, *COMMON, "train.epochs=1"])
    exp = Experiment(prepare(cfg))
    exp.run()  # trained weights: near-ties (where bf16 can flip a prediction) as in a real run
    evaluator = exp.evaluator
    last = exp.prepared.plan.num_tasks - 1
    say()
    say(f"Part 3: one evaluation pass of all {last + 1} tasks' subsets ({name}), by option")
    say()
    say("| eval.batch_size | eval.precision | ms per pass | vs fp32 @1024 | max |Δ acc| |")
    say("|---|---|---|---|---|")
    autocasts = {
        "fp32": contextlib.nullcontext,
        "bf16": lambda: torch.autocast("cpu", dtype=torch.bfloat16),
    }
    rows = []
    for precision, autocast in autocasts.items():
        for batch in (256, 1024, 4096):
            evaluator.batch_size = batch
            evaluator.autocast = autocast
            times = []
            for _ in range(3 if quick else 9):
                start = time.perf_counter()
                acc = evaluator.evaluate_subsets(0, 0, 0, last)
                times.append(time.perf_counter() - start)
            ms = 1000 * sorted(times)[len(times) // 2]
            rows.append((batch, precision, ms, acc.clone()))
    ref = next(r for r in rows if r[0] == 1024 and r[1] == "fp32")
    for batch, precision, ms, acc in rows:
        diff = float((acc - ref[3]).abs().max())
        say(f"| {batch} | {precision} | {ms:.1f} | {ref[2] / ms:.2f}x | {diff:.4f} |")


# --------------------------------------------------------------------------- targets


def targets(pairs: list[Pair], scaling: dict[int, dict[str, Run]], quick: bool) -> None:
    say()
    say("Targets" + (" (--quick: shorter phases than the issue's setting)" if quick else ""))
    rows: list[tuple[str, bool, str]] = []
    for k in ("adaptive", "refine") if pairs else ():
        evals = [p.every.evaluations / p.runs[k].evaluations for p in pairs]
        times = [p.every.eval_s / p.runs[k].eval_s for p in pairs]
        worst_e = min(zip(evals, pairs, strict=True), key=lambda x: x[0])
        worst_t = min(zip(times, pairs, strict=True), key=lambda x: x[0])
        total_e = sum(p.every.evaluations for p in pairs) / sum(
            p.runs[k].evaluations for p in pairs
        )
        total_t = sum(p.every.eval_s for p in pairs) / sum(p.runs[k].eval_s for p in pairs)
        rows.append(
            (
                f"{k}: >= 5x fewer evaluations (every run)",
                worst_e[0] >= 5,
                f"least {worst_e[0]:.2f}x ({worst_e[1].setting}/{worst_e[1].strategy}); "
                f"all runs together {total_e:.2f}x",
            )
        )
        rows.append(
            (
                f"{k}: >= 4x less evaluation time (every run)",
                worst_t[0] >= 4,
                f"least {worst_t[0]:.2f}x ({worst_t[1].setting}/{worst_t[1].strategy}); "
                f"all runs together {total_t:.2f}x",
            )
        )
        for key, label, tol in DELTAS:
            if tol is None:
                continue
            ds = [delta(p.every.metrics[key], p.runs[k].metrics[key]) for p in pairs]
            worst = max((d for d in ds if d is not None), default=0.0)
            rows.append(
                (f"{k}: |Δ {label}| <= {tol} on every run", worst <= tol, f"max {fmt(worst)}")
            )
    for p in (p for p in pairs if p.setting.endswith("-5")):
        for k in ("adaptive", "adaptive+bf16"):
            r = p.runs[k]
            ratio = r.run_s / r.train_s
            rows.append(
                (
                    f"{k} run <= 1.3x training, {p.setting}/{p.strategy}",
                    ratio <= 1.3,
                    f"{ratio:.2f}x ({r.run_s:.2f} s / {r.train_s:.2f} s)",
                )
            )
    for k in ("adaptive", "adaptive+bf16") if 5 in scaling else ():
        a = scaling[5][k]
        rows.append(
            (
                f"{k} run <= 1.3x training, synthetic 5 tasks (part 2)",
                a.run_s / a.train_s <= 1.3,
                f"{a.run_s / a.train_s:.2f}x",
            )
        )
    for k in ("adaptive", "adaptive+bf16", "ends") if 50 in scaling else ():
        a = scaling[50][k]
        share = a.eval_s / a.run_s
        rows.append(
            (f"evaluation < 1/3 of run time at 50 tasks, {k}", share < 1 / 3, f"{100 * share:.1f}%")
        )
    for label, ok, detail in rows:
        say(f"  {'PASS' if ok else 'FAIL'}  {label}: {detail}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="reduced version (~3 minutes)")
    parser.add_argument("--only", choices=("runs", "scaling", "pass"), help="one part only")
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
    pairs = part1(args.quick) if args.only in (None, "runs") else []
    if pairs:
        report1(pairs)
    scaling = part2(counts) if args.only in (None, "scaling") else {}
    if scaling:
        report2(scaling)
    if args.only in (None, "pass"):
        part3(args.quick)
    targets(pairs, scaling, args.quick)
    say(f"\nbenchmark time {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
