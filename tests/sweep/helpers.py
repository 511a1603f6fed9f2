"""Suite files shared by the sweep tests: a seconds-long base and a writer."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

# A seconds-long run (as tests/helpers.py fast_overrides), as a suite base mapping.
FAST_BASE: dict[str, Any] = {
    "data": {
        "name": "synthetic",
        "num_classes": 8,
        "dim": 16,
        "train_per_class": 60,
        "test_per_class": 30,
        "noise": 0.5,
    },
    "scenario": {"name": "class_incremental", "n_experiences": 4},
    "model": {"name": "mlp", "hidden_sizes": [32]},
    "strategy": {"name": "er", "buffer_size": 40},
    "train": {"epochs": 2, "batch_size": 16},
    "eval": {"subset_size": 40, "every": 2},
    "output": {"plot": False},
}


def write_suite(tmp_path: Path, name: str = "suite", **fields: Any) -> Path:
    suite = {"name": "t", "base": FAST_BASE, "output": {"root": str(tmp_path / "out")}, **fields}
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(suite, sort_keys=False))
    return path
