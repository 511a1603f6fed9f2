"""`clbench report`: numbers, intervals, best groups, deltas, comparability, phases, skipping,
strategy-report columns and formats."""

from __future__ import annotations

import io
import json
import math
import re
import statistics
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import pytest
import yaml

from clbench.cli import main
from clbench.errors import ClbenchError, ConfigError
from clbench.reporting import render_report
from clbench.reporting.columns import column_spec
from clbench.reporting.command import FORMAT_CHOICES
from clbench.reporting.formats import RENDERERS
from tests.helpers import fast_overrides
from tests.reporting.helpers import write_run

# Student t quantiles with 2 degrees of freedom, closed form (2p - 1) / sqrt(2p(1 - p)); the
# printed tables give 4.303 and 2.920.
T_975_DF2 = 0.95 / math.sqrt(2 * 0.975 * 0.025)
T_95_DF2 = 0.90 / math.sqrt(2 * 0.95 * 0.05)

# --- hand-written run folders with known numbers (`write_run`) ---------------------------------


@pytest.fixture
def three_settings(tmp_path: Path) -> Path:
    """er (3 seeds), naive (1 seed) and lwf (2 seeds) with hand-picked metrics."""
    root = tmp_path / "results"
    for seed, (acc, forg) in enumerate([(0.80, 0.1), (0.85, 0.2), (0.90, 0.3)]):
        write_run(root, f"er-{seed}", seed=seed, metrics={"final_acc": acc, "forgetting": forg})
    write_run(root, "naive-0", strategy="naive", metrics={"final_acc": 0.5, "forgetting": 0.6})
    for seed, (acc, forg) in enumerate([(0.6, 0.04), (0.7, 0.06)]):
        write_run(
            root,
            f"lwf-{seed}",
            strategy="lwf",
            seed=seed,
            metrics={"final_acc": acc, "forgetting": forg},
        )
    return root


def csv_rows(text: str) -> pd.DataFrame:
    return pd.read_csv(io.StringIO(text)).set_index("label")


# --- numbers -------------------------------------------------------------------------------------


def test_means_and_sample_stds_equal_hand_computed(three_settings):
    result = render_report([three_settings], metrics=["final_acc", "forgetting"], fmt="csv")
    rows = csv_rows(result.text)
    assert sorted(rows.index) == ["er", "lwf", "naive"]
    assert rows.loc["er", "n"] == 3 and rows.loc["naive", "n"] == 1
    assert rows.loc["er", "final_acc_mean"] == pytest.approx(0.85)
    assert rows.loc["er", "final_acc_std"] == pytest.approx(statistics.stdev([0.8, 0.85, 0.9]))
    assert rows.loc["er", "forgetting_std"] == pytest.approx(0.1)  # ddof=1, not 0.0816 (ddof=0)
    assert rows.loc["lwf", "final_acc_mean"] == pytest.approx(0.65)
    assert pd.isna(rows.loc["naive", "final_acc_std"])  # one run: no std
    assert result.skipped is None


def _line(text: str, label: str) -> str:
    return next(line for line in text.splitlines() if line.startswith(f"| {label} "))


def test_markdown_cells_show_mean_and_t_interval_and_n(three_settings):
    text = render_report([three_settings], metrics=["final_acc", "forgetting"]).text
    er = _line(text, "er")
    assert er.split("|")[2].strip() == "3"
    # mean ± t_{0.975,2} s/sqrt(3): 0.85 ± 4.303 * 0.05 / 1.732 = 0.85 ± 0.124
    half = T_975_DF2 * 0.05 / math.sqrt(3)
    assert f"0.850 [{0.85 - half:.3f}, {0.85 + half:.3f}]" == "0.850 [0.726, 0.974]"
    assert "0.850 [0.726, 0.974]" in er and "0.200 [-0.048, 0.448]" in er
    naive = _line(text, "naive")
    assert "| 0.500 |" in naive and "[" not in naive  # one run: no interval
    assert "mean [95% confidence interval of the mean, Student t]" in text  # the legend says so


def test_ci_none_shows_mean_pm_std_and_confidence_sets_the_level(three_settings):
    text = render_report([three_settings], metrics=["final_acc"], ci="none").text
    assert "0.850 ± 0.050" in _line(text, "er") and "mean ± sample std (ddof=1)" in text
    text = render_report([three_settings], metrics=["final_acc"], confidence=0.9).text
    half = T_95_DF2 * 0.05 / math.sqrt(3)  # t_{0.95,2} = 2.920
    assert f"0.850 [{0.85 - half:.3f}, {0.85 + half:.3f}]" in _line(text, "er")
    assert "90% confidence interval" in text and "α = 0.1" in text


def test_bootstrap_interval_lies_within_the_values(three_settings):
    rows = csv_rows(
        render_report([three_settings], metrics=["final_acc"], ci="bootstrap", fmt="csv").text
    )
    low, high = rows.loc["er", "final_acc_ci_low"], rows.loc["er", "final_acc_ci_high"]
    assert 0.8 <= low < 0.85 < high <= 0.9  # a resampled mean never leaves the data's range
    assert rows.loc["er", "ci"] == "bootstrap"
    text = render_report([three_settings], metrics=["final_acc"], ci="bootstrap").text
    assert "BCa bootstrap" in text


