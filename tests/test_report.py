"""`clbench report`: numbers, best values, deltas, comparability, phases, skipping and formats."""

from __future__ import annotations

import io
import json
import re
import statistics
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from clbench.cli import main
from clbench.errors import ClbenchError, ConfigError
from clbench.reporting import render_report
from clbench.reporting.columns import column_spec
from clbench.reporting.command import FORMAT_CHOICES
from clbench.reporting.formats import RENDERERS
from tests.conftest import fast_overrides

# --- hand-written run folders with known numbers -------------------------------------------------


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
) -> Path:
    """A run folder as `run_job` writes it, with the metric values given."""
    path = root / name
    path.mkdir(parents=True)
    strategy_section: dict[str, Any] = {"name": strategy}
    if buffer_size is not None and strategy == "er":
        strategy_section["buffer_size"] = buffer_size
    config = {
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
    (path / "config.yaml").write_text(yaml.safe_dump(config))
    if status == "finished":
        summary = {
            "run_id": name,
            "seed": seed,
            "tags": tags or {},
            "metrics": {"per_task_final_acc": [1.0, 0.5], **(metrics or {})},
            "budget": {"updates": 64, "train_time_s": 1.0, "phase_end_steps": [32, 64]}
            | (budget or {}),
        }
        (path / "summary.json").write_text(json.dumps(summary))
        pd.DataFrame({"step": [0], "task": [0], "n": [10], "correct": [5]}).to_parquet(
            path / "records.parquet"
        )
    (path / "status.json").write_text(json.dumps({"status": status}))
    return path


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
    assert rows.loc["er", "final_acc.mean"] == pytest.approx(0.85)
    assert rows.loc["er", "final_acc.std"] == pytest.approx(statistics.stdev([0.8, 0.85, 0.9]))
    assert rows.loc["er", "forgetting.std"] == pytest.approx(0.1)  # ddof=1, not 0.0816 (ddof=0)
    assert rows.loc["lwf", "final_acc.mean"] == pytest.approx(0.65)
    assert pd.isna(rows.loc["naive", "final_acc.std"])  # one run: no std
    assert result.skipped is None


def test_markdown_cells_show_mean_pm_std_and_n(three_settings):
    text = render_report([three_settings], metrics=["final_acc", "forgetting"]).text
    er = next(line for line in text.splitlines() if line.startswith("| er "))
    assert er.split("|")[2].strip() == "3"
    assert "0.850 ± 0.050" in er and "0.200 ± 0.100" in er
    naive = next(line for line in text.splitlines() if line.startswith("| naive "))
    assert "| 0.500 |" in naive and "±" not in naive


def test_metric_undefined_in_some_runs_counts_only_defined_values(tmp_path):
    write_run(tmp_path, "a", seed=0, metrics={"final_acc": 0.5, "recovery_time_mean": 4.0})
    write_run(tmp_path, "b", seed=1, metrics={"final_acc": 0.7, "recovery_time_mean": None})
    result = render_report([tmp_path], metrics=["recovery_time_mean"], fmt="csv")
    row = csv_rows(result.text).iloc[0]
    assert row["n"] == 2 and row["recovery_time_mean.n"] == 1
    assert row["recovery_time_mean.mean"] == 4.0
    assert "4.0 (n=1)" in render_report([tmp_path], metrics=["recovery_time_mean"]).text


def test_best_value_follows_direction(three_settings):
    result = render_report([three_settings], metrics=["final_acc", "forgetting"], fmt="csv")
    rows = csv_rows(result.text)
    # higher final accuracy is better (er), lower forgetting is better (lwf)
    assert rows["final_acc.best"].to_dict() == {"er": True, "lwf": False, "naive": False}
    assert rows["forgetting.best"].to_dict() == {"er": False, "lwf": True, "naive": False}
    md = render_report([three_settings], metrics=["final_acc", "forgetting"]).text
    assert "**0.850 ± 0.050**" in md and "**0.050 ± 0.014**" in md
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


def test_ties_all_marked_and_all_equal_marks_nothing(tmp_path):
    write_run(tmp_path, "a", strategy="a", metrics={"final_acc": 0.9, "forgetting": 0.1})
    write_run(tmp_path, "b", strategy="b", metrics={"final_acc": 0.9, "forgetting": 0.1})
    write_run(tmp_path, "c", strategy="c", metrics={"final_acc": 0.5, "forgetting": 0.1})
    rows = csv_rows(render_report([tmp_path], metrics=["final_acc", "forgetting"], fmt="csv").text)
    assert rows["final_acc.best"].to_dict() == {"a": True, "b": True, "c": False}
    assert not rows["forgetting.best"].any()


# --- baseline deltas ---------------------------------------------------------------------------


def test_baseline_deltas_by_key_and_by_label(three_settings):
    for spec in ("strategy.name=naive", "naive"):
        result = render_report(
            [three_settings], metrics=["final_acc", "forgetting"], fmt="csv", baseline=spec
        )
        rows = csv_rows(result.text)
        assert rows.loc["er", "final_acc.delta"] == pytest.approx(0.35)
        assert rows.loc["lwf", "forgetting.delta"] == pytest.approx(0.05 - 0.6)
        assert rows.loc["naive", "final_acc.delta"] == 0
        assert rows["baseline"].to_dict() == {"er": False, "lwf": False, "naive": True}
    md = render_report([three_settings], metrics=["final_acc"], baseline="naive").text
    assert "Δ vs baseline **naive**" in md
    assert "| er | 3 | +0.350 |" in md


def test_baseline_that_matches_no_row_is_rejected(three_settings, capsys):
    with pytest.raises(ConfigError, match="--baseline"):
        render_report([three_settings], baseline="strategy.name=ewc")
    assert main(["report", str(three_settings), "--baseline", "nothing"]) == 2
    err = capsys.readouterr().err
    assert "--baseline" in err and "'er'" in err  # lists the labels it could have been


def test_baseline_matching_several_rows_is_rejected(three_settings):
    with pytest.raises(ConfigError, match="matches 3 rows"):
        render_report([three_settings], baseline="train.lr=0.05")


# --- grouping and labels -----------------------------------------------------------------------


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
    assert rows.iloc[0]["final_acc.mean"] == pytest.approx((2.55 + 0.5 + 1.3) / 6)


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


def test_rows_with_another_eval_protocol_are_flagged_and_not_best(three_settings):
    write_run(
        three_settings, "fast-eval", strategy="gdumb", eval_every=5, metrics={"final_acc": 0.99}
    )
    result = render_report([three_settings], metrics=["final_acc"], fmt="csv")
    rows = csv_rows(result.text)
    flagged = rows[~rows["comparable"]]
    assert len(flagged) == 1 and flagged.index[0].startswith("gdumb")
    assert "eval.every=5 (most runs: 1)" in flagged.iloc[0]["notes"]
    # 0.99 is the highest value but not comparable: er keeps the bold
    assert rows["final_acc.best"][rows["final_acc.best"]].index.tolist() == ["er"]
    md = render_report([three_settings], metrics=["final_acc"]).text
    assert "| gdumb¹ | 1 | 0.990 |" in md  # the only gdumb row: the footnote says what differs
    assert "- ¹ not comparable: eval.every=5 (most runs: 1)" in md


def test_row_mixing_protocols_is_flagged(three_settings):
    write_run(three_settings, "er-other", seed=7, eval_every=5, metrics={"final_acc": 0.5})
    text = render_report(
        [three_settings], group_by=["strategy.name"], metrics=["final_acc"], fmt="csv"
    ).text
    notes = csv_rows(text).loc["er", "notes"]
    assert "mixes eval.every=1 / 5" in notes


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
        assert rows["final_acc.mean"].tolist() == pytest.approx([0.3, 0.85])
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
    assert rows.loc["er", "final_acc.mean"] == pytest.approx(0.85)
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
    assert rows.loc["er", "n"] == 4 and rows.loc["er", "final_acc.n"] == 3
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
    assert r"\textbf{0.850 $\pm$ 0.050}" in text
    assert r"$-$0.400" in text  # er's forgetting delta vs naive, with a minus sign
    assert "±" not in text and "↑" not in text


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
    assert er[1] == "3" and "0.850 ± 0.050" in er
    assert "<script>" not in text and "&lt;script&gt;&amp;" in text
    assert tables[0].find(".//strong") is not None


def test_csv_round_trips_with_plain_numbers(three_settings):
    text = render_report([three_settings], metrics=["final_acc", "updates"], fmt="csv").text
    frame = pd.read_csv(io.StringIO(text))
    assert frame["final_acc.mean"].dtype == float and frame["updates.mean"].dtype == float
    assert frame.set_index("label").loc["er", "updates.mean"] == 64
    assert frame["final_acc.best"].dtype == bool and frame["n"].dtype == int
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
        assert rows.loc[strategy, "final_acc.mean"] == pytest.approx(statistics.mean(accs))
        assert rows.loc[strategy, "final_acc.std"] == pytest.approx(statistics.stdev(accs))
        assert rows.loc[strategy, "updates.mean"] == summaries[0]["budget"]["updates"]
    assert rows.loc["er", "final_acc.delta"] == pytest.approx(
        rows.loc["er", "final_acc.mean"] - rows.loc["naive", "final_acc.mean"]
    )
    assert main(["report", str(root), "--format", "md"]) == 0
    md = capsys.readouterr().out
    assert md.startswith("| setting | n | final_acc ↑ | aia ↑ | forgetting ↓")
