"""`clbench export --to mlflow|csv`: two runs tracked live by MLflow and CSV are exported after
the fact, and every evaluation read back from the export (MLflow's client on the export's file
store, the csv module) equals what the live tracker wrote and what the records hold. Re-exports
are skipped, or replaced with --force; a failed export leaves nothing that passes for an
export; options of another tracker are refused; nothing reaches the network."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import pytest

from clbench.cli import main
from clbench.config import build_config
from clbench.engine.job import run_job
from clbench.export.csv_log import CsvSink, export_csv, exported_csv
from clbench.export.live import build_trackers
from clbench.export.mlflow import MlflowSink, export_mlflow, exported_mlflow, mlflow_client
from clbench.export.run_log import run_log
from clbench.results.reader import RunFolder
from tests.helpers import fast_overrides
from tests.reporting.test_live_trackers import _expected, _mlflow_history, offline

__all__ = ["offline"]  # the live tests' network guard, a fixture here too

STEPS = 65  # the step-0 evaluation and 64 updates (fast_overrides, eval.every=1)


@pytest.fixture(scope="module")
def tracked(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Two finished runs (seeds 0 and 1) tracked live by MLflow (``<root>/mlruns``) and CSV."""
    root = tmp_path_factory.mktemp("tracked") / "results"
    runs = []
    with pytest.MonkeyPatch.context() as env:
        for key in ("MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_NAME"):
            env.delenv(key, raising=False)
        for seed in (0, 1):
            overrides = fast_overrides(root, seed=seed, **{"output.trackers": "[mlflow,csv]"})
            config = build_config(None, overrides)
            runs.append(run_job(config, progress=False, observers=build_trackers(config)).path)
    return runs


def _active_runs(client: Any, experiment: str, run_id: str) -> list[Any]:
    """The active MLflow runs of clbench run ``run_id`` in ``experiment``."""
    found = client.get_experiment_by_name(experiment)
    runs = client.search_runs([found.experiment_id])
    return [r for r in runs if r.data.tags.get("clbench.run_id") == run_id]


def _clbench_tags(run: Any) -> dict[str, str]:
    return {k: v for k, v in run.data.tags.items() if k.startswith("clbench.")}