def test_bad_ci_or_confidence_exits_2_naming_option_value_and_allowed(three_settings, capsys):
    assert main(["report", str(three_settings), "--ci", "normal"]) == 2
    err = capsys.readouterr().err
    assert "--ci" in err and "normal" in err and "bootstrap" in err
    for bad in ("1.5", "0", "1"):
        assert main(["report", str(three_settings), "--confidence", bad]) == 2
        err = capsys.readouterr().err
        assert f"--confidence: got {float(bad)!r}" in err and "between 0 and 1" in err
    with pytest.raises(SystemExit) as exit_info:  # not a number: argparse refuses it
        main(["report", str(three_settings), "--confidence", "high"])
    assert exit_info.value.code == 2
    assert "--confidence: got 'high'; allowed: a number between 0 and 1" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="--ci"):
        render_report([three_settings], ci="normal")


def test_metric_undefined_in_some_runs_counts_only_defined_values(tmp_path):
    write_run(tmp_path, "a", seed=0, metrics={"final_acc": 0.5, "recovery_time_mean": 4.0})
    write_run(tmp_path, "b", seed=1, metrics={"final_acc": 0.7, "recovery_time_mean": None})
    result = render_report([tmp_path], metrics=["recovery_time_mean"], fmt="csv")
    row = csv_rows(result.text).iloc[0]
    assert row["n"] == 2 and row["recovery_time_mean_n"] == 1
    assert row["recovery_time_mean_mean"] == 4.0
    assert "4.0 (n=1)" in render_report([tmp_path], metrics=["recovery_time_mean"]).text


def test_best_value_follows_direction(tmp_path):
    for seed in range(3):
        write_run(
            tmp_path,
            f"hi-{seed}",
            strategy="hi",
            seed=seed,
            metrics={"final_acc": 0.90 + seed / 100, "forgetting": 0.30 + seed / 100},
        )
        write_run(
            tmp_path,
            f"lo-{seed}",
            strategy="lo",
            seed=seed,
            metrics={"final_acc": 0.50 + seed / 100, "forgetting": 0.05 + seed / 100},
        )
    rows = csv_rows(render_report([tmp_path], metrics=["final_acc", "forgetting"], fmt="csv").text)
    # higher final accuracy is better (hi), lower forgetting is better (lo)
    assert rows["final_acc_best"].to_dict() == {"hi": True, "lo": False}
    assert rows["forgetting_best"].to_dict() == {"hi": False, "lo": True}
    md = render_report([tmp_path], metrics=["final_acc", "forgetting"], ci="none").text
    assert "**0.910 ± 0.010**" in md and "**0.060 ± 0.010**" in md
    assert md.count("**") == 4


def test_sort_orders_rows_best_first_in_the_column_direction(three_settings, capsys):
    by_acc = render_report(
        [three_settings], metrics=["final_acc", "forgetting"], fmt="csv", sort_by="final_acc"
    )
    assert list(csv_rows(by_acc.text).index) == ["er", "lwf", "naive"]  # 0.85, 0.65, 0.5
    by_forgetting = render_report(
        [three_settings], metrics=["final_acc", "forgetting"], fmt="csv", sort_by="forgetting"
    )
    assert list(csv_rows(by_forgetting.text).index) == ["lwf", "er", "naive"]  # lower first
    assert main(["report", str(three_settings), "--metrics", "final_acc", "--sort", "aia"]) == 2
    assert "--sort: got 'aia'" in capsys.readouterr().err


def test_direction_table():
    assert column_spec("final_acc").direction == "higher"
    assert column_spec("wp_100").direction == "higher"
    assert column_spec("lca").direction == "higher"
    for lower in ("forgetting", "gap_depth_mean", "recovery_time_mean", "wf_10", "train_time_s"):
        assert column_spec(lower).direction == "lower", lower
    assert column_spec("peak_memory_mb").direction == "lower"
    assert column_spec("checkpoint_time_s").direction == "lower"
    assert column_spec("buffer_size").direction is None  # a setting, not an outcome
    assert column_spec("wf_x").direction is None


def test_ties_are_all_marked_and_so_is_every_row_of_an_all_equal_column(tmp_path):
    for seed in (0, 1):
        write_run(tmp_path, f"a{seed}", strategy="a", seed=seed, metrics={"final_acc": 0.9})
        write_run(tmp_path, f"b{seed}", strategy="b", seed=seed, metrics={"final_acc": 0.9})
        write_run(tmp_path, f"c{seed}", strategy="c", seed=seed, metrics={"final_acc": 0.5})
    for seed in (0, 1):
        for name in "abc":
            path = tmp_path / f"{name}{seed}" / "summary.json"
            summary = json.loads(path.read_text())
            summary["metrics"]["forgetting"] = 0.1
            path.write_text(json.dumps(summary))
    rows = csv_rows(render_report([tmp_path], metrics=["final_acc", "forgetting"], fmt="csv").text)
    # no spread: equal means tie (p = 1), other means differ for sure (p = 0)
    assert rows["final_acc_best"].to_dict() == {"a": True, "b": True, "c": False}
    assert rows["forgetting_best"].all()  # nobody is worse than the best: all in the top group


# --- best groups: Welch or paired t-test, Holm, one-run rows -------------------------------------


