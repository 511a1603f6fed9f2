"""`clbench report --aggregate`: IQM and probability of improvement over scenarios, with
stratified-bootstrap intervals (clbench/reporting/aggregate.py). Numbers are checked against
values worked out by hand from the inputs written here."""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

from clbench.cli import main
from clbench.errors import ClbenchError, ConfigError
from clbench.reporting import render_report
from clbench.reporting.aggregate import (
    AggregateOptions,
    iqm,
    probability_of_improvement,
    stratified_interval,
)
from tests.reporting.helpers import write_run

# --- the statistics, by hand -------------------------------------------------------------------


def test_iqm_pools_all_runs_and_averages_the_middle_half():
    # 8 values: trim_mean(0.25) drops 2 at each end, whichever scenario they come from
    samples = [np.array([0.0, 0.3, 0.35, 1.0]), np.array([0.4, 0.5, 0.9, 0.95])]
    assert iqm(samples) == pytest.approx((0.35 + 0.4 + 0.5 + 0.9) / 4)
    # 6 values: floor(6 / 4) = 1 dropped at each end
    assert iqm([np.array([1.0, 2.0, 100.0]), np.array([3.0, 4.0, 5.0])]) == pytest.approx(3.5)
    # 10 values: floor(10 / 4) = 2 dropped at each end
    assert iqm([np.arange(5.0), np.arange(5.0, 9.0), np.array([90.0])]) == pytest.approx(4.5)


def test_probability_of_improvement_equals_pair_counts_with_ties_as_half():
    x = [np.array([0.5, 0.7]), np.array([0.8, 0.6, 0.9])]
    y = [np.array([0.6, 0.6]), np.array([0.6, 0.7])]
    # scenario 1: 0.7 beats both 0.6s, 0.5 beats none: 2/4
    # scenario 2: 0.8 beats 2, 0.6 ties 0.6 (1/2) and loses to 0.7, 0.9 beats 2: 4.5/6
    assert probability_of_improvement(x, y) == pytest.approx((2 / 4 + 4.5 / 6) / 2)
    assert probability_of_improvement(y, x) == pytest.approx(1 - (2 / 4 + 4.5 / 6) / 2)
    assert probability_of_improvement([np.ones(3)], [np.ones(2)]) == 0.5


def _rng() -> np.random.Generator:
    return np.random.default_rng(7)


def test_interval_contains_the_estimate_and_shrinks_with_more_runs():
    draw = np.random.default_rng(1)
    few = [draw.normal(0.6, 0.1, 3), draw.normal(0.3, 0.1, 3)]
    many = [draw.normal(0.6, 0.1, 30), draw.normal(0.3, 0.1, 30)]
    widths = []
    for samples in (few, many):
        found = stratified_interval(iqm, samples, 2000, _rng())
        assert found.low is not None and found.high is not None
        assert found.low <= found.estimate <= found.high
        widths.append(found.high - found.low)
    assert widths[1] < widths[0] / 2


def test_bootstrap_resamples_within_scenarios_only():
    # each scenario's runs agree: redrawing within scenarios changes nothing, while a bootstrap
    # pooling the runs of both scenarios would mix 0.2s and 0.8s and give a wide interval
    samples = [np.full(4, 0.2), np.full(4, 0.8)]
    found = stratified_interval(iqm, samples, 500, _rng())
    assert (found.low, found.estimate, found.high) == pytest.approx((0.5, 0.5, 0.5))

    def poi(parts: list[np.ndarray]) -> np.ndarray:
        return probability_of_improvement(parts[:2], parts[2:])

    better = [np.array([0.5, 0.6]), np.array([0.9, 0.95])]
    worse = [np.array([0.1, 0.2]), np.array([0.7, 0.8])]  # beats `better` across scenarios
    found = stratified_interval(poi, better + worse, 500, _rng())
    assert (found.low, found.estimate, found.high) == (1.0, 1.0, 1.0)


def test_one_run_scenarios_are_held_fixed_and_alone_give_no_interval():
    # 0.5 is kept; the other scenario redraws to {0.1, 0.1}, {0.1, 0.9} or {0.9, 0.9}: the plain
    # mean (3 values, nothing trimmed) is 0.7/3, 1.5/3 or 2.3/3, the extremes each 1/4 likely
    found = stratified_interval(iqm, [np.array([0.5]), np.array([0.1, 0.9])], 2000, _rng())
    assert found.estimate == pytest.approx(0.5)
    assert (found.low, found.high) == pytest.approx((0.7 / 3, 2.3 / 3))
    alone = stratified_interval(iqm, [np.array([0.5]), np.array([0.7])], 2000, _rng())
    assert alone.estimate == pytest.approx(0.6) and alone.low is None and alone.high is None


