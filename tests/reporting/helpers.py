"""Run folders with known numbers, shared by the reporting tests: hand-written ones (`write_run`)
and copies of real runs with hand-made records (`write_hand_runs`)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pandas as pd
import yaml


def write_run(
    root: Path,
    name: str,
    *,
    strategy: str = "er",
    seed: int = 0,
    metrics: dict[str, Any] | None = None,
    budget: dict[str, Any] | None = None,
    tags: dict[str, str] | None = None,
    status: str = "finished",
    eval_every: int = 1,
    buffer_size: int | None = 200,
    strategy_report: dict[str, Any] | None = None,
    config: dict[str, dict[str, Any]] | None = None,
) -> Path:
    """A run folder as `run_job` writes it, with the metric values given."""
    path = root / name
    path.mkdir(parents=True)
    strategy_section: dict[str, Any] = {"name": strategy}
    if buffer_size is not None and strategy == "er":
        strategy_section["buffer_size"] = buffer_size
    sections = {
        "data": {"name": "synthetic", "root": None, "num_classes": 8},
        "scenario": {"name": "class_incremental", "n_experiences": 4},
        "model": {"name": "mlp", "hidden_sizes": [32]},
        "strategy": strategy_section,
        "train": {"epochs": 1, "lr": 0.05},
        "eval": {"every": eval_every, "subset_size": 40, "batch_size": 1024},
        "output": {"root": str(root), "tags": tags or {}},
        "seed": seed,
        "threads": 1,
    }
    for section, values in (config or {}).items():  # e.g. {"checkpoint": {"every": 100}}
        sections[section] = {**sections.get(section, {}), **values}
    (path / "config.yaml").write_text(yaml.safe_dump(sections))
    if status == "finished":
        summary = {
            "run_id": name,
            "seed": seed,
            "tags": tags or {},
            "metrics": {"per_task_final_acc": [1.0, 0.5], **(metrics or {})},
            "budget": {"updates": 64, "train_time_s": 1.0, "phase_end_steps": [32, 64]}
            | (budget or {}),
            "strategy_report": strategy_report or {},
        }
        (path / "summary.json").write_text(json.dumps(summary))
        pd.DataFrame({"step": [0], "task": [0], "n": [10], "correct": [5]}).to_parquet(
            path / "records.parquet"
        )
    (path / "status.json").write_text(json.dumps({"status": status}))
    return path


# Hand-made records (2 tasks, 2 phases, boundary at step 2, n = 10 per evaluation) for two seeds
# of one setting; the seed statistics test_plot.py expects are computed by hand there.
SUBSET = {  # seed -> {task: correct at steps 0..4 (None: not evaluated)}
    0: {0: [0, 5, 10, 6, 8], 1: [None, None, None, 4, 9]},
    1: {0: [2, 7, 10, 4, 6], 1: [None, None, None, 6, 7]},
}


PREUPDATE = {0: {0: 10, 1: 0}, 1: {0: 10, 1: 2}}  # phase-1 rows at step 2 (left out of curves)


FULL = {0: [[10, 1], [7, 9]], 1: [[8, 0], [5, 10]]}  # seed -> R[phase][task] correct


FINAL_ACC = {0: 0.8, 1: 0.75}


def hand_records(seed: int) -> pd.DataFrame:
    rows = []
    for task, values in SUBSET[seed].items():
        for step, correct in enumerate(values):
            if correct is not None:
                phase = 0 if step <= 2 else 1
                rows.append((step, phase, phase, task, "subset", 10, correct, 0.5))
    for task, correct in PREUPDATE[seed].items():
        rows.append((2, 1, 1, task, "subset", 10, correct, 0.5))
    for phase, row in enumerate(FULL[seed]):
        for task, correct in enumerate(row):
            rows.append((2 + 2 * phase, phase, phase, task, "full", 10, correct, 0.5))
    columns = ["step", "phase", "current_task", "task", "kind", "n", "correct", "loss"]
    return pd.DataFrame(rows, columns=columns)


def write_hand_runs(real: Path, root: Path) -> dict[str, Path]:
    """Copies of real er seeds 0/1 (one setting) and naive seed 0 with the hand-made records,
    training loss and summaries: configs stay real, numbers become hand-checkable."""
    out = {}
    for name, strategy, seed in (("a0", "er", 0), ("a1", "er", 1), ("b0", "naive", 0)):
        (src,) = [
            p
            for p in real.iterdir()
            if p.name.startswith(f"{strategy}-") and f"-s{seed}-" in p.name
        ]
        dst = root / src.name
        shutil.copytree(src, dst)
        # hand-edited files would not match the run's digests: drop them, as in a folder
        # written before clbench recorded digests (read unverified)
        (dst / "digests.json").unlink()
        hand_records(seed).to_parquet(dst / "records.parquet", index=False)
        loss = pd.DataFrame({"step": [1, 2, 3, 4], "loss": [2.0 - seed, 1.5, 1.0, 0.5]})
        loss.to_parquet(dst / "train_loss.parquet", index=False)
        summary = json.loads((dst / "summary.json").read_text())
        summary["metrics"] = {"final_acc": FINAL_ACC[seed], "aia": 0.9, "fwt": None, "gaps": []}
        summary["budget"]["phase_end_steps"] = [2, 4]
        (dst / "summary.json").write_text(json.dumps(summary))
        out[name] = dst
    return out
