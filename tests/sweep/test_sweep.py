"""`clbench sweep`: deterministic expansion, validation before work, resume, failure isolation,
the Ray executor, GTEP selection and the report hook."""

from __future__ import annotations

import csv
import io
import json
import sys
import types
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from clbench.cli import main
from clbench.config import resolve_config
from clbench.engine.job import run_job
from clbench.engine.runner import prepare
from clbench.results.reader import RunFolder
from clbench.sweeps.suite import expand, load_suite, parse_grid_option, parse_seeds
from tests.sweep.helpers import write_suite


def sweep_json(root: Path) -> dict[str, Any]:
    return json.loads((root / "sweep.json").read_text())


def statuses(root: Path) -> dict[str, str]:
    return {row["run_id"]: row["status"] for row in sweep_json(root)["runs"]}


# ----------------------------------------------------------------------------------- expansion


def test_expansion_is_deterministic_and_ignores_grid_key_order(tmp_path):
    grid_a = {"train.lr": [0.05, 0.01], "strategy.buffer_size": [20, 40]}
    grid_b = dict(reversed(list(grid_a.items())))
    assert list(grid_a) != list(grid_b)
    a = expand(load_suite(write_suite(tmp_path, "a", grid=grid_a, seeds="0-1")))
    b = expand(load_suite(write_suite(tmp_path, "b", grid=grid_b, seeds=[1, 0])))
    ids = [r.run_id for r in a.runs]
    assert ids == [r.run_id for r in b.runs]
    assert len(ids) == len(set(ids)) == 2 * 2 * 2
    # keys sorted (strategy.buffer_size before train.lr), values as listed, seeds innermost
    assert [(r.point["strategy.buffer_size"], r.point["train.lr"], r.seed) for r in a.runs] == [
        (20, 0.05, 0),
        (20, 0.05, 1),
        (20, 0.01, 0),
        (20, 0.01, 1),
        (40, 0.05, 0),
        (40, 0.05, 1),
        (40, 0.01, 0),
        (40, 0.01, 1),
    ]
    # the values really reach the configs, and each run id is the one `clbench run` would use
    run = a.runs[2]
    assert run.config.train.lr == 0.01 and run.config.strategy["buffer_size"] == 20
    assert run.config.threads == 1 and run.config.output.tags == {"sweep": "t"}
    assert run.run_id == prepare(run.config).run_id
    # a worker re-resolves the JSON dump: same config, same name
    assert prepare(resolve_config(run.config.model_dump(mode="json"))).run_id == run.run_id


def test_duplicate_configs_run_once_and_cli_grid_and_seeds_override(tmp_path):
    suite = load_suite(write_suite(tmp_path, grid={"train.lr": [0.01, 0.01]}, seeds="0-2"))
    assert len(expand(suite).runs) == 3
    key, values = parse_grid_option("model.hidden_sizes=[8, 8],[16]")
    expansion = expand(suite, {key: values}, parse_seeds("1"))
    assert [(r.config.model["hidden_sizes"], r.seed) for r in expansion.runs] == [
        ([8, 8], 1),
        ([16], 1),
    ]
    assert parse_seeds("0-2,5") == [0, 1, 2, 5]
    # the same config under two entries stays listed for each (GTEP selects per entry), one id
    twins = expand(load_suite(write_suite(tmp_path, entries=[{"name": "a"}, {"name": "b"}])))
    assert [r.entry for r in twins.runs] == ["a", "b"]
    assert twins.runs[0].run_id == twins.runs[1].run_id


def test_entries_have_their_own_overrides_and_grid(tmp_path):
    entries = [
        {"name": "naive", "overrides": ["strategy.name=naive"]},
        {"name": "er", "grid": {"strategy.buffer_size": [20, 40]}},
    ]
    runs = expand(load_suite(write_suite(tmp_path, entries=entries, grid={"train.lr": [0.1]}))).runs
    assert [
        (r.entry, r.config.strategy["name"], r.config.strategy.get("buffer_size")) for r in runs
    ] == [
        ("naive", "naive", None),
        ("er", "er", 20),
        ("er", "er", 40),
    ]
    assert all(r.config.train.lr == 0.1 for r in runs)