def test_a_fixed_seed_reproduces_the_intervals():
    samples = [np.array([0.1, 0.4, 0.35, 0.8]), np.array([0.5, 0.52, 0.9])]
    first = stratified_interval(iqm, samples, 300, np.random.default_rng(3))
    again = stratified_interval(iqm, samples, 300, np.random.default_rng(3))
    other = stratified_interval(iqm, samples, 300, np.random.default_rng(4))
    assert first == again
    assert (first.low, first.high) != (other.low, other.high)


def test_options_are_checked():
    with pytest.raises(ConfigError, match="--bootstrap-reps"):
        AggregateOptions(reps=0)


# --- run folders with hand-picked numbers --------------------------------------------------------

# final_acc and forgetting per method and scenario, 3 seeds each
SCORES: dict[str, dict[str, tuple[list[float], list[float]]]] = {
    "er": {
        "digits": ([0.80, 0.82, 0.84], [0.1, 0.2, 0.3]),
        "synthetic": ([0.60, 0.62, 0.64], [0.1, 0.2, 0.3]),
    },
    "lwf": {
        "digits": ([0.70, 0.82, 0.83], [0.15, 0.25, 0.35]),
        "synthetic": ([0.50, 0.63, 0.65], [0.05, 0.06, 0.07]),
    },
    "naive": {
        "digits": ([0.20, 0.21, 0.22], [0.9, 0.9, 0.9]),
        "synthetic": ([0.10, 0.11, 0.12], [0.9, 0.9, 0.9]),
    },
}
# IQM of the 6 runs: drop the lowest and highest, average 4
IQM_FINAL = {"er": (0.62 + 0.64 + 0.80 + 0.82) / 4, "lwf": 0.70, "naive": 0.16}
IQM_FORGETTING = {"er": 0.2, "lwf": (0.06 + 0.07 + 0.15 + 0.25) / 4, "naive": 0.9}
# P(er > lwf) on final_acc: digits 0.80>0.70; 0.82>0.70, =0.82 (1/2); 0.84>all: 5.5/9;
# synthetic 0.60>0.50; 0.62>0.50; 0.64>0.50,0.63: 4/9
POI_ER_LWF_FINAL = (5.5 / 9 + 4 / 9) / 2
# P(er better than lwf) on forgetting (lower is better): digits 0.1<3, 0.2<2, 0.3<1: 6/9;
# synthetic never lower: 0
POI_ER_LWF_FORGETTING = (6 / 9 + 0) / 2


def write_scenario_run(root: Path, strategy: str, data: str, seed: int, **kwargs: Any) -> Path:
    """`write_run`'s folder with another dataset: the scenario axis of an aggregate."""
    final, forgetting = SCORES[strategy][data]
    metrics = {"final_acc": final[seed], "forgetting": forgetting[seed]}
    path = write_run(
        root, f"{strategy}-{data}-{seed}", strategy=strategy, seed=seed, metrics=metrics, **kwargs
    )
    config = yaml.safe_load((path / "config.yaml").read_text())
    config["data"]["name"] = data
    (path / "config.yaml").write_text(yaml.safe_dump(config))
    return path


@pytest.fixture
def two_scenarios(tmp_path: Path) -> Path:
    root = tmp_path / "results"
    for strategy, per_data in SCORES.items():
        for data in per_data:
            for seed in range(3):
                write_scenario_run(root, strategy, data, seed)
    return root


def _aggregate(root: Path, **kwargs: Any):
    options = kwargs.pop("options", AggregateOptions(reps=500))
    return render_report([root], aggregate=options, **kwargs)


def test_report_aggregate_numbers_equal_hand_computed(two_scenarios):
    result = _aggregate(two_scenarios, metrics=["final_acc", "forgetting"])
    (found,) = result.aggregates
    assert found.scenarios == ["digits", "synthetic"] and found.scenario_keys == ["data.name"]
    labels = [m.label for m in found.methods]
    assert labels == ["er", "lwf", "naive"]  # best final_acc IQM first
    for method in found.methods:
        assert len(method.runs) == 6 and method.n == {"final_acc": 6, "forgetting": 6}
        final, forgetting = method.iqm["final_acc"], method.iqm["forgetting"]
        assert final.estimate == pytest.approx(IQM_FINAL[method.label])
        assert forgetting.estimate == pytest.approx(IQM_FORGETTING[method.label])
        for interval in (final, forgetting):
            assert interval.low <= interval.estimate + 1e-12 <= interval.high + 2e-12
    er, lwf, naive = range(3)
    final = found.improvement["final_acc"]
    assert final[er, lwf].estimate == pytest.approx(POI_ER_LWF_FINAL)
    assert final[lwf, er].estimate == pytest.approx(1 - POI_ER_LWF_FINAL)
    assert final[lwf, er].low == pytest.approx(1 - final[er, lwf].high)
    assert final[er, naive].estimate == final[lwf, naive].estimate == 1.0
    forgetting = found.improvement["forgetting"]
    assert forgetting[er, lwf].estimate == pytest.approx(POI_ER_LWF_FORGETTING)
    assert forgetting[lwf, er].estimate == pytest.approx(1 - POI_ER_LWF_FORGETTING)
    assert forgetting[naive, er].estimate == 0.0  # higher forgetting everywhere: never better