@pytest.fixture
def best_groups(tmp_path: Path) -> Path:
    """top (seeds 0-2), same_seeds (seeds 0-2, close), far (seeds 3-5, far below), one (1 run)."""
    values = {
        "top": ([0.90, 0.91, 0.92], [0, 1, 2]),
        "same_seeds": ([0.89, 0.915, 0.90], [0, 1, 2]),
        "far": ([0.50, 0.52, 0.51], [3, 4, 5]),
        "one": ([0.95], [7]),
    }
    for strategy, (accs, seeds) in values.items():
        for acc, seed in zip(accs, seeds, strict=True):
            write_run(
                tmp_path,
                f"{strategy}-{seed}",
                strategy=strategy,
                seed=seed,
                metrics={"final_acc": acc},
            )
    return tmp_path


def test_best_group_is_every_row_not_significantly_worse_after_holm(best_groups):
    rows = csv_rows(render_report([best_groups], metrics=["final_acc"], fmt="csv").text)
    # same seeds: paired test of the differences 0.01, -0.005, 0.02 (df 2)
    diffs = [0.01, -0.005, 0.02]
    t = statistics.mean(diffs) / (statistics.stdev(diffs) / math.sqrt(3))
    p_paired = 1 - t / math.sqrt(2 + t * t)  # two-sided p of the t distribution with df 2
    # other seeds: Welch (equal variances and n here, so its df is 2(n - 1) = 4)
    a, b = [0.90, 0.91, 0.92], [0.50, 0.52, 0.51]
    t_welch = (statistics.mean(a) - statistics.mean(b)) / math.sqrt(
        statistics.variance(a) / 3 + statistics.variance(b) / 3
    )
    from scipy import stats  # the t distribution's tail, not its test

    p_welch = 2 * stats.t.sf(t_welch, 4)
    assert p_welch < p_paired  # Holm: the smaller p times 2, the larger times 1 (then max)
    assert rows.loc["far", "final_acc_p_vs_best"] == pytest.approx(2 * p_welch)
    assert rows.loc["same_seeds", "final_acc_p_vs_best"] == pytest.approx(p_paired)
    assert rows["final_acc_best"].to_dict() == {
        "far": False,
        "one": False,  # the highest mean, but one run cannot be tested: never bold
        "same_seeds": True,
        "top": True,
    }
    assert pd.isna(rows.loc["top", "final_acc_p_vs_best"])  # the top is not tested
    md = render_report([best_groups], metrics=["final_acc"]).text
    assert _line(md, "top").count("**") == 2 and _line(md, "same_seeds").count("**") == 2
    assert "**" not in _line(md, "far") and "**" not in _line(md, "one")
    assert "- a cell over one run (n=1) cannot be tested and is never bold (final_acc)" in md
    assert "bold: not significantly worse than the best row" in md and "Holm" in md


def test_holm_keeps_a_row_whose_raw_p_is_below_alpha_in_the_best_group(tmp_path):
    values = {
        "top": [0.90, 0.92, 0.94],
        "near": [0.84, 0.87, 0.885],  # Welch p = 0.036 against top: below 0.05 alone
        "nearer": [0.89, 0.93, 0.91],  # p = 0.57
    }
    for offset, (strategy, accs) in enumerate(values.items()):
        for i, acc in enumerate(accs):
            seed = 3 * offset + i  # no shared seeds: Welch
            write_run(
                tmp_path,
                f"{strategy}-{i}",
                strategy=strategy,
                seed=seed,
                metrics={"final_acc": acc},
            )
    rows = csv_rows(render_report([tmp_path], metrics=["final_acc"], fmt="csv").text)
    # by hand: Holm multiplies the smaller p (0.036) by 2 = 0.072 > 0.05, so near is not worse
    assert rows.loc["near", "final_acc_p_vs_best"] == pytest.approx(2 * 0.03599, abs=1e-4)
    assert rows["final_acc_best"].all()
    rows = csv_rows(
        render_report([tmp_path], metrics=["final_acc"], fmt="csv", confidence=0.9).text
    )
    assert not rows.loc["near", "final_acc_best"]  # α = 0.1 > 0.072


def test_rows_of_one_run_only_mark_nothing(tmp_path):
    write_run(tmp_path, "a", strategy="a", metrics={"final_acc": 0.9})
    write_run(tmp_path, "b", strategy="b", metrics={"final_acc": 0.5})
    rows = csv_rows(render_report([tmp_path], metrics=["final_acc"], fmt="csv").text)
    assert not rows["final_acc_best"].any()


# --- baseline deltas -----------------------------------------------------------------------------


def test_baseline_deltas_by_key_and_by_label(three_settings):
    for spec in ("strategy.name=naive", "naive"):
        result = render_report(
            [three_settings], metrics=["final_acc", "forgetting"], fmt="csv", baseline=spec
        )
        rows = csv_rows(result.text)
        assert rows.loc["er", "final_acc_delta"] == pytest.approx(0.35)
        assert rows.loc["lwf", "forgetting_delta"] == pytest.approx(0.05 - 0.6)
        assert rows.loc["naive", "final_acc_delta"] == 0
        assert rows["baseline"].to_dict() == {"er": False, "lwf": False, "naive": True}
    md = render_report([three_settings], metrics=["final_acc"], baseline="naive").text
    assert "Δ vs baseline **naive**" in md
    assert "| er | 3 | +0.350 |" in md


