"""The dry run's plan from the specs (no torch) equals the plan read from the built run.

`spec_figures` answers for runs whose every component states its part; these tests build the
same runs (`built_figures`) and compare what the dry run prints, for every registered strategy
and across scenarios, data, model shapes and loop settings.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from clbench.config import build_config
from clbench.engine.dry_run import built_figures, describe
from clbench.engine.spec_plan import (
    check_data_files,
    spec_figures,
    spec_missing_files,
    spec_states,
)
from clbench.errors import ConfigError, DataNotFoundError, IncompatibleError
from clbench.registry import STRATEGIES
from tests.helpers import fast_overrides, strategy_overrides, write_idx

STRATEGY_NAMES = [n for n in STRATEGIES.names() if not n.startswith("_")]


def states_its_plan(strategy: str) -> bool:
    return spec_states(STRATEGIES.spec_of(strategy), "spec_plan")


def assert_same_report(overrides: list[str]) -> None:
    config = build_config(None, overrides)
    from_specs = spec_figures(config)
    assert from_specs is not None, overrides
    built = built_figures(config)
    assert describe(config, from_specs) == describe(config, built)
    assert from_specs.plan.content_hash == built.plan.content_hash


@pytest.mark.parametrize("strategy", STRATEGY_NAMES)
def test_every_strategy_states_its_plan_as_built_or_leaves_it_to_the_build(tmp_path, strategy):
    overrides = strategy_overrides(tmp_path, strategy, tmp_path / "no_backbone.pth")
    if not states_its_plan(strategy):
        assert spec_figures(build_config(None, overrides)) is None
        return
    assert_same_report(overrides)
    # digits images, a memory of its own size, the full test sets evaluated
    digits = [o for o in overrides if not o.startswith(("data.", "scenario.n_experiences"))]
    assert_same_report([*digits, "data.name=digits", "eval.subset_size=-1"])


def test_the_strategies_that_state_their_plan():
    stating = {n for n in STRATEGY_NAMES if states_its_plan(n)}
    assert stating == {
        *(
            "naive",
            "er",
            "der",
            "derpp",
            "er_ace",
            "agem",
            "ewc",
            "online_ewc",
            "si",
            "lwf",
            "gdumb",
        )
    }


VARIANTS = {
    "domain permutation": ["scenario.name=domain_incremental", "scenario.n_experiences=3"],
    "task-incremental": ["scenario.name=task_incremental", "scenario.n_experiences=4"],
    "gaussian schedule (mixed phases)": [
        "scenario.name=gaussian_schedule",
        "scenario.phase_size=50",
        "scenario.n_phases=6",
    ],
    "online": [
        "scenario.name=online",
        "scenario.of={name: class_incremental, n_experiences: 4}",
        "scenario.phase_size=37",
    ],
    "power law (rehearsal parts)": ["scenario.name=power_law", "scenario.kernel=uniform"],
    "images": ["data.image_size=6"],  # (the variants with images drop data.dim)
    "drop_last": ["train.drop_last=true", "train.batch_size=7"],
    "lone trailing sample": ["train.batch_size=59"],
    "adam, host storage": ["train.optimizer=adam", "storage=host"],
    "batch norm": ["model.hidden_sizes=[24,12]", "model.batch_norm=true"],
    "linear model": ["model.hidden_sizes=[]", "train.momentum=0"],
    "slim resnet18": ["data.image_size=9", "model={name: slim_resnet18, nf: 5}"],
    "slim resnet18, global pooling": [
        "data.image_size=16",
        "model={name: slim_resnet18, nf: 3, pooling: global}",
    ],
    "adaptive schedule": ["eval.schedule=adaptive", "eval.dense=3", "eval.refine=0.1"],
    "der": ["strategy.name=der", "strategy.buffer_size=33"],
    "agem": ["strategy.name=agem"],
}


@pytest.mark.parametrize("variant", VARIANTS, ids=list(VARIANTS))
def test_spec_plan_equals_the_built_run(tmp_path, variant):
    base = fast_overrides(tmp_path, **{"strategy.name": "er"})
    for set_by_variant, drop in (
        ("scenario.", "scenario."),
        ("model=", "model."),
        ("data.image", "data.dim"),
    ):
        if any(o.startswith(set_by_variant) for o in VARIANTS[variant]):
            base = [o for o in base if not o.startswith(drop)]
    assert_same_report(base + VARIANTS[variant])


@pytest.mark.parametrize(
    "extra",
    [
        ["plugins.view_batch={}"],  # plugins compose batches: built
        ["model.name=timm", "model.arch=resnet18"],  # counted when built
        ["device=cuda"],  # resolved (and refused without a GPU) by torch
        ["precision=fp16"],  # loss scaling is probed on the device
        ["storage=memmap"],  # builds the cache
    ],
)
def test_what_the_specs_cannot_state_is_left_to_the_build(tmp_path, extra):
    base = [o for o in fast_overrides(tmp_path) if not o.startswith("model.")]
    config = build_config(None, [*base, *extra])
    assert spec_figures(config) is None


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        (["train.augment=crop_flip"], "train.augment"),  # vector inputs
        (["train.scheduler=multistep"], "train.milestones"),
        (["scenario.n_experiences=3"], "scenario.n_experiences"),  # 8 classes
    ],
)
def test_bad_input_is_refused_as_a_run_refuses_it(tmp_path, extra, field):
    config = build_config(None, [*fast_overrides(tmp_path), *extra])
    with pytest.raises(ConfigError) as from_specs:
        spec_figures(config)
    with pytest.raises(ConfigError) as built:
        built_figures(config)
    assert from_specs.value.field == built.value.field == field
    assert str(from_specs.value) == str(built.value)


def test_no_gpu_device_file_means_auto_is_the_cpu(tmp_path, monkeypatch):
    from clbench.engine import spec_plan

    config = build_config(None, [*fast_overrides(tmp_path), "device=auto"])
    monkeypatch.setattr(spec_plan, "GPU_DEVICE_FILES", (str(tmp_path / "nvidia*"),))
    assert spec_figures(config) is not None
    Path(tmp_path / "nvidia0").touch()
    assert spec_figures(config) is None


def write_small_mnist(folder: Path) -> None:
    """idx files of 40 + 20 random 28x28 images of 4 classes, gzipped like Debian's package."""
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 40), ("t10k", 20)):
        write_idx(folder / f"{prefix}-images-idx3-ubyte.gz", rng.integers(0, 256, (n, 28, 28)))
        write_idx(folder / f"{prefix}-labels-idx1-ubyte.gz", np.arange(n) % 4)


