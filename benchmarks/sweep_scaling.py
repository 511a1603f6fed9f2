"""Sweep scaling: the same 8 single-threaded runs on a local pool of 1 and of 2 workers.

Usage::

    python benchmarks/sweep_scaling.py [--runs 8] [--epochs 40] [--workers 2]

Each run is the embedded default (class-incremental Split-digits, ER, MLP 400-400) with
``--epochs`` epochs and evaluation every 2 updates (about 5 s on one free core), seeds
0..runs-1, ``threads=1``. Both passes go through `clbench.sweeps.executors.LocalExecutor`
(spawned workers, their start included in the time) into fresh temporary results roots, so
nothing is skipped.
It prints both wall times and the speed-up; with 2 free cores expect close to 2x. On a shared
machine other processes take cores too, so it also prints the CPU seconds the workers used and
the average number of cores they got (CPU / wall): a speed-up well below 2x with ~1 core used
means the second core was busy elsewhere, not that the pool failed to run in parallel.
The script exits 0 whatever the outcome: it is a report.
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
from pathlib import Path


def time_pool(workers: int, runs: int, epochs: int) -> tuple[float, float]:
    """(wall, workers' CPU) seconds for ``runs`` seeds of the default on ``workers`` processes."""
    from clbench.config import build_config, run_name
    from clbench.sweeps.executors import LocalExecutor, RunTask

    with tempfile.TemporaryDirectory(prefix=f"sweep-scaling-{workers}-") as root:
        tasks = []
        for seed in range(runs):
            config = build_config(
                None,
                [
                    f"train.epochs={epochs}",
                    "eval.every=2",
                    f"seed={seed}",
                    "threads=1",
                    f"output.root={root}",
                    "output.plot=false",
                ],
            )
            tasks.append(RunTask(run_name(config), config.model_dump(mode="json"), str(Path.cwd())))
        statuses: list[str] = []
        cpu_before = _children_cpu()
        start = time.perf_counter()
        with LocalExecutor(workers, threads=1) as pool:
            pool.run(tasks, lambda result: statuses.append(result.status))
        elapsed = time.perf_counter() - start
        cpu = _children_cpu() - cpu_before  # the pool's workers have been joined
    bad = [s for s in statuses if s != "finished"]
    if bad:
        print(f"  warning: {len(bad)} run(s) did not finish: {bad}")
    return elapsed, cpu


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--workers", type=int, default=2, help="workers of the parallel pass")
    args = parser.parse_args()

    print(f"cores: {os.cpu_count()}, load average before: {os.getloadavg()[0]:.2f}")
    serial, serial_cpu = time_pool(1, args.runs, args.epochs)
    print(
        f"1 worker : {serial:6.1f} s for {args.runs} runs "
        f"(workers' CPU {serial_cpu:.1f} s, {serial_cpu / serial:.2f} cores)"
    )
    parallel, parallel_cpu = time_pool(args.workers, args.runs, args.epochs)
    print(
        f"{args.workers} workers: {parallel:6.1f} s for {args.runs} runs "
        f"(workers' CPU {parallel_cpu:.1f} s, {parallel_cpu / parallel:.2f} cores)"
    )
    print(f"speed-up: {serial / parallel:.2f}x (ideal {args.workers}x on free cores)")
    print(f"load average after: {os.getloadavg()[0]:.2f} (1-minute; includes other processes)")


if __name__ == "__main__":
    main()
