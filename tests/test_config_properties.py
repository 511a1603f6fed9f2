"""Property tests over random configs: every invalid one is refused with exit code 2 before any
folder is written; every small valid one runs to a finished folder with metrics in range."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clbench.cli import main

SMALL = {
    "data.name": "synthetic",
    "data.num_classes": 4,
    "data.dim": 8,
    "data.train_per_class": 20,
    "data.test_per_class": 10,
    "scenario.n_experiences": 2,
    "model.hidden_sizes": "[16]",
    "train.epochs": 1,
    "output.plot": "false",
    "threads": 1,
}

# (override, why it is invalid): each must be refused before any work
INVALID = [
    "train.epochs=0",
    "train.epochs=-2",
    "train.epochs=many",
    "train.batch_size=0",
    "train.lr=0",
    "train.lr=-0.1",
    "train.optimizer=rmsprop",
    "train.momentum=1.5",
    "eval.every=0",
    "eval.subset_size=0",
    "eval.subset_size=-7",
    "eval.counter=weekly",
    "strategy.name=no_such_method",
    "strategy.buffer_size=-3",
    "scenario.name=no_such_scenario",
    "scenario.n_experiences=3",  # 4 classes do not split into 3 tasks
    "data.name=imagenet",
    "data.noise=lots",
    "precision=fp8",
    "device=tpu",
    "seed=-1",
    "output.name=../escaped",
    "output.name=a/b",
    "train.epoks=2",
    "checkpoint.every=-1",
    "trainepochs",
]

VALID_CHOICES = {
    "strategy.name": st.sampled_from(["naive", "er", "joint", "fpf", "k_fpf"]),
    "scenario.name": st.sampled_from(["class_incremental", "task_incremental"]),
    "scenario.n_experiences": st.sampled_from([1, 2, 4]),
    "train.batch_size": st.integers(2, 24),
    "train.optimizer": st.sampled_from(["sgd", "adam", "adamw"]),
    "train.lr": st.sampled_from([0.001, 0.01, 0.1]),
    "eval.every": st.integers(1, 6),
    "eval.subset_size": st.sampled_from([-1, 3, 10]),
    "eval.counter": st.sampled_from(["global", "per_phase", "per_epoch"]),
    "checkpoint.every": st.sampled_from([0, 2, 7]),
    "seed": st.integers(0, 3),
}


def overrides(root: Path, chosen: dict[str, object], extra: list[str]) -> list[str]:
    values = {**SMALL, **chosen, "output.root": str(root)}
    return [f"{k}={v}" for k, v in values.items()] + extra


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    chosen=st.fixed_dictionaries({}, optional=VALID_CHOICES),
    bad=st.lists(st.sampled_from(INVALID), min_size=1, max_size=3, unique=True),
)
def test_every_invalid_config_exits_2_and_writes_nothing(chosen, bad):
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "results"
        assert main(["run", "--quiet", *overrides(root, chosen, bad)]) == 2
        assert not root.exists()


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(chosen=st.fixed_dictionaries({}, optional=VALID_CHOICES))
def test_every_small_valid_config_runs_to_a_finished_folder(chosen):
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "results"
        assert main(["run", "--quiet", *overrides(root, chosen, [])]) == 0
        (run_dir,) = root.iterdir()
        assert json.loads((run_dir / "status.json").read_text())["status"] == "finished"
        metrics = json.loads((run_dir / "summary.json").read_text())["metrics"]
        assert 0 <= metrics["final_acc"] <= 1
        assert all(0 <= a <= 1 for a in metrics["per_task_final_acc"])
