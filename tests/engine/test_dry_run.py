"""The dry run's plan from the specs (no torch) equals the plan read from the built run.

`spec_figures` answers for runs whose every component states its part; these tests build the
same runs (`built_figures`) and compare what the dry run prints, for every registered strategy
and across scenarios, data, model shapes and loop settings.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from clbench.config import build_config
from clbench.engine.dry_run import built_figures, describe
from clbench.engine.spec_plan import spec_figures, spec_states
from clbench.errors import ConfigError
from clbench.registry import STRATEGIES
from tests.helpers import fast_overrides, strategy_overrides

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
    "images": ["data.image_size=6", "data.dim=36"],
    "drop_last": ["train.drop_last=true", "train.batch_size=7"],
    "lone trailing sample": ["train.batch_size=59"],
    "adam, host storage": ["train.optimizer=adam", "storage=host"],
    "batch norm": ["model.hidden_sizes=[24,12]", "model.batch_norm=true"],
    "linear model": ["model.hidden_sizes=[]", "train.momentum=0"],
    "adaptive schedule": ["eval.schedule=adaptive", "eval.dense=3", "eval.refine=0.1"],
    "der": ["strategy.name=der", "strategy.buffer_size=33"],
    "agem": ["strategy.name=agem"],
}


@pytest.mark.parametrize("variant", VARIANTS, ids=list(VARIANTS))
def test_spec_plan_equals_the_built_run(tmp_path, variant):
    base = fast_overrides(tmp_path, **{"strategy.name": "er"})
    if any(o.startswith("scenario.") for o in VARIANTS[variant]):
        base = [o for o in base if not o.startswith("scenario.")]
    assert_same_report(base + VARIANTS[variant])


@pytest.mark.parametrize(
    "extra",
    [
        ["plugins.view_batch={}"],  # plugins compose batches: built
        ["model.name=slim_resnet18", "data.image_size=4", "data.dim=16"],  # counted when built
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
