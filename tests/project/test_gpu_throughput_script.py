"""benchmarks/gpu_throughput.py runs end to end: its --quick CPU smoke run (compile off, about
20 s on one thread) prints the ratio table with a row per model and precision."""

from __future__ import annotations

import os
import re
import subprocess
import sys

from tests.helpers import REPO

MODELS = ("resnet18", "vit")
PRECISIONS = ("fp32", "bf16", "fp16")
NUMBER = r"[\d,]+"
# model prec CL compile, then clbench/bare/ratio for training and for evaluation
MEASURED = re.compile(
    rf"^(\S+)\s+(fp32|bf16|fp16)\s+(on|off)\s+(on|off)\s+{NUMBER}\s+{NUMBER}\s+(\d+\.\d\d)\s+"
    rf"{NUMBER}\s+{NUMBER}\s+(\d+\.\d\d)\s"
)
SKIPPED = re.compile(r"^(\S+)\s+(fp32|bf16|fp16)\s+(on|off)\s+(on|off)\s+skipped: ")


def test_quick_run_prints_a_ratio_table_for_both_models_and_every_precision():
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, "benchmarks/gpu_throughput.py", "--quick", "--device", "cpu",
         "--no-compile"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    lines = done.stdout.splitlines()
    header = next(i for i, text in enumerate(lines) if text.startswith("model "))
    assert "train clbench" in lines[header] and "eval clbench" in lines[header]
    assert "ratio" in lines[header] and "MiB" in lines[header]

    measured: dict[tuple[str, str, str], tuple[float, float]] = {}
    skipped: set[tuple[str, str, str]] = set()
    for text in lines[header + 2 :]:
        if m := MEASURED.match(text):
            assert m[4] == "off"  # --no-compile
            measured[(m[1], m[2], m[3])] = (float(m[5]), float(m[6]))
        elif m := SKIPPED.match(text):
            skipped.add((m[1], m[2], m[3]))
    rows = set(measured) | skipped
    for model in MODELS:
        for precision in PRECISIONS:
            assert (model, precision, "off") in rows, (model, precision, done.stdout)
        # fp32 runs everywhere; bf16 / fp16 may be skipped with a note on some CPUs
        assert (model, "fp32", "off") in measured
    # the conv net also runs channels_last, the ViT does not
    assert ("resnet18", "fp32", "on") in rows
    assert not any(model == "vit" and cl == "on" for model, _, cl in rows)
    for train_ratio, eval_ratio in measured.values():
        assert 0 < train_ratio < 100 and 0 < eval_ratio < 100
