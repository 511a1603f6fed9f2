"""How long clbench's commands take to answer, against ``import torch`` measured in the same run.

Each command runs as a fresh process (what a user waits for), ``--repeat`` times; the median is
reported. Commands that do not train should answer in under 1 s; the default run should cost at
most its own work (training + evaluation, from its summary) + 1 s on top of a bare PyTorch
training script's start: ``import torch`` and building one optimizer, which imports
``torch._dynamo`` (``torch.optim.Optimizer.__init__`` is wrapped by ``torch._disable_dynamo``,
which imports it on the first call), so no script that trains with ``torch.optim`` starts in
``import torch`` alone. The row against ``import torch`` alone is printed too.

    OMP_NUM_THREADS=1 python benchmarks/startup.py

Prints one row per command: median seconds, the target, and whether it is met. Timings from a
busy machine are marked (``machine_load.ForeignLoad``), so run it on a quiet one.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from machine_load import ForeignLoad, say

CLBENCH = [sys.executable, "-m", "clbench"]
BARE_TORCH = "import torch; torch.optim.SGD(torch.nn.Linear(2, 2).parameters(), lr=0.1)"


def timed(command: list[str], cwd: Path, repeat: int, ok_codes: tuple[int, ...] = (0,)) -> float:
    """Median wall seconds of ``command`` as a fresh process (its exit code checked)."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        done = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
        times.append(time.perf_counter() - start)
        if done.returncode not in ok_codes:
            raise SystemExit(f"{' '.join(command)} exited {done.returncode}: {done.stderr[-500:]}")
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs per command (median)")
    args = parser.parse_args()
    env_note = os.environ.get("OMP_NUM_THREADS", "unset")
    with tempfile.TemporaryDirectory() as tmp:
        cwd = Path(tmp)
        with ForeignLoad() as load:
            torch_s = timed([sys.executable, "-c", "import torch"], cwd, args.repeat)
            # a bare PyTorch training script's fixed cost: building the first optimizer imports
            # torch._dynamo (about as long again as `import torch`)
            optim_s = timed([sys.executable, "-c", BARE_TORCH], cwd, args.repeat)
            python_s = timed([sys.executable, "-c", "pass"], cwd, args.repeat)
            # the default run (again with --force after the first): its work from its summary
            totals, works = [], []
            for i in range(args.repeat):
                force = ["--force"] if i else []
                start = time.perf_counter()
                subprocess.run(
                    [*CLBENCH, "run", "--quiet", *force], cwd=cwd, check=True, capture_output=True
                )
                totals.append(time.perf_counter() - start)
                (run_dir,) = (cwd / "results").iterdir()
                budget = json.loads((run_dir / "summary.json").read_text())["budget"]
                works.append(budget["train_time_s"] + budget["eval_time_s"])
            default_s, work_s = statistics.median(totals), statistics.median(works)
            beyond = [t - w - optim_s for t, w in zip(totals, works, strict=True)]
            beyond_bare = statistics.median(beyond)
            rows = [
                ("clbench --help", [*CLBENCH, "--help"], (0,)),
                ("clbench list", [*CLBENCH, "list"], (0,)),
                ("clbench list strategies er", [*CLBENCH, "list", "strategies", "er"], (0,)),
                ("config error (train.epochs=0)", [*CLBENCH, "run", "train.epochs=0"], (2,)),
                (
                    "component error (buffer_size=-1)",
                    [*CLBENCH, "run", "strategy.buffer_size=-1"],
                    (2,),
                ),
                (
                    "missing weights (timm, pretrained=FILE)",
                    [*CLBENCH, "run", "model.name=timm", f"model.pretrained={cwd / 'w.pth'}"],
                    (2,),
                ),
                (
                    "missing data (mnist, no files)",
                    [*CLBENCH, "run", "data.name=mnist", f"data.root={cwd / 'none'}"],
                    (2,),
                ),
                ("clbench info RUN", [*CLBENCH, "info", str(run_dir)], (0,)),
                ("finished run (clbench run again)", [*CLBENCH, "run", "--quiet"], (0,)),
                ("clbench run --dry-run", [*CLBENCH, "run", "--dry-run"], (0,)),
                (
                    "--dry-run, missing data",
                    [*CLBENCH, "run", "--dry-run", "data.name=cifar10", f"data.root={cwd}"],
                    (2,),
                ),
            ]
            measured = [(name, timed(cmd, cwd, args.repeat, codes)) for name, cmd, codes in rows]
    say(f"startup: median of {args.repeat} fresh processes, OMP_NUM_THREADS={env_note}")
    say(
        f"python -c pass: {python_s:.2f} s; import torch: {torch_s:.2f} s; import torch and "
        f"build an SGD optimizer: {optim_s:.2f} s"
    )
    say(f"{'command':40s} {'seconds':>8s} {'target':>8s}  met")
    for name, seconds in measured:
        say(f"{name:40s} {seconds:8.2f} {1.0:8.2f}  {'yes' if seconds < 1.0 else 'no'}")
    target = work_s + optim_s + 1.0
    say(
        f"{'default clbench run':40s} {default_s:8.2f} {target:8.2f}  "
        f"{'yes' if beyond_bare <= 1.0 else 'no'}  (work {work_s:.2f} s + bare PyTorch start "
        f"{optim_s:.2f} s + 1 s; beyond work + bare PyTorch start: {beyond_bare:.2f} s)"
    )
    strict = work_s + torch_s + 1.0
    say(
        f"{'  against import torch alone':40s} {default_s:8.2f} {strict:8.2f}  "
        f"{'yes' if default_s <= strict else 'no'}  (beyond work + import torch: "
        f"{default_s - work_s - torch_s:.2f} s, of which the optimizer's torch._dynamo import "
        f"{optim_s - torch_s:.2f} s)"
    )
    if load.share is not None and load.share > 0.1:
        say(f"NOISY: other processes used {load.share:.0%} of the CPU while this ran")


if __name__ == "__main__":
    main()