def test_a_file_source_is_read_for_the_plan_as_the_run_reads_it(tmp_path):
    write_small_mnist(tmp_path / "mnist")
    base = [
        o for o in fast_overrides(tmp_path) if not o.startswith(("data.", "scenario.", "model."))
    ]
    data = ["data.name=mnist", f"data.root={tmp_path / 'mnist'}", "scenario.n_experiences=2"]
    assert_same_report([*base, *data, "scenario.class_order=[0,1,2,3]"])
    assert_same_report([*base, *data, "scenario.class_order=[3,2,1,0]", "model.name=slim_resnet18"])


def test_missing_data_is_reported_from_the_specs(tmp_path):
    config = build_config(None, ["data.name=fashion_mnist", f"data.root={tmp_path}"])
    (message,) = spec_missing_files(config)
    assert "fashion_mnist: data files not found" in message and str(tmp_path) in message
    with pytest.raises(DataNotFoundError, match="fashion_mnist: data files not found"):
        check_data_files(config)
    # a model that may need files of its own: the built run's check lists them all
    timm = build_config(None, [f"data.root={tmp_path}", "model.name=timm", "model.arch=resnet18"])
    assert spec_missing_files(timm) is None


def test_a_scenario_the_strategy_does_not_support_is_refused_as_a_run_refuses_it(tmp_path):
    base = [o for o in fast_overrides(tmp_path) if not o.startswith("scenario.")]
    config = build_config(None, [*base, "strategy.name=er_ace", "scenario.name=domain_incremental"])
    with pytest.raises(IncompatibleError) as from_specs:
        spec_figures(config)
    with pytest.raises(IncompatibleError) as built:
        built_figures(config)
    assert str(from_specs.value) == str(built.value)
    assert "supports class, task-incremental scenarios, not domain" in str(built.value)
