"""benchmarks/native_vs_avalanche.py runs end to end: its --quick run (tiny synthetic data, one
repeat) prints a row per pair with both training times and their ratio."""

from __future__ import annotations

import os
import re
import subprocess
import sys

from tests.helpers import REPO

ROW = re.compile(r"^(\w+)\s+(\d+\.\d\d)\s+(\d+\.\d\d)\s+(\d+\.\d\d)x\s+[\d.]+ / [\d.]+")


def test_quick_run_prints_each_pair_with_its_ratio():
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, "benchmarks/native_vs_avalanche.py", "--quick", "--pairs", "er_ace,lwf"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    rows = {m.group(1): m for line in done.stdout.splitlines() if (m := ROW.match(line))}
    assert set(rows) == {"er_ace", "lwf"}, done.stdout
    for m in rows.values():
        native, avalanche, ratio = (float(m.group(i)) for i in (2, 3, 4))
        assert native > 0 and avalanche > 0 and ratio > 0


def test_an_unknown_pair_is_refused():
    done = subprocess.run(
        [sys.executable, "benchmarks/native_vs_avalanche.py", "--quick", "--pairs", "nope"],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 2 and "--pairs: unknown ['nope']" in done.stderr