def test_deltas_carry_welch_interval_and_p(three_settings):
    rows = csv_rows(
        render_report([three_settings], metrics=["final_acc"], fmt="csv", baseline="lwf").text
    )
    # er (0.80, 0.85, 0.90; seeds 0-2) - lwf (0.6, 0.7; seeds 0-1): other seeds, so Welch
    va, vb = 0.05**2 / 3, statistics.variance([0.6, 0.7]) / 2
    se = math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va**2 / 2 + vb**2 / 1)
    from scipy import stats  # the t distribution, not its tests

    half = stats.t.ppf(0.975, df) * se
    er = rows.loc["er"]
    assert er["final_acc_delta"] == pytest.approx(0.2) and er["final_acc_delta_test"] == "welch"
    assert er["final_acc_delta_ci_low"] == pytest.approx(0.2 - half)
    assert er["final_acc_delta_ci_high"] == pytest.approx(0.2 + half)
    assert er["final_acc_delta_p"] == pytest.approx(2 * stats.t.sf(0.2 / se, df))
    assert er["final_acc_delta_p_holm"] == er["final_acc_delta_p"]  # the only test: no change
    assert pd.isna(rows.loc["naive", "final_acc_delta_p"])  # one run: no test
    md = render_report([three_settings], metrics=["final_acc"], baseline="lwf").text
    p = er["final_acc_delta_p"]
    assert f"| er | 3 | +0.200 [{0.2 - half:+.3f}, {0.2 + half:+.3f}] p={p:.3f} |" in md
    assert "| naive | 1 | -0.150 |" in md
    assert "Δ: row mean - baseline mean [95% interval of the difference]" in md


def test_deltas_over_the_same_seeds_are_paired_and_holm_corrected(best_groups):
    rows = csv_rows(
        render_report([best_groups], metrics=["final_acc"], fmt="csv", baseline="top").text
    )
    same = rows.loc["same_seeds"]
    assert same["final_acc_delta_test"] == "paired"
    diffs = [-0.01, 0.005, -0.02]  # same_seeds - top, seed by seed
    half = T_975_DF2 * statistics.stdev(diffs) / math.sqrt(3)
    mean = statistics.mean(diffs)
    assert same["final_acc_delta_ci_low"] == pytest.approx(mean - half)
    assert same["final_acc_delta_ci_high"] == pytest.approx(mean + half)
    far = rows.loc["far"]
    assert far["final_acc_delta_test"] == "welch"
    p_small, p_large = sorted([same["final_acc_delta_p"], far["final_acc_delta_p"]])
    assert far["final_acc_delta_p_holm"] == pytest.approx(2 * p_small)  # far has the smaller
    assert same["final_acc_delta_p_holm"] == pytest.approx(max(2 * p_small, p_large))


def test_tiny_p_values_print_as_a_bound_in_every_format(best_groups):
    texts = {
        fmt: render_report([best_groups], metrics=["final_acc"], baseline="top", fmt=fmt).text
        for fmt in ("md", "latex", "html")
    }
    assert "| far | 3 | -0.400 [-0.423, -0.377] p<0.001 |" in texts["md"]
    assert r"far & 3 & $-$0.400 [$-$0.423, $-$0.377] p$<$0.001 \\" in texts["latex"]
    assert "<td>-0.400 [-0.423, -0.377] p&lt;0.001</td>" in texts["html"]


def test_baseline_that_matches_no_row_is_rejected(three_settings, capsys):
    with pytest.raises(ConfigError, match="--baseline"):
        render_report([three_settings], baseline="strategy.name=ewc")
    assert main(["report", str(three_settings), "--baseline", "nothing"]) == 2
    err = capsys.readouterr().err
    assert "--baseline" in err and "'er'" in err  # lists the labels it could have been


def test_baseline_matching_several_rows_is_rejected(three_settings):
    with pytest.raises(ConfigError, match="matches 3 rows"):
        render_report([three_settings], baseline="train.lr=0.05")


# --- grouping and labels -------------------------------------------------------------------------


def test_labels_name_the_settings_that_tell_rows_apart(tmp_path):
    for name, strategy, buffer_size in [("a", "er", 200), ("b", "er", 50), ("c", "naive", None)]:
        write_run(
            tmp_path, name, strategy=strategy, buffer_size=buffer_size, metrics={"final_acc": 0.5}
        )
    text = render_report([tmp_path], metrics=["final_acc"], fmt="csv").text
    # naive has no buffer_size: it needs no settings in its label
    assert list(csv_rows(text).index) == ["er (buffer_size=50)", "er (buffer_size=200)", "naive"]
    assert "\ner (buffer_size=50),er,50," in text.replace('"', "")  # not 50.0: naive has none


def test_explicit_group_by_averages_over_other_keys(three_settings):
    text = render_report(
        [three_settings], group_by=["train.lr"], metrics=["final_acc"], fmt="csv"
    ).text
    rows = csv_rows(text)
    assert list(rows.index) == ["train.lr=0.05"] and rows.iloc[0]["n"] == 6
    assert rows.iloc[0]["final_acc_mean"] == pytest.approx((2.55 + 0.5 + 1.3) / 6)


def test_unknown_group_key_or_metric_is_rejected_naming_it(three_settings, capsys):
    assert main(["report", str(three_settings), "--group-by", "strategy.nam"]) == 2
    err = capsys.readouterr().err
    assert "--group-by" in err and "strategy.nam" in err and "strategy.name" in err
    assert main(["report", str(three_settings), "--metrics", "final_accuracy"]) == 2
    err = capsys.readouterr().err
    assert "--metrics" in err and "final_accuracy" in err and "final_acc" in err