def test_mlflow_export_equals_the_live_tracker(
    tracked: list[Path],
    tmp_path: Path,
    offline: list[Any],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # an export writes its own file store: the user's server and experiment are not used
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://192.0.2.1:5000")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "from-environment")
    out = tmp_path / "mlflow"
    args = ["export", str(tracked[0].parent), "--to", "mlflow", "--out", str(out)]
    assert main([*args, "--experiment", "cl"]) == 0
    printed = capsys.readouterr().out
    hint = f"MLFLOW_ALLOW_FILE_STORE=true mlflow ui --backend-store-uri {out}"
    assert f"exported 2 run(s); view with: {hint}" in printed

    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # to read the stores here
    live_client = mlflow_client((tracked[0].parent / "mlruns").resolve().as_uri())
    client = mlflow_client(out.resolve().as_uri())
    assert client.get_experiment_by_name("from-environment") is None
    first_ids = {}
    for run in tracked:
        (live,) = _active_runs(live_client, "clbench", run.name)
        (exported,) = _active_runs(client, "cl", run.name)
        first_ids[run.name] = exported.info.run_id
        folder = out / exported.info.experiment_id / exported.info.run_id
        assert folder.is_dir() and f"{folder}: {STEPS} steps, " in printed
        assert exported.info.run_name == run.name and exported.info.status == "FINISHED"
        assert exported.data.params == live.data.params
        assert _clbench_tags(exported) == _clbench_tags(live)
        assert exported.data.metrics.keys() == live.data.metrics.keys()
        for tag in live.data.metrics:  # each step once, every value exactly the live one
            assert _mlflow_history(client, exported, tag) == _mlflow_history(
                live_client, live, tag
            ), tag
        expected, _ = _expected(run)
        for tag, values in expected.items():
            assert _mlflow_history(client, exported, tag) == values, tag
        artifacts = {a.path for a in client.list_artifacts(exported.info.run_id)}
        assert "run_config.yaml" in artifacts

    # again: skipped; with --force: replaced (the earlier MLflow run deleted), not duplicated
    assert main([*args, "--experiment", "cl"]) == 0
    assert capsys.readouterr().out.count("exported before") == 2
    assert main([*args, "--experiment", "cl", "--force"]) == 0
    assert "exported 2 run(s)" in capsys.readouterr().out
    for run in tracked:
        (exported,) = _active_runs(client, "cl", run.name)
        assert exported.info.run_id != first_ids[run.name]
        assert client.get_run(first_ids[run.name]).info.lifecycle_stage == "deleted"
        assert _mlflow_history(client, exported, "acc/mean_seen").keys() == set(range(STEPS))

    # the default experiment is clbench's (not MLFLOW_EXPERIMENT_NAME's)
    assert main(args) == 0
    for run in tracked:
        assert len(_active_runs(client, "clbench", run.name)) == 1

    # a deleted experiment is refused: restoring it would bring back the runs replaced above
    client.delete_experiment(client.get_experiment_by_name("cl").experiment_id)
    assert main([*args, "--experiment", "cl", "--force"]) == 2
    assert "MLflow experiment 'cl'" in capsys.readouterr().err
    assert client.get_experiment_by_name("cl").lifecycle_stage == "deleted"
    assert offline == [], "the export tried to reach the network"


def _read_csv(path: Path) -> tuple[list[str], list[list[str]]]:
    with path.open(newline="", encoding="utf-8") as file:
        header, *rows = csv.reader(file)
    return header, rows


def _cells_by_step(header: list[str], rows: list[list[str]]) -> dict[int, dict[str, str]]:
    """Non-empty cells by step, rows of one step merged; no cell may be given twice."""
    steps: dict[int, dict[str, str]] = {}
    for row in rows:
        cells = steps.setdefault(int(row[0]), {})
        for column, value in zip(header[1:], row[1:], strict=True):
            if value:
                assert column not in cells, f"step {row[0]}: {column} given twice"
                cells[column] = value
    return steps


def test_csv_export_equals_the_live_tracker(
    tracked: list[Path], tmp_path: Path, offline: list[Any], capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "csv"
    args = ["export", *map(str, tracked), "--to", "csv", "--out", str(out)]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert f"exported 2 run(s); read with: pandas.read_csv('{out}/<run id>/metrics.csv')" in printed
    for run in tracked:
        path = out / run.name / "metrics.csv"
        assert f"{path}: {STEPS} steps\n" in printed  # the CSV keeps no final metrics
        header, rows = _read_csv(path)
        live_header, live_rows = _read_csv(run / "trackers" / "metrics.csv")
        assert header == live_header
        assert [int(row[0]) for row in rows] == list(range(STEPS))  # one row per step
        exported = _cells_by_step(header, rows)
        # the live file has a second row at each phase end; merged, the same cells as text
        assert exported == _cells_by_step(live_header, live_rows)
        expected, _ = _expected(run)
        for tag, values in expected.items():
            assert {s: float(c[tag]) for s, c in exported.items() if tag in c} == values, tag

    first = {run.name: (out / run.name / "metrics.csv").read_bytes() for run in tracked}
    edited = out / tracked[0].name / "metrics.csv"
    edited.write_text("edited\n")
    assert main(args) == 0  # exported before: left as it is
    assert capsys.readouterr().out.count("exported before") == 2
    assert edited.read_text() == "edited\n"
    assert main([*args, "--force"]) == 0
    for run in tracked:
        assert (out / run.name / "metrics.csv").read_bytes() == first[run.name]
    assert sorted(p.name for p in (out / tracked[0].name).iterdir()) == ["metrics.csv"]
    assert offline == []


@pytest.mark.parametrize("tracker", ["mlflow", "csv"])
def test_a_failed_export_is_not_taken_for_an_earlier_one(
    tracked: list[Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tracker: str
) -> None:
    def fail(sink: Any, metrics: Any) -> None:
        raise RuntimeError("disk full")

    sink, export, exported = {
        "mlflow": (MlflowSink, export_mlflow, exported_mlflow),
        "csv": (CsvSink, export_csv, exported_csv),
    }[tracker]
    monkeypatch.setattr(sink, "log_summary", fail)
    log = run_log(RunFolder(tracked[0]))
    out = tmp_path / tracker
    with pytest.raises(RuntimeError, match="disk full"):
        export(log, out)
    assert exported(out, log.run_id) == []
    monkeypatch.undo()
    export(log, out)
    assert len(exported(out, log.run_id)) == 1


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--to", "mlflow", "--project", "p"], "--project only applies to --to wandb (--to mlflow"),
        (["--to", "wandb", "--experiment", "e"], "--experiment only applies to --to mlflow (--to"),
        (["--to", "csv", "--experiment", "e"], "--experiment only applies to --to mlflow"),
    ],
)
def test_an_option_of_another_tracker_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], options: list[str], message: str
) -> None:
    out = tmp_path / "out"
    assert main(["export", str(tmp_path), *options, "--out", str(out)]) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()