def test_axes_bring_labelled_overrides_and_an_entry_can_replace_one(tmp_path):
    axes = {"budget": {"short": ["train.epochs=1"], "long": ["train.epochs=3", "eval.every=5"]}}
    entries = [
        {"name": "both"},
        {
            "name": "short_only",
            "overrides": ["strategy.name=naive"],  # else it would equal a run of "both"
            "axes": {"budget": {"short": ["train.epochs=1"]}},
        },
    ]
    runs = expand(load_suite(write_suite(tmp_path, axes=axes, entries=entries))).runs
    assert [(r.entry, r.point, r.config.train.epochs, r.config.eval.every) for r in runs] == [
        ("both", {"budget": "short"}, 1, 2),
        ("both", {"budget": "long"}, 3, 5),
        ("short_only", {"budget": "short"}, 1, 2),
    ]


@pytest.mark.parametrize(
    "fields,expected",
    [
        ({"grid": {"train.lr": [0.01, -1]}}, ["entry 't'", "train.lr=-1", "train.lr"]),
        (
            {"entries": [{"name": "bad", "overrides": ["strategy.buffer_size=-5"]}]},
            ["entry 'bad'", "strategy.buffer_size"],
        ),
        ({"grid": {"strategy.nope": [1]}}, ["strategy.nope"]),
        ({"gird": {"train.lr": [0.1]}}, ["suite.gird", "not a suite setting"]),
        ({"seeds": "0-x"}, ["seeds", "0-x"]),
        ({"grid": {"seed": [1, 2]}}, ["suite.grid", "seed"]),
        ({"grid": {"train.lr": []}}, ["suite.grid", "at least one value"]),
        # caught by the pre-run check (prepare): 8 classes do not split in 3
        ({"overrides": ["scenario.n_experiences=3"]}, ["entry 't'", "scenario.n_experiences"]),
        ({"report": {"split_by": ["data.nam"]}}, ["report.split_by", "data.nam"]),
        (
            {
                "protocol": {
                    "name": "gtep",
                    "tuning": ["scenario.n_experiences=2"],
                    "evaluation": ["scenario.n_experiences=4"],
                    "select": {"metric": "accuracy"},
                }
            },
            ["protocol.select.metric", "accuracy", "final_acc"],
        ),
        ({"report": {"metrics": ["final_acc"], "sort_by": "aia"}}, ["report.sort_by", "aia"]),
        ({"report": {"confidence": 1.5}}, ["report.confidence", "1.5"]),
    ],
)
def test_invalid_suite_exits_2_naming_the_field_and_writes_nothing(
    tmp_path, capsys, fields, expected
):
    code = main(["sweep", str(write_suite(tmp_path, **fields))])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("clbench: error:") and len(err.strip().splitlines()) == 1
    for text in expected:
        assert text in err
    assert not (tmp_path / "out").exists()


def test_optional_entry_with_missing_data_is_skipped_not_fatal(tmp_path, capsys):
    missing = {"name": "fashion_mnist", "root": str(tmp_path / "no-such-folder")}
    entries = [
        {"name": "here", "overrides": []},
        {"name": "away", "overrides": [f"data={json.dumps(missing)}"], "optional": True},
    ]
    assert main(["sweep", "--dry-run", str(write_suite(tmp_path, entries=entries))]) == 0
    out = capsys.readouterr().out
    assert "skipped entry 'away'" in out and "data is missing" in out
    assert "dry run: 1 run(s)" in out
    entries[1]["optional"] = False
    assert main(["sweep", "--dry-run", str(write_suite(tmp_path, entries=entries))]) == 2
    assert "entry 'away'" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_pretrain_step_with_missing_data_skips_its_entries_when_optional(tmp_path, capsys):
    backbone = tmp_path / "backbones" / "r10t.pth"
    step = {
        "config": {
            "data": {"name": "fashion_mnist", "root": str(tmp_path / "no-such-folder")},
            "scenario": {"name": "class_incremental", "n_experiences": 1},
            "model": {"name": "timm", "arch": "resnet10t", "image_size": 28},
            "strategy": {"name": "naive"},
        },
        "out": str(backbone),
        "optional": True,
    }
    uses_it = [f"model.pretrained={backbone}", "model.name=timm", "model.arch=resnet10t"]
    entries = [{"name": "slca", "overrides": ["strategy.name=slca", *uses_it]}]
    suite = write_suite(tmp_path, entries=entries, pretrain=[step])
    assert main(["sweep", "--dry-run", str(suite)]) == 0
    assert "[after pretrain]" in capsys.readouterr().out
    assert main(["sweep", str(suite)]) == 0
    out = capsys.readouterr().out
    assert "skipped entry 'slca'" in out and "needs missing data" in out
    assert "0 run(s)" in out and not backbone.exists()
    step["optional"] = False
    assert main(["sweep", str(write_suite(tmp_path, entries=entries, pretrain=[step]))]) == 2
    assert "fashion_mnist" in capsys.readouterr().err


