"""A declared treatment (``--treatment``, the suite's ``report.treatment``, ``clbench.report(...,
treatment=...)``): the keys a study varies on purpose are rows that compete for best values,
while every other comparability setting is still checked."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

import clbench
from clbench.cli import main
from clbench.errors import ConfigError
from clbench.reporting import render_report
from clbench.reporting.aggregate import AggregateOptions
from tests.reporting.helpers import write_run
from tests.sweep.helpers import FAST_BASE, write_suite

# final_acc per kernel over seeds 0, 1, 2 (hand-picked). Paired over the seeds, uniform (mean
# 0.85) beats exponential (differences 0.30, 0.33, 0.35) and none (0.60, 0.63, 0.69) by far; power
# (0.02, -0.01, 0.02) is not significantly worse, so the best group is {uniform, power}.
FINAL_ACC = {
    "exponential": [0.50, 0.52, 0.55],
    "none": [0.20, 0.22, 0.21],
    "power": [0.78, 0.86, 0.88],
    "uniform": [0.80, 0.85, 0.90],
}


def power_law_run(root: Path, kernel: str, seed: int, acc: float, **scenario: int) -> Path:
    """A finished hand-made run of a power-law environment with this lag kernel."""
    return write_run(
        root,
        f"{kernel}-{seed}-{'-'.join(f'{k}{v}' for k, v in scenario.items())}",
        seed=seed,
        metrics={"final_acc": acc},
        config={"scenario": {"name": "power_law", "kernel": kernel, **scenario}},
    )


@pytest.fixture
def kernels(tmp_path: Path) -> Path:
    """Four kernels x three seeds of one power-law environment, nothing else differing."""
    root = tmp_path / "results"
    for kernel, accs in FINAL_ACC.items():
        for seed, acc in enumerate(accs):
            power_law_run(root, kernel, seed, acc)
    return root


# Means by hand; each interval is mean ± t(0.975, 2) · s / √3 with t = 4.303: power s = 0.0529
# (± 0.131), uniform s = 0.05 (± 0.124), exponential s = 0.0252 (± 0.063), none s = 0.01 (± 0.025).
GOLDEN = """\
| setting | n | final_acc ↑ |
|:---|---:|---:|
| scenario.kernel=exponential | 3 | 0.523 [0.461, 0.586] |
| scenario.kernel=none | 3 | 0.210 [0.185, 0.235] |
| scenario.kernel=power | 3 | **0.840 [0.709, 0.971]** |
| scenario.kernel=uniform | 3 | **0.850 [0.726, 0.974]** |