def test_default_columns_skip_absent_budget_and_show_peak_memory_when_recorded(tmp_path):
    write_run(tmp_path, "a", metrics={"final_acc": 0.5})
    header = render_report([tmp_path]).text.splitlines()[0]
    assert "final_acc ↑" in header and "updates" in header and "peak_memory_mb" not in header
    write_run(tmp_path, "b", seed=1, metrics={"final_acc": 0.7}, budget={"peak_memory_mb": 12.5})
    header = render_report([tmp_path]).text.splitlines()[0]
    assert "peak_memory_mb ↓" in header


# --- comparability -------------------------------------------------------------------------------


@pytest.fixture
def schedules(tmp_path: Path) -> Path:
    """er (3 seeds, eval.every=1) and gdumb (2 seeds, eval.every=5, the higher numbers)."""
    for seed, acc in enumerate([0.80, 0.85, 0.90]):
        write_run(tmp_path, f"er-{seed}", seed=seed, metrics={"final_acc": acc, "min_acc": 0.3})
    for seed, acc in enumerate([0.99, 0.98]):
        write_run(
            tmp_path,
            f"gdumb-{seed}",
            strategy="gdumb",
            seed=seed,
            eval_every=5,
            metrics={"final_acc": acc, "min_acc": 0.95 + seed / 100},
        )
    return tmp_path


def test_another_eval_schedule_is_incomparable_only_on_curve_columns(schedules):
    result = render_report([schedules], metrics=["final_acc", "min_acc"], fmt="csv")
    rows = csv_rows(result.text)
    gdumb = rows.loc[next(i for i in rows.index if i.startswith("gdumb"))]
    # final accuracy reads the full test sets at phase ends: the schedule cannot change it
    assert gdumb["final_acc_comparable"] and gdumb["final_acc_best"]
    # min-ACC is read off the continual curve: incomparable, so not best despite 0.955
    assert not gdumb["min_acc_comparable"] and not gdumb["min_acc_best"]
    assert gdumb["comparable"]  # no whole-row difference
    assert "min_acc: other evaluation schedule: eval.every=5 (most runs: 1)" in gdumb["notes"]
    md = render_report([schedules], metrics=["final_acc", "min_acc"]).text
    line = _line(md, "gdumb")
    assert line.startswith("| gdumb | 2 |")  # no marker on the label
    assert line.rstrip(" |").endswith("0.955 [0.891, 1.019]¹")  # the marker is on the cell
    assert "- ¹ other evaluation schedule: eval.every=5 (most runs: 1); this column depends" in md
    # only schedule-free columns shown: nothing to flag at all
    md = render_report([schedules], metrics=["final_acc"]).text
    assert "¹" not in md and "other evaluation schedule" not in md


def test_schedule_keys_are_eval_settings_and_columns_say_whether_they_depend_on_them():
    from clbench.config import EvalConfig
    from clbench.reporting.comparability import SCHEDULE_KEYS

    assert {k.removeprefix("eval.") for k in SCHEDULE_KEYS} <= set(EvalConfig.model_fields)
    for free in ("final_acc", "aia", "forgetting", "bwt", "fwt", "updates", "train_time_s"):
        assert not column_spec(free).schedule_dependent, free
    for curve in (
        "min_acc", "wc_acc", "wf_10", "wp_100", "lca", "gap_depth_mean", "recovery_time_mean",
        "recovered_fraction", "gap_pairs", "forgotten_pairs", "recovered_pairs", "eval_time_s",
    ):  # fmt: skip
        assert column_spec(curve).schedule_dependent, curve


def test_other_protocol_settings_still_flag_the_whole_row(schedules):
    write_run(
        schedules,
        "slow",
        strategy="lwf",
        config={"metrics": {"recovery_eps": 0.1}},
        metrics={"final_acc": 0.99, "min_acc": 0.99},
    )
    write_run(
        schedules,
        "slow-1",
        seed=1,
        strategy="lwf",
        config={"metrics": {"recovery_eps": 0.1}},
        metrics={"final_acc": 0.98, "min_acc": 0.98},
    )
    rows = csv_rows(render_report([schedules], metrics=["final_acc", "min_acc"], fmt="csv").text)
    lwf = rows.loc[next(i for i in rows.index if i.startswith("lwf"))]
    assert not lwf["comparable"] and not lwf["final_acc_comparable"]
    assert not lwf["final_acc_best"] and not lwf["min_acc_best"]
    assert lwf["notes"].startswith("not comparable: metrics.recovery_eps=0.1 (most runs: None)")


def test_row_mixing_schedules_is_flagged_on_curve_cells(three_settings):
    write_run(
        three_settings,
        "er-other",
        seed=7,
        eval_every=5,
        metrics={"final_acc": 0.5, "min_acc": 0.2},
    )
    text = render_report(
        [three_settings], group_by=["strategy.name"], metrics=["final_acc", "min_acc"], fmt="csv"
    ).text
    notes = csv_rows(text).loc["er", "notes"]
    assert "min_acc: other evaluation schedule: mixes eval.every=1 / 5" in notes
    assert "final_acc:" not in notes


def test_eval_batch_size_and_data_root_do_not_break_comparability(tmp_path):
    write_run(tmp_path, "a", metrics={"final_acc": 0.5})
    other = write_run(tmp_path, "b", strategy="naive", metrics={"final_acc": 0.4})
    config = yaml.safe_load((other / "config.yaml").read_text())
    config["eval"]["batch_size"], config["data"]["root"] = 64, "/elsewhere"
    (other / "config.yaml").write_text(yaml.safe_dump(config))
    rows = csv_rows(render_report([tmp_path], metrics=["final_acc"], fmt="csv").text)
    assert rows["comparable"].all()