# ------------------------------------------------------------------------------------- running


def test_rerun_skips_finished_runs_without_redoing_them_and_writes_report(
    tmp_path, capsys, monkeypatch
):
    report_options = {"split_by": ["data.name"], "sort_by": "final_acc", "ci": "bootstrap"}
    suite = write_suite(
        tmp_path, grid={"train.lr": [0.05, 0.1]}, seeds="0-1", report=report_options
    )
    root = tmp_path / "out"
    # an interrupted sweep: only the seed-0 runs got done (in-process here, to save a pool start)
    first = [run for run in expand(load_suite(suite)).runs if run.seed == 0]
    for run in first:
        assert not run_job(run.config, progress=False).skipped
    stamps = {r.run_id: (root / r.run_id / "records.parquet").stat().st_mtime_ns for r in first}

    calls: list[tuple[list[Path], str, dict[str, Any]]] = []

    def render_report(paths, *, fmt="md", **options: Any):  # records the call (real: GTEP test)
        calls.append((list(paths), fmt, options))
        return types.SimpleNamespace(text="| strategy |\n", skipped=None)

    monkeypatch.setitem(
        sys.modules, "clbench.reporting", types.SimpleNamespace(render_report=render_report)
    )
    report = tmp_path / "board.md"
    assert main(["sweep", str(suite), "--jobs", "2", "--report", str(report)]) == 0
    out = capsys.readouterr().out
    assert "skipped 2 finished" in out
    second = statuses(root)
    assert len(second) == 4
    assert sorted(second.values()) == ["finished", "finished", "skipped", "skipped"]
    assert {rid for rid, s in second.items() if s == "skipped"} == set(stamps)
    for rid, stamp in stamps.items():  # not redone
        assert (root / rid / "records.parquet").stat().st_mtime_ns == stamp
    assert all(RunFolder(root / rid).finished for rid in second)
    assert report.read_text() == "| strategy |\n"
    ((paths, fmt, options),) = calls
    assert fmt == "md" and sorted(paths) == sorted(root / rid for rid in second)
    assert options["split_by"] == ["data.name"] and options["sort_by"] == "final_acc"
    assert options["ci"] == "bootstrap" and options["confidence"] == 0.95


def test_failing_run_is_recorded_and_the_others_finish_diverged_counted(tmp_path, capsys):
    garbage = tmp_path / "broken.pth"
    garbage.write_bytes(b"not a checkpoint")
    entries = [
        {"name": "ok", "grid": {"train.lr": [0.05, 0.1]}},
        {
            # passes every pre-run check (the file exists); loading it fails inside the worker
            "name": "broken",
            "overrides": [
                "data.image_size=8",
                "data.dim=64",
                "model.name=timm",
                "model.arch=resnet10t",
                f"model.pretrained={garbage}",
            ],
        },
        {"name": "exploding", "overrides": ["train.lr=1e12"]},  # NaN loss: diverged, not failed
    ]
    root = tmp_path / "out"
    assert main(["sweep", str(write_suite(tmp_path, entries=entries)), "--jobs", "2"]) == 1
    out = capsys.readouterr().out
    runs = statuses(root)
    failed = [rid for rid, s in runs.items() if s == "failed"]
    assert len(failed) == 1 and failed[0].startswith("er-class_incremental-synthetic-s0-")
    assert sorted(runs.values()) == ["diverged", "failed", "finished", "finished"]
    assert "2 finished" in out and "1 failed" in out and "1 diverged" in out and failed[0] in out
    status = json.loads((root / failed[0] / "status.json").read_text())
    assert status["status"] == "failed" and "Traceback" in status["traceback"]
    log = (root / "sweep.log").read_text()
    assert failed[0] in log and "Traceback" in log
    row = next(r for r in sweep_json(root)["runs"] if r["run_id"] == failed[0])
    assert row["entry"] == "broken" and row["error"]


def test_ray_executor_gives_the_same_results_as_the_local_pool(tmp_path):
    pytest.importorskip("ray")
    roots = {}
    for executor in ("local", "ray"):
        root = tmp_path / executor
        suite = write_suite(
            tmp_path,
            executor,
            grid={"train.lr": [0.05, 0.1]},
            seeds="0-1",
            output={"root": str(root)},
        )
        assert main(["sweep", str(suite), "--jobs", "2", "--executor", executor]) == 0
        roots[executor] = root
    local, ray = (statuses(roots[e]) for e in ("local", "ray"))
    assert len(local) == 4 and local.keys() == ray.keys()
    assert set(local.values()) == set(ray.values()) == {"finished"}
    for rid in local:
        a, b = RunFolder(roots["local"] / rid), RunFolder(roots["ray"] / rid)
        pd.testing.assert_frame_equal(a.records(), b.records())
        assert a.summary["metrics"] == b.summary["metrics"]