def test_markdown_shows_iqm_with_interval_and_the_improvement_matrix(two_scenarios, capsys):
    args = ["report", str(two_scenarios), "--aggregate", "--bootstrap-reps", "300"]
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "Over 2 scenario(s): digits; synthetic:" in text
    # the default metrics are final_acc and min_acc; these runs have no min_acc
    assert "| setting | n | scenarios | final_acc IQM [95% CI] ↑ |\n" in text
    assert any(line.startswith("| er | 6 | 2 | 0.720 [") for line in text.splitlines())
    assert "P(row better than column), final_acc ↑:" in text
    assert "| P(row > column) | er | lwf | naive |" in text
    poi = f"{POI_ER_LWF_FINAL:.2f} ["
    assert any(line.startswith(f"| er | – | {poi}") for line in text.splitlines())
    assert "2000 resamples" not in text and "300 resamples" in text and "seed 0" in text


def test_same_seed_same_report_other_seed_other_intervals(two_scenarios, capsys):
    outputs = []
    for seed in ("5", "5", "6"):
        assert main(["report", str(two_scenarios), "--aggregate", "--seed", seed]) == 0
        outputs.append(capsys.readouterr().out)
    assert outputs[0] == outputs[1]
    assert outputs[0].replace("seed 5", "seed 6") != outputs[2]


def test_a_methods_interval_does_not_depend_on_the_other_methods(two_scenarios):
    (before,) = _aggregate(two_scenarios, metrics=["final_acc"]).aggregates
    for data in ("digits", "synthetic"):
        for seed in range(3):
            path = two_scenarios / f"naive-{data}-{seed}"
            for file in path.iterdir():
                file.unlink()
            path.rmdir()
    (after,) = _aggregate(two_scenarios, metrics=["final_acc"]).aggregates
    assert [m.label for m in after.methods] == ["er", "lwf"]
    assert after.methods[0].iqm == before.methods[0].iqm
    assert after.improvement["final_acc"][0, 1] == before.improvement["final_acc"][0, 1]


def test_metrics_all_takes_every_metric_with_a_direction(two_scenarios):
    (found,) = _aggregate(two_scenarios, metrics=["all"]).aggregates
    names = [c.name for c in found.columns]
    assert {"final_acc", "forgetting", "train_time_s"} <= set(names) and "updates" not in names


def test_lower_is_better_first_metric_orders_lowest_first(two_scenarios):
    (found,) = _aggregate(two_scenarios, metrics=["forgetting"]).aggregates
    assert [m.label for m in found.methods] == ["lwf", "er", "naive"]
    assert found.improvement["forgetting"][1, 0].estimate == pytest.approx(POI_ER_LWF_FORGETTING)


def test_a_method_missing_on_a_scenario_is_refused_naming_both(two_scenarios, capsys):
    for seed in range(3):
        path = two_scenarios / f"lwf-synthetic-{seed}"
        for file in path.iterdir():
            file.unlink()
        path.rmdir()
    assert main(["report", str(two_scenarios), "--aggregate"]) == 2
    err = capsys.readouterr().err
    assert "'lwf' on 'synthetic'" in err and "every scenario" in err
    with pytest.raises(ClbenchError, match="'lwf' on 'synthetic'"):
        _aggregate(two_scenarios)


def test_options_that_do_not_fit_are_refused(two_scenarios, capsys):
    root = str(two_scenarios)
    assert main(["report", root, "--bootstrap-reps", "10"]) == 2
    assert "--bootstrap-reps: got 10; allowed: only with --aggregate" in capsys.readouterr().err
    assert main(["report", root, "--aggregate", "--baseline", "naive"]) == 2
    assert "--baseline" in capsys.readouterr().err
    assert main(["report", root, "--aggregate", "--metrics", "updates"]) == 2
    assert "--metrics: got 'updates'" in capsys.readouterr().err  # no direction, no ranking
    assert main(["report", root, "--aggregate", "--aggregate-by", "data.nme"]) == 2
    assert "close matches: data.name" in capsys.readouterr().err