# --- GTEP phases ---------------------------------------------------------------------------------


def test_tuning_and_evaluation_runs_are_never_averaged_together(tmp_path):
    for seed, acc in enumerate([0.2, 0.4]):
        write_run(
            tmp_path, f"t{seed}", seed=seed, tags={"phase": "tuning"}, metrics={"final_acc": acc}
        )
    for seed, acc in enumerate([0.8, 0.9]):
        write_run(
            tmp_path,
            f"e{seed}",
            seed=seed,
            tags={"phase": "evaluation"},
            metrics={"final_acc": acc},
        )
    for group_by in (None, ["strategy.name"]):
        result = render_report([tmp_path], group_by=group_by, metrics=["final_acc"], fmt="csv")
        rows = pd.read_csv(io.StringIO(result.text))
        assert rows["tags.phase"].tolist() == ["tuning", "evaluation"]
        assert rows["n"].tolist() == [2, 2]
        assert rows["final_acc_mean"].tolist() == pytest.approx([0.3, 0.85])
    md = render_report([tmp_path], metrics=["final_acc"]).text
    assert md.index("### phase: tuning") < md.index("0.300") < md.index("### phase: evaluation")
    assert md.index("### phase: evaluation") < md.index("0.850")


def test_split_by_gives_a_table_per_value(three_settings):
    result = render_report([three_settings], split_by=["strategy.name"], metrics=["final_acc"])
    assert [t.title for t in result.tables] == [
        "strategy.name: er",
        "strategy.name: lwf",
        "strategy.name: naive",
    ]


# --- partial and corrupted folders ---------------------------------------------------------------


@pytest.fixture
def with_broken(three_settings: Path) -> Path:
    write_run(three_settings, "failed-run", seed=9, status="failed")
    broken = write_run(three_settings, "broken-run", seed=8, metrics={"final_acc": 0.1})
    (broken / "summary.json").write_text('{"metrics": {"final_acc": 0.')  # truncated
    return three_settings


def test_partial_and_corrupted_runs_are_skipped_and_counted(with_broken, capsys):
    assert main(["report", str(with_broken), "--metrics", "final_acc", "--format", "csv"]) == 0
    captured = capsys.readouterr()
    rows = csv_rows(captured.out)
    assert rows.loc["er", "n"] == 3  # neither the failed nor the corrupted run counted
    assert rows.loc["er", "final_acc_mean"] == pytest.approx(0.85)
    assert "skipped 1 partial run(s) (1 failed) and 1 corrupted run(s)" in captured.err
    assert str(with_broken / "broken-run" / "summary.json") in captured.err
    result = render_report([with_broken])
    assert result.skipped is not None and "1 failed" in result.skipped