def test_gtep_picks_the_best_tuning_mean_and_evaluates_it(tmp_path, capsys):
    protocol = {
        "name": "gtep",
        "tuning": ["scenario.class_order=[0, 1, 2, 3]", "scenario.n_experiences=2"],
        "evaluation": ["scenario.class_order=[4, 5, 6, 7]", "scenario.n_experiences=2"],
        "select": {"metric": "final_acc", "mode": "max"},
        "tuning_seeds": "0-1",
        "evaluation_seeds": [3],
    }
    suite = write_suite(tmp_path, grid={"train.lr": [0.0005, 0.1]}, protocol=protocol)
    root = tmp_path / "out"
    report = tmp_path / "report.csv"
    assert main(["sweep", str(suite), "--jobs", "2", "--report", str(report)]) == 0
    out = capsys.readouterr().out
    assert "GTEP selection" in out

    tuning_means: dict[float, float] = {}
    for lr in (0.0005, 0.1):
        values = []
        for run in map(RunFolder, sorted(root.iterdir())):
            if not run.path.is_dir() or run.config["train"]["lr"] != lr:
                continue
            if run.summary["tags"]["phase"] == "tuning":
                assert run.config["scenario"]["class_order"] == [0, 1, 2, 3]
                values.append(run.summary["metrics"]["final_acc"])
        assert len(values) == 2
        tuning_means[lr] = sum(values) / 2
    best = max(tuning_means, key=tuning_means.get)
    assert tuning_means[0.1] != tuning_means[0.0005]

    selection = json.loads((root / "gtep_selection.json").read_text())
    entry = selection["entries"]["t"]
    assert entry["chosen"] == {"train.lr": best}
    assert {p["point"]["train.lr"]: p["mean"] for p in entry["points"]} == pytest.approx(
        tuning_means
    )
    (evaluated,) = selection["evaluation_run_ids"]
    run = RunFolder(root / evaluated)
    assert run.finished and run.config["train"]["lr"] == best and run.config["seed"] == 3
    assert run.config["scenario"]["class_order"] == [4, 5, 6, 7]
    assert run.summary["tags"] == {"sweep": "t", "phase": "evaluation"}
    assert len([p for p in root.iterdir() if p.is_dir()]) == 5  # 4 tuning + 1 evaluation
    # the report (real clbench.reporting) covers the evaluation runs only
    (row,) = csv.DictReader(io.StringIO(report.read_text()))
    assert row["n"] == "1"
    assert float(row["final_acc_mean"]) == pytest.approx(run.summary["metrics"]["final_acc"])


def test_the_check_before_the_first_run_reads_each_dataset_once(tmp_path, monkeypatch, capsys):
    """Entries alternate between two datasets; the checks are grouped by data, so each is read
    once, through the specs (ER, naive) or for prepare (the view_batch plugin)."""
    from clbench.data.sources.specs.digits import DigitsSpec
    from clbench.data.sources.specs.synthetic import SyntheticSpec

    reads: list[str] = []

    def counted(spec: type) -> None:
        original = spec.arrays

        def arrays(self: Any) -> Any:
            reads.append(spec.__name__)
            return original(self)

        monkeypatch.setattr(spec, "arrays", arrays)

    counted(DigitsSpec)
    counted(SyntheticSpec)
    digits = ["data={name: digits}", "scenario.n_experiences=5"]
    entries = [
        {"name": "er-digits", "overrides": digits},
        {"name": "er-synthetic", "overrides": []},
        {"name": "naive-digits", "overrides": [*digits, "strategy.name=naive"]},
        {"name": "naive-synthetic", "overrides": ["strategy.name=naive"]},
        {"name": "vb-digits", "overrides": [*digits, "plugins.view_batch={}"]},
        {"name": "vb-synthetic", "overrides": ["plugins.view_batch={}"]},
    ]
    assert main(["sweep", "--dry-run", str(write_suite(tmp_path, entries=entries))]) == 0
    assert "dry run: 6 run(s)" in capsys.readouterr().out
    # once as arrays for the specs and once for prepare (plugins are checked by building)
    assert sorted(reads) == ["DigitsSpec"] * 2 + ["SyntheticSpec"] * 2