- treatment: scenario.kernel, varied on purpose: each value is its own row and competes for \
best values; every other data, scenario, evaluation, metric and epoch setting is still checked \
for comparability
"""


def test_treatment_rows_are_labelled_by_kernel_compared_and_best_marked(kernels):
    text = render_report([kernels], metrics=["final_acc"], treatment=["scenario.kernel"]).text
    assert text.split("\n_mean", 1)[0] == GOLDEN  # the legend (_mean ..._) is the report's own
    assert "not comparable" not in text


def test_without_a_treatment_the_kernels_are_footnoted_and_nothing_is_bold(kernels):
    text = render_report([kernels], metrics=["final_acc"]).text
    for kernel in ("none", "power", "uniform"):
        assert f"not comparable: scenario.kernel={kernel} (most runs: exponential)" in text
    assert "**" not in text  # only one comparable row is left: no best group


def test_another_scenario_setting_is_still_flagged(kernels):
    power_law_run(kernels, "power", 0, 0.99, n_experiences=2)  # the best number, another stream
    result = render_report(
        [kernels], metrics=["final_acc"], treatment=["scenario.kernel"], fmt="csv"
    )
    rows = result.tables[0].rows
    other = next(row for row in rows if row.keys.get("scenario.n_experiences") == 2)
    assert other.label == "scenario.kernel=power, scenario.n_experiences=2"
    assert other.notes == [
        "not comparable: scenario.n_experiences=2 (most runs: 4); left out of best values"
    ]
    assert not other.best
    best = sorted(row.label for row in rows if "final_acc" in row.best)
    assert best == [
        "scenario.kernel=power, scenario.n_experiences=4",
        "scenario.kernel=uniform, scenario.n_experiences=4",
    ]
    assert all(row.comparable for row in rows if row is not other)


def test_a_treatment_name_compares_the_section_within_each_name(tmp_path):
    """With scenario.name the treatment, the class-incremental row has no kernel (no
    difference: it is another scenario on purpose), and the power-law rows are still checked
    against each other."""
    for seed, acc in enumerate([0.5, 0.6]):
        write_run(tmp_path, f"ci-{seed}", seed=seed, metrics={"final_acc": acc})
        power_law_run(tmp_path, "power", seed, acc + 0.2)
    power_law_run(tmp_path, "power", 0, 0.9, n_experiences=5)
    result = render_report([tmp_path], metrics=["final_acc"], treatment=["scenario.name"])
    notes = {row.label: row.notes for row in result.tables[0].rows}
    assert notes == {
        "class_incremental": [],
        "power_law (scenario.n_experiences=4)": [],
        "power_law (scenario.n_experiences=5)": [
            "not comparable: scenario.n_experiences=5 (most runs: 4); left out of best values"
        ],
    }


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["--treatment", "scenario.kernl"],
            "--treatment: got 'scenario.kernl'; allowed: a config key that varies between the "
            "runs (close matches: scenario.kernel): scenario.kernel",
        ),
        (
            ["--treatment", "scenario.kernel,train.lr"],
            "--treatment: got 'train.lr'; allowed: a config key that varies between the runs "
            "(train.lr is 0.05 in every run): scenario.kernel",
        ),
        (
            ["--treatment", "seed"],
            "--treatment: got 'seed'; allowed: a config key that varies between the runs (seeds, "
            "tags, output, threads and device are no treatment): scenario.kernel",
        ),
        (
            ["--treatment", "scenario.kernel", "--split-by", "scenario.kernel"],
            "--treatment: got 'scenario.kernel'; allowed: a key that is not also a --split-by "
            "key (a treatment is compared within one table)",
        ),
    ],
)
def test_bad_treatment_exits_2_naming_it_before_writing(kernels, tmp_path, capsys, argv, message):
    out = tmp_path / "board.md"
    assert main(["report", str(kernels), *argv, "--out", str(out)]) == 2
    assert capsys.readouterr().err.strip() == f"clbench: error: {message}"
    assert not out.exists()


def test_python_api_refuses_the_same_keys(kernels):
    with pytest.raises(ConfigError, match=r"--treatment: got 'scenario\.beta'"):
        clbench.report(kernels, treatment=["scenario.beta"])


def test_aggregate_compares_the_treatment_as_methods_over_the_scenarios(kernels):
    """Without a treatment the kernels are scenarios pooled into one method; with it, each kernel
    is a method, and the scenarios are what else varies (here the dataset)."""
    for kernel, accs in FINAL_ACC.items():  # the same study on a second dataset
        for seed, acc in enumerate(accs):
            write_run(
                kernels,
                f"digits-{kernel}-{seed}",
                seed=seed,
                metrics={"final_acc": acc - 0.1},
                config={
                    "data": {"name": "digits"},
                    "scenario": {"name": "power_law", "kernel": kernel},
                },
            )
    options = AggregateOptions(reps=100)
    pooled = render_report([kernels], metrics=["final_acc"], aggregate=options)
    (aggregate,) = pooled.aggregates
    assert [m.label for m in aggregate.methods] == ["er"]
    assert aggregate.scenario_keys == ["data.name", "scenario.kernel"]

    result = render_report(
        [kernels], metrics=["final_acc"], aggregate=options, treatment=["scenario.kernel"]
    )
    (aggregate,) = result.aggregates
    assert aggregate.scenario_keys == ["data.name"] and aggregate.scenarios == [
        "digits",
        "synthetic",
    ]
    labels = [m.label for m in aggregate.methods]  # best IQM first
    assert labels[:2] == ["scenario.kernel=uniform", "scenario.kernel=power"]
    assert sorted(labels[2:]) == ["scenario.kernel=exponential", "scenario.kernel=none"]
    with pytest.raises(ConfigError, match=r"--aggregate-by: got 'scenario\.kernel'"):
        render_report(
            [kernels],
            aggregate=AggregateOptions(scenario_keys=("scenario.kernel",)),
            treatment=["scenario.kernel"],
        )


# --- real runs: the suite's report section, the command line and the Python API ----------------


def test_suite_cli_and_python_api_give_the_same_treatment_table(tmp_path, capsys):
    base = copy.deepcopy(FAST_BASE)
    base["scenario"] = {
        "name": "power_law",
        "base": {"name": "class_incremental", "n_experiences": 4},
    }
    base["train"]["epochs"] = 1
    metrics = ["final_acc", "forgetting"]
    suite = write_suite(
        tmp_path,
        base=base,
        grid={"scenario.kernel": ["uniform", "none"]},
        seeds="0-1",
        report={"treatment": ["scenario.kernel"], "metrics": metrics},
    )
    board = tmp_path / "board.md"
    assert main(["sweep", str(suite), "--jobs", "1", "--report", str(board)]) == 0
    assert f"report: {board}" in capsys.readouterr().out
    text = board.read_text()
    root = str(tmp_path / "out")
    assert main(["report", root, "--metrics", *metrics, "--treatment", "scenario.kernel"]) == 0
    assert capsys.readouterr().out == text
    api = clbench.report(root, metrics=metrics, treatment=["scenario.kernel"])
    assert api.to_markdown() == text
    assert list(api.to_frame()["scenario.kernel"]) == ["none", "uniform"]
    assert "| scenario.kernel=none | 2 |" in text and "| scenario.kernel=uniform | 2 |" in text
    assert "treatment: scenario.kernel, varied on purpose" in text
    assert "not comparable" not in text
    # the same runs without the declaration: the footnote
    assert main(["report", root, "--metrics", *metrics]) == 0
    assert "not comparable: scenario.kernel=uniform (most runs: none)" in capsys.readouterr().out


def test_a_suite_with_a_misspelt_treatment_is_refused_before_any_run(tmp_path, capsys):
    base = copy.deepcopy(FAST_BASE)
    base["scenario"] = {"name": "power_law", "base": {"name": "class_incremental"}}
    suite = write_suite(
        tmp_path,
        base=base,
        grid={"scenario.kernel": ["uniform", "none"]},
        report={"treatment": ["scenario.kernell"]},
    )
    assert main(["sweep", str(suite), "--dry-run"]) == 2
    assert "suite report.treatment" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