def test_aggregate_by_and_group_by_choose_scenarios_and_methods(tmp_path):
    root = tmp_path / "results"
    for data in ("digits", "synthetic"):
        for seed in range(3):
            write_scenario_run(root, "er", data, seed, buffer_size=200)
            write_scenario_run(root / "small", "er", data, seed, buffer_size=50)
    (found,) = _aggregate(root, metrics=["final_acc"]).aggregates
    # labelled as report rows (only the varying key); equal scores keep the value order
    assert [m.label for m in found.methods] == ["buffer_size=50", "buffer_size=200"]
    (pooled,) = _aggregate(
        root,
        metrics=["final_acc"],
        group_by=["strategy.name"],
        options=AggregateOptions(scenario_keys=("data.name",), reps=200),
    ).aggregates
    assert [m.label for m in pooled.methods] == ["er"] and len(pooled.methods[0].runs) == 12
    assert pooled.improvement["final_acc"] == {}  # one method: no pairs
    # pooling the scenarios leaves every run in one
    (one,) = _aggregate(
        root, metrics=["final_acc"], options=AggregateOptions(scenario_keys=("strategy.name",))
    ).aggregates
    assert one.scenarios == ["er"] and len(one.methods) == 2


def test_gtep_phases_get_an_aggregate_each(tmp_path):
    root = tmp_path / "results"
    for phase in ("evaluation", "tuning"):
        for strategy in ("er", "naive"):
            for data in ("digits", "synthetic"):
                for seed in range(3):
                    write_scenario_run(root / phase, strategy, data, seed, tags={"phase": phase})
    found = _aggregate(root, metrics=["final_acc"]).aggregates
    assert [a.title for a in found] == ["phase: tuning", "phase: evaluation"]
    assert all(len(a.methods) == 2 and len(a.scenarios) == 2 for a in found)


# --- formats -------------------------------------------------------------------------------------


def test_csv_has_plain_numbers_for_iqm_and_improvement_rows(two_scenarios, tmp_path, capsys):
    out = tmp_path / "agg.csv"
    assert main(["report", str(two_scenarios), "--aggregate", "--out", str(out)]) == 0
    assert "1 aggregate(s) of 3 method(s) from 18 run(s)" in capsys.readouterr().err
    frame = pd.read_csv(out)
    assert list(frame.columns[:5]) == ["kind", "metric", "direction", "label", "versus"]
    iqm_rows = frame[(frame.kind == "iqm") & (frame.metric == "final_acc")].set_index("label")
    assert iqm_rows.loc["er", "estimate"] == pytest.approx(IQM_FINAL["er"])
    assert iqm_rows.loc["er", "n"] == 6 and iqm_rows.loc["er", "scenarios"] == 2
    assert frame["low"].dtype == float and frame["estimate"].dtype == float
    pairs = frame[(frame.kind == "improvement") & (frame.metric == "final_acc")]
    assert len(pairs) == 6  # 3 methods, every ordered pair
    er_lwf = pairs[(pairs.label == "er") & (pairs.versus == "lwf")].iloc[0]
    assert er_lwf["estimate"] == pytest.approx(POI_ER_LWF_FINAL)
    assert list(frame.metric.unique()) == ["final_acc"]  # min_acc absent from these runs


def test_latex_and_html_render_the_same_numbers(two_scenarios):
    latex = _aggregate(two_scenarios, fmt="latex").text
    assert latex.count(r"\begin{tabular}") == latex.count(r"\end{tabular}") == 2
    assert r"final\_acc IQM [95\% CI] $\uparrow$" in latex
    assert r"\toprule" in latex and "0.720 [" in latex
    page = _aggregate(two_scenarios, fmt="html").text
    root = ET.fromstring(page.split("\n", 1)[1])  # well-formed XML
    tables = root.findall(".//table")
    assert len(tables) == 2
    cells = [["".join(td.itertext()) for td in tr.findall("td")] for tr in tables[1].iter("tr")]
    er = next(c for c in cells if c and c[0] == "er")
    assert er[1] == "–" and er[2].startswith(f"{POI_ER_LWF_FINAL:.2f} [")


def test_csv_parses_as_one_table(two_scenarios):
    text = _aggregate(two_scenarios, fmt="csv", metrics=["final_acc", "forgetting"]).text
    frame = pd.read_csv(io.StringIO(text))
    assert set(frame.kind) == {"iqm", "improvement"} and len(frame) == 2 * (3 + 6)
