"""Per-task and per-boundary details of a sweep's finished runs that `clbench report` (one number
per column) cannot show. Reads run folders only; it builds no config and starts no run.

Per setting (``tags.method``, else ``strategy.name``, and data and scenario where they vary;
``--group-by`` to choose), mean ± std over seeds of each task's final accuracy
and of min-ACC as evaluation at task boundaries alone would report it (full test sets after each
phase), next to the continual-evaluation min-ACC. ``--gaps``: per (old task, boundary) dip and
recovery of each setting's first seed, the stability gap that boundary-only evaluation misses.

    python benchmarks/run_details.py results/stability-gap-er-vs-naive --gaps
    python benchmarks/run_details.py results/hyperinterval-split-fmnist-seeds
"""

from __future__ import annotations

import argparse
import statistics
from typing import Any

from clbench.results.reader import RunFolder, flat_config, load_runs, varying_keys


def boundary_only_min_acc(matrix: list[list[float | None]]) -> float | None:
    """Mean over old tasks of their worst full-test accuracy at a later phase's end, from the
    accuracy matrix R[phase][task]."""
    minima = [
        min(row[task] for row in matrix[task + 1 :] if row[task] is not None)
        for task in range(len(matrix) - 1)
        if any(row[task] is not None for row in matrix[task + 1 :])
    ]
    return statistics.mean(minima) if minima else None


def mean_std(values: list[float | None]) -> str:
    present = [v for v in values if v is not None]
    if not present:
        return "null"
    sd = statistics.stdev(present) if len(present) > 1 else 0.0
    return f"{statistics.mean(present):.3f} ± {sd:.3f}"


def setting(run: RunFolder, keys: list[str]) -> str:
    flat = flat_config(run.config)
    tags = {f"tags.{k}": v for k, v in (run.summary.get("tags") or {}).items()}
    return " ".join(str({**flat, **tags}.get(key, "-")) for key in keys)


def print_gaps(run: RunFolder) -> None:
    print(f"\n{run.path.name}: old tasks after each task switch (evaluation subset accuracy)")
    print("task  phase  before switch  lowest after  depth  at update  recovered after (updates)")
    for gap in run.summary["metrics"]["gaps"]:
        if gap.get("forgotten"):
            recovery = "at chance before the switch (not counted)"
        elif gap["recovery_time"] is None:
            recovery = "not recovered"
        else:
            recovery = str(gap["recovery_time"])
        print(
            f"{gap['task']:>4} {gap['phase']:>6} {gap['reference']:>14.3f} {gap['minimum']:>13.3f} "
            f"{gap['depth']:>6.3f} {gap['min_step']:>10}  {recovery}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", nargs="+", help="run or results folders (a suite's root)")
    parser.add_argument("--group-by", nargs="+", metavar="KEY", help="config keys or tags.<name>")
    parser.add_argument("--gaps", action="store_true", help="per-boundary dips of each setting")
    args = parser.parse_args()

    runs = load_runs(args.results).finished
    if not runs:
        raise SystemExit(f"no finished runs under {' '.join(args.results)}")
    keys = args.group_by or [
        "tags.method"
        if all("method" in (r.summary.get("tags") or {}) for r in runs)
        else "strategy.name",
        *(k for k in ("data.name", "scenario.name") if k in varying_keys([r.config for r in runs])),
    ]
    groups: dict[str, list[RunFolder]] = {}
    for run in sorted(runs, key=lambda r: (setting(r, keys), r.config["seed"])):
        groups.setdefault(setting(run, keys), []).append(run)

    print(f"mean ± std over seeds; setting = {' '.join(keys)}")
    width = max(len("setting"), *map(len, groups))
    head = f"{'setting':<{width}} {'n':>2} {'min-ACC':>15} {'boundary-only':>15}"
    print(f"{head}  final accuracy per task")
    for name, members in groups.items():
        metrics: list[dict[str, Any]] = [r.summary["metrics"] for r in members]
        per_task = list(zip(*(m["per_task_final_acc"] for m in metrics), strict=True))
        print(
            f"{name:<{width}} {len(members):>2} {mean_std([m['min_acc'] for m in metrics]):>15} "
            f"{mean_std([boundary_only_min_acc(m['accuracy_matrix']) for m in metrics]):>15}  "
            + " / ".join(mean_std(list(task)) for task in per_task)
        )
    if args.gaps:
        for members in groups.values():
            print_gaps(members[0])


if __name__ == "__main__":
    main()