def test_strict_makes_a_corrupted_folder_an_error_naming_the_file(with_broken, capsys):
    assert main(["report", str(with_broken), "--strict"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "broken-run/summary.json" in captured.err and "corrupted" in captured.err


def test_include_partial_counts_unfinished_runs_with_a_note(with_broken):
    rows = csv_rows(
        render_report([with_broken], include_partial=True, metrics=["final_acc"], fmt="csv").text
    )
    assert rows.loc["er", "n"] == 4 and rows.loc["er", "final_acc_n"] == 3
    assert "includes 1 unfinished run(s) (failed)" in rows.loc["er", "notes"]


def test_no_finished_runs_is_an_error(tmp_path):
    write_run(tmp_path, "failed-run", status="failed")
    with pytest.raises(ClbenchError, match="no finished runs"):
        render_report([tmp_path])
    with pytest.raises(ConfigError, match="results"):
        render_report([tmp_path / "missing"])


# --- formats -------------------------------------------------------------------------------------


def test_cli_formats_are_the_renderers():
    assert set(FORMAT_CHOICES) == set(RENDERERS)


def test_latex_is_a_balanced_booktabs_tabular(three_settings):
    write_run(three_settings, "odd", strategy="a_b&c%", eval_every=5, metrics={"final_acc": 0.3})
    text = render_report([three_settings], fmt="latex", baseline="naive").text
    assert text.count(r"\begin{tabular}") == text.count(r"\end{tabular}") == 2
    depth = 0
    for char in re.sub(r"\\[{}]", "", text):  # escaped braces are text
        depth += {"{": 1, "}": -1}.get(char, 0)
        assert depth >= 0
    assert depth == 0
    for block in re.findall(r"\\begin\{tabular\}\{(\w+)\}(.*?)\\end\{tabular\}", text, re.S):
        spec, body = block
        rows = [line for line in body.splitlines() if line.endswith(r"\\")]
        assert len(rows) >= 3  # header + rows
        for line in rows:
            assert len(re.findall(r"(?<!\\)&", line)) == len(spec) - 1, line
    assert r"a\_b\&c\%" in text and r"\toprule" in text and r"\bottomrule" in text
    assert r"\textbf{0.850 [0.726, 0.974]}" in text and r"[$-$0.048, 0.448]" in text
    assert r"$-$0.400" in text  # er's forgetting delta vs naive, with a minus sign
    assert "±" not in text and "↑" not in text and "α" not in text
    assert r"$\alpha$ = 0.05" in text  # the legend, after the tables
    assert (
        r"\textbf{0.850 $\pm$ 0.050}"
        in render_report([three_settings], fmt="latex", ci="none").text
    )


class _TagBalance(HTMLParser):
    VOID = frozenset({"meta", "br", "hr", "img", "input", "link"})

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.errors: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag, attrs):  # <meta/>: opened and closed at once
        pass

    def handle_endtag(self, tag):
        if not self.stack or self.stack.pop() != tag:
            self.errors.append(tag)


def test_html_is_a_valid_standalone_document(three_settings):
    write_run(three_settings, "odd", strategy="<script>&", eval_every=5, metrics={"final_acc": 0.3})
    text = render_report([three_settings], fmt="html", baseline="naive").text
    assert text.startswith("<!DOCTYPE html>")
    checker = _TagBalance()
    checker.feed(text)
    assert checker.errors == [] and checker.stack == []
    root = ET.fromstring(text.split("\n", 1)[1])  # XHTML-compatible: parses as XML
    assert root.tag == "html"
    tables = root.findall(".//table")
    assert len(tables) == 2  # means and deltas
    cells = [["".join(td.itertext()) for td in tr.findall("td")] for tr in tables[0].iter("tr")]
    er = next(c for c in cells if c and c[0] == "er")
    assert er[1] == "3" and "0.850 [0.726, 0.974]" in er
    assert "<script>" not in text and "&lt;script&gt;&amp;" in text
    assert tables[0].find(".//strong") is not None


def test_csv_round_trips_with_plain_numbers(three_settings):
    text = render_report([three_settings], metrics=["final_acc", "updates"], fmt="csv").text
    frame = pd.read_csv(io.StringIO(text))
    assert frame["final_acc_mean"].dtype == float and frame["updates_mean"].dtype == float
    assert frame.set_index("label").loc["er", "updates_mean"] == 64
    assert frame["final_acc_best"].dtype == bool and frame["n"].dtype == int
    assert "±" not in text


def test_out_file_format_follows_suffix(three_settings, tmp_path, capsys):
    out = tmp_path / "tables" / "board.tex"
    assert main(["report", str(three_settings), "--out", str(out)]) == 0
    assert out.read_text().count(r"\begin{tabular}") == 1
    assert "board.tex: latex, 1 table(s), 3 row(s) from 6 run(s)" in capsys.readouterr().err


# --- end to end with real runs -------------------------------------------------------------------


def test_report_over_real_runs_end_to_end(tmp_path, capsys):
    root = tmp_path / "runs"
    for strategy in ("er", "naive"):
        for seed in (0, 1):
            overrides = fast_overrides(root, seed=seed, threads=1, **{"strategy.name": strategy})
            assert main(["run", "--quiet", *overrides]) == 0
    capsys.readouterr()
    out = tmp_path / "board.csv"
    assert main(["report", str(root), "--out", str(out), "--baseline", "naive"]) == 0
    rows = pd.read_csv(out).set_index("label")
    assert list(rows.index) == ["er", "naive"] and rows["n"].tolist() == [2, 2]
    for strategy in ("er", "naive"):
        summaries = [
            json.loads((run / "summary.json").read_text())
            for run in root.iterdir()
            if run.name.startswith(f"{strategy}-")
        ]
        accs = [s["metrics"]["final_acc"] for s in summaries]
        assert rows.loc[strategy, "final_acc_mean"] == pytest.approx(statistics.mean(accs))
        assert rows.loc[strategy, "final_acc_std"] == pytest.approx(statistics.stdev(accs))
        assert rows.loc[strategy, "updates_mean"] == summaries[0]["budget"]["updates"]
    assert rows.loc["er", "final_acc_delta"] == pytest.approx(
        rows.loc["er", "final_acc_mean"] - rows.loc["naive", "final_acc_mean"]
    )
    assert main(["report", str(root), "--format", "md"]) == 0
    md = capsys.readouterr().out
    assert md.startswith("| setting | n | final_acc ↑ | aia ↑ | forgetting ↓")


# --- gap metrics over different numbers of pairs -------------------------------------------------


def test_best_gap_mean_over_fewer_pairs_says_so(tmp_path):
    rows_values = {  # strategy: [(gap_depth_mean, gap_pairs, recovery_time_mean, recovered_pairs)]
        "few": [(0.10, 3, 2.0, 1), (0.11, 3, 2.0, 1)],
        "many": [(0.105, 9, 8.0, 6), (0.10, 9, 9.0, 6)],
        "deep": [(0.30, 9, 30.0, 6), (0.31, 9, 31.0, 6)],
    }
    for strategy, values in rows_values.items():
        for seed, (depth, pairs, recovery, recovered) in enumerate(values):
            write_run(
                tmp_path,
                f"{strategy}-{seed}",
                strategy=strategy,
                seed=seed,
                metrics={
                    "gap_depth_mean": depth,
                    "gap_pairs": pairs,
                    "recovery_time_mean": recovery,
                    "recovered_pairs": recovered,
                },
            )
    columns = ["gap_depth_mean", "recovery_time_mean", "gap_pairs"]
    result = render_report([tmp_path], metrics=columns)
    few, many = _line(result.text, "few"), _line(result.text, "many")
    assert few.split("|")[3].strip().startswith("**0.105") and few.split("|")[3].endswith("¹ ")
    assert many.split("|")[3].strip().endswith("**")  # as many pairs as any row: no note
    assert "- ¹ gap_depth_mean over 3 of up to 9 pairs (gap_pairs) among the compared rows" in (
        result.text
    )
    assert "recovery_time_mean over 1 of up to 6 pairs (recovered_pairs)" in result.text
    assert "**" not in _line(result.text, "deep")
    assert "gap_pairs ↑" not in result.text and "gap_pairs ↓" not in result.text  # no direction
    assert column_spec("gap_pairs").is_count and column_spec("forgotten_pairs").direction is None


def test_gap_means_without_recorded_pair_counts_are_marked_as_before(tmp_path):
    for strategy, depths in {"a": [0.1, 0.11], "b": [0.3, 0.31]}.items():
        for seed, depth in enumerate(depths):
            write_run(
                tmp_path,
                f"{strategy}-{seed}",
                strategy=strategy,
                seed=seed,
                metrics={"gap_depth_mean": depth},
            )
    rows = csv_rows(render_report([tmp_path], metrics=["gap_depth_mean"], fmt="csv").text)
    assert rows["gap_depth_mean_best"].to_dict() == {"a": True, "b": False}
    assert rows["notes"].isna().all()
    write_run(tmp_path, "c-0", strategy="c", metrics={"gap_depth_mean": 0.2, "gap_pairs": 4})
    text = render_report([tmp_path], metrics=["gap_depth_mean", "gap_pairs"]).text
    assert "| a | 2 | **0.105 [0.041, 0.169]** | – |" in text  # older runs: undefined count


# --- strategy-report columns ---------------------------------------------------------------------


def test_strategy_report_facts_are_columns_when_named(tmp_path):
    fpf_report = {
        "train_macs": {"sgd": 1000, "fpf": 500, "total": 1500},
        "train_time_s": {"sgd": 0.25, "fpf": 0.5},
        "fpf_macs_fraction": 1 / 3,
        "fpf_modules": ["head"],  # text and lists are no column
        "fpf_buffer": "strategy",
        "mac_convention": "Linear/Conv2d MACs",
    }
    for seed in (0, 1):  # ER with the FPF plugin: the plugin's report under its name
        write_run(
            tmp_path,
            f"er+fpf-{seed}",
            strategy="er",
            buffer_size=None,
            seed=seed,
            metrics={"final_acc": 0.5},
            strategy_report={"fpf": fpf_report},
            config={"plugins": {"fpf": {"iterations": 20}}},
        )
    write_run(  # a strategy's own nested fact (k-FPF meters its costs itself)
        tmp_path,
        "k_fpf-0",
        strategy="k_fpf",
        metrics={"final_acc": 0.5},
        strategy_report={"train_macs": {"sgd": 600, "fpf": 100, "total": 700}},
    )
    write_run(
        tmp_path,
        "slca-0",
        strategy="slca",
        metrics={"final_acc": 0.5},
        strategy_report={"statistics_bytes": 123456789},
    )
    names = [
        "final_acc",
        "strategy_report.fpf.train_macs.total",
        "strategy_report.train_macs.total",
        "strategy_report.statistics_bytes",
    ]
    text = render_report([tmp_path], metrics=names).text
    assert "| er+fpf | 2 | 0.500 [0.500, 0.500] | 1,500 | – | – |" in text  # a count: no interval
    assert "| k_fpf | 1 | 0.500 | – | 700 | – |" in text
    assert "| slca | 1 | 0.500 | – | – | 123,456,789 |" in text  # without the fact: undefined
    rows = csv_rows(render_report([tmp_path], metrics=names, fmt="csv").text)
    assert rows.loc["er+fpf", "strategy_report.fpf.train_macs.total_mean"] == 1500
    assert rows.loc["k_fpf", "strategy_report.train_macs.total_mean"] == 700
    assert not rows["strategy_report.fpf.train_macs.total_best"].any()
    assert not rows["strategy_report.train_macs.total_best"].any()
    # `all` is metrics and budget: the facts only when named
    assert "strategy_report" not in render_report([tmp_path], metrics=["all"]).text


def test_unknown_metric_lists_the_strategy_report_facts(tmp_path, capsys):
    write_run(
        tmp_path,
        "er+fpf-0",
        strategy="er",
        strategy_report={"fpf": {"train_macs": {"total": 9}}},
        config={"plugins": {"fpf": {}}},
    )
    write_run(tmp_path, "k_fpf-0", strategy="k_fpf", strategy_report={"train_macs": {"total": 9}})
    assert main(["report", str(tmp_path), "--metrics", "macs"]) == 2
    err = capsys.readouterr().err
    assert "--metrics: got 'macs'" in err
    assert "strategy_report.fpf.train_macs.total" in err  # a plugin's, under its name
    assert "strategy_report.train_macs.total" in err


# --- labels: only settings that change results ---------------------------------------------------


def test_checkpoint_settings_neither_split_rows_nor_appear_in_labels(tmp_path):
    for seed, every in enumerate([500, 100]):  # same setting, checkpointed differently
        write_run(
            tmp_path,
            f"er-{seed}",
            seed=seed,
            config={"checkpoint": {"every": every}},
            metrics={"final_acc": 0.5},
        )
    write_run(tmp_path, "naive-0", strategy="naive", config={"checkpoint": {"every": 500}})
    rows = csv_rows(render_report([tmp_path], metrics=["final_acc"], fmt="csv").text)
    assert list(rows.index) == ["er", "naive"] and rows.loc["er", "n"] == 2
    assert "checkpoint" not in "".join(rows.columns)
    # asked for explicitly, it is what the user groups by and is shown
    text = render_report(
        [tmp_path], group_by=["strategy.name", "checkpoint.every"], metrics=["final_acc"]
    ).text
    assert "er (checkpoint.every=100)" in text
