"""Live tracking (`output.trackers`): a short run's TensorBoard events, MLflow file store, CSV and
offline W&B run are read back and hold every evaluation of ``records.parquet`` with equal
accuracies, without touching the network; a crashed and resumed run holds every step once; a
tracker that is unknown or not installed is refused before the run; runs off a terminal log
their progress."""

from __future__ import annotations

import io
import json
import logging
import os
import socket
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from clbench.cli import main
from clbench.config import build_config
from clbench.engine.job import run_job
from clbench.engine.observer import Evaluation, RunObserver
from clbench.engine.progress_log import ProgressLog, enable_progress_logging
from clbench.export.live import build_trackers
from clbench.metrics.records import accuracy_curve
from clbench.plotting.curves import plot_task_curves
from clbench.results.reader import RunFolder, find_runs
from tests.helpers import fast_overrides
from tests.reporting.test_export import wandb_records
from tests.sweep.helpers import FAST_BASE, write_suite

TRACKERS = "[tensorboard,mlflow,csv,wandb]"


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[Any]:
    """No tracker settings from the environment, W&B offline, and every connection attempt to
    another host recorded and refused (W&B's local service and loopback stay allowed)."""
    for key in ("WANDB_API_KEY", "WANDB_PROJECT", "MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_NAME"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # no netrc, no ~/.config/wandb
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_BASE_URL", "http://127.0.0.1:9")
    attempts: list[Any] = []
    real_connect, real_connect_ex = socket.socket.connect, socket.socket.connect_ex

    def remote(sock: socket.socket, address: Any) -> bool:
        if sock.family not in (socket.AF_INET, socket.AF_INET6):
            return False  # unix sockets: local by definition
        host = str(address[0])
        return not (host.startswith("127.") or host in ("::1", "localhost"))

    def connect(sock: socket.socket, address: Any) -> None:
        if remote(sock, address):
            attempts.append(address)
            raise OSError("network access in a test")
        real_connect(sock, address)

    def connect_ex(sock: socket.socket, address: Any) -> int:
        if remote(sock, address):
            attempts.append(address)
            return 111
        return real_connect_ex(sock, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    return attempts


def _config(root: Path, trackers: str = TRACKERS, **extra: Any) -> Any:
    return build_config(None, fast_overrides(root, **{"output.trackers": trackers, **extra}))


def _expected(run: Path) -> tuple[dict[str, dict[int, float]], list[int]]:
    """Every evaluation of the run folder's records as {tag: {step: accuracy}}, computed here
    from the records themselves, plus the losses and phase ends; and the evaluation steps."""
    folder = RunFolder(run)
    records = folder.records()
    expected: dict[str, dict[int, float]] = {}
    curve = accuracy_curve(records).droplevel("phase")
    for task in curve.columns:
        expected[f"acc/task_{task}"] = curve[task].dropna().to_dict()
    expected["acc/mean_seen"] = curve.mean(axis=1).to_dict()
    full = records[records["kind"] == "full"]
    for task, rows in full.groupby("task"):
        expected[f"acc_full/task_{task}"] = dict(
            zip(rows["step"], rows["correct"] / rows["n"], strict=True)
        )
    loss = folder.train_loss()
    expected["train/loss"] = dict(zip(loss["step"], loss["loss"], strict=True))
    ends = folder.summary["budget"]["phase_end_steps"]
    expected["phase/end"] = {step: float(phase) for phase, step in enumerate(ends)}
    subset = records[records["kind"] == "subset"]
    return expected, sorted(set(subset["step"].tolist()))


def _tensorboard(folder: Path) -> Any:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(folder), size_guidance={"scalars": 0, "images": 0})
    events.Reload()
    return events


def _tb_scalars(events: Any, tag: str) -> dict[int, float]:
    scalars = events.Scalars(tag)
    steps = [e.step for e in scalars]
    assert len(steps) == len(set(steps)), f"{tag}: a step logged twice"
    return {e.step: e.value for e in scalars}


def _mlflow_run(root: Path, run_id: str, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, Any]:
    from clbench.export.mlflow import mlflow_client

    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    client = mlflow_client((root / "mlruns").resolve().as_uri())
    experiment = client.get_experiment_by_name("clbench")
    runs = client.search_runs(
        [experiment.experiment_id], filter_string=f"tags.`clbench.run_id` = '{run_id}'"
    )
    assert len(runs) == 1, "one active MLflow run per clbench run"
    return client, runs[0]


def _mlflow_history(client: Any, run: Any, tag: str) -> dict[int, float]:
    history = client.get_metric_history(run.info.run_id, tag)
    steps = [m.step for m in history]
    assert len(steps) == len(set(steps)), f"{tag}: a step logged twice"
    return {m.step: m.value for m in history}


def _csv(run: Path) -> pd.DataFrame:
    """metrics.csv, one row per step (no cell given twice)."""
    frame = pd.read_csv(run / "trackers" / "metrics.csv")
    assert (frame.groupby("step").count() <= 1).all().all(), "a value logged twice"
    return frame.groupby("step").first()


def _csv_values(frame: pd.DataFrame, tag: str) -> dict[int, float]:
    return frame[tag].dropna().to_dict()


def test_live_trackers_hold_every_evaluation_of_the_records(
    tmp_path: Path, offline: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    config = _config(tmp_path / "results", **{"output.plot": "true"})
    outcome = run_job(
        config, progress=False, figure=plot_task_curves, observers=build_trackers(config)
    )
    run = outcome.path
    expected, eval_steps = _expected(run)
    assert len(eval_steps) == 65  # eval.every=1: the step-0 point and all 64 updates
    tasks = [t for t in expected if t.startswith("acc")]

    # TensorBoard: float32 scalars
    events = _tensorboard(run / "trackers" / "tensorboard")
    for tag, values in expected.items():
        assert _tb_scalars(events, tag) == pytest.approx(values, rel=1e-6), tag
    assert set(_tb_scalars(events, "acc/mean_seen")) == set(eval_steps)
    final = outcome.summary["metrics"]["final_acc"]
    assert _tb_scalars(events, "metric/final_acc") == pytest.approx({64: final})
    assert events.Tags()["images"] == ["accuracy"]  # the run's figure
    assert events.PluginTagToContent("hparams")

    # the same tags and values as `clbench export` writes after the fact: one mapping
    assert main(["export", str(run), "--to", "tensorboard", "--out", str(tmp_path / "tb")]) == 0
    exported = _tensorboard(tmp_path / "tb" / run.name)
    assert set(exported.Tags()["scalars"]) == set(events.Tags()["scalars"])
    for tag in exported.Tags()["scalars"]:
        assert _tb_scalars(exported, tag) == _tb_scalars(events, tag), tag

    # MLflow: the file store under the results root, exact values
    client, mlflow_run = _mlflow_run(tmp_path / "results", run.name, monkeypatch)
    for tag, values in expected.items():
        assert _mlflow_history(client, mlflow_run, tag) == values, tag
    assert mlflow_run.info.status == "FINISHED"
    assert mlflow_run.data.params["strategy.name"] == "er"
    assert mlflow_run.data.metrics["metric/final_acc"] == final
    artifacts = {a.path for a in client.list_artifacts(mlflow_run.info.run_id)}
    assert {"accuracy.png", "summary.json", "run_config.yaml"} <= artifacts
    assert find_runs([tmp_path / "results"]) == [run]  # trackers' files are not runs

    # CSV: exact values (shortest round-trip repr)
    frame = _csv(run)
    for tag, values in expected.items():
        assert _csv_values(frame, tag) == values, tag
    assert _csv_values(frame, "acc/mean_seen").keys() == set(eval_steps)

    # W&B: an offline run in the run folder
    (wandb_run,) = (run / "trackers" / "wandb").glob("offline-run-*")
    history: dict[str, dict[int, float]] = {}
    for record in wandb_records(next(wandb_run.glob("*.wandb"))):
        if record.WhichOneof("record_type") == "history":
            items = {i.key or "/".join(i.nested_key): i.value_json for i in record.history.item}
            step = int(json.loads(items.pop("_step")))
            for key, value in items.items():
                if key in expected:
                    history.setdefault(key, {})[step] = json.loads(value)
    for tag in tasks:
        assert history[tag] == pytest.approx(expected[tag]), tag

    assert offline == [], "a tracker tried to reach the network"


class CrashAt(RunObserver):
    """Kills the run (as a SIGKILL would, without a checkpoint) at the evaluation of ``step``."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_evaluation(self, evaluation: Evaluation) -> None:
        if evaluation.step == self.step and evaluation.kind == "subset":
            raise KeyboardInterrupt


@pytest.mark.parametrize(
    ("every", "crash", "preupdate"),
    [(10, 25, False), (0, 40, True)],
    ids=["inside-a-phase", "at-a-phase-end"],
)
def test_a_resumed_run_logs_every_step_once(
    tmp_path: Path,
    offline: list[Any],
    monkeypatch: pytest.MonkeyPatch,
    every: int,
    crash: int,
    preupdate: bool,
) -> None:
    extra = {"checkpoint.every": every, "eval.preupdate_every_task": preupdate}
    trackers = "[tensorboard,mlflow,csv]"
    reference = _config(tmp_path / "reference", trackers, **extra)
    whole = run_job(reference, progress=False, observers=build_trackers(reference)).path

    config = _config(tmp_path / "results", trackers, **extra)
    with pytest.raises(KeyboardInterrupt):
        run_job(config, progress=False, observers=[*build_trackers(config), CrashAt(crash)])
    crashed = _csv(tmp_path / "results" / whole.name)
    assert crashed.index.max() == crash  # the trackers went past the checkpoint
    outcome = run_job(config, progress=False, observers=build_trackers(config))
    assert outcome.resumed_from is not None and outcome.resumed_from.step < crash
    run = outcome.path
    pd.testing.assert_frame_equal(RunFolder(run).records(), RunFolder(whole).records())

    expected, _ = _expected(whole)
    pd.testing.assert_frame_equal(_csv(run), _csv(whole))
    events = _tensorboard(run / "trackers" / "tensorboard")
    for tag, values in expected.items():
        assert _tb_scalars(events, tag) == pytest.approx(values, rel=1e-6), tag
    client, mlflow_run = _mlflow_run(tmp_path / "results", run.name, monkeypatch)
    for tag, values in expected.items():
        assert _mlflow_history(client, mlflow_run, tag) == values, tag
    assert offline == []


def test_an_unknown_tracker_is_refused_naming_the_allowed_ones(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    overrides = fast_overrides(tmp_path / "results", **{"output.trackers": "[csv,comet]"})
    assert main(["run", "--quiet", *overrides]) == 2
    err = capsys.readouterr().err
    assert "output.trackers" in err and "'comet'" in err
    assert "tensorboard, wandb, mlflow, csv" in err
    assert not (tmp_path / "results").exists()


@pytest.mark.parametrize(
    ("tracker", "blocked"),
    [
        ("mlflow", ["mlflow"]),
        ("wandb", ["wandb"]),
        ("tensorboard", ["torch.utils.tensorboard", "tensorboard"]),
    ],
)
def test_a_tracker_that_is_not_installed_is_refused_before_the_run(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tracker: str,
    blocked: list[str],
) -> None:
    for module in blocked:
        monkeypatch.setitem(sys.modules, module, None)  # import now raises ImportError
    overrides = fast_overrides(tmp_path / "results", **{"output.trackers": f"[{tracker}]"})
    assert main(["run", "--quiet", *overrides]) == 2
    err = capsys.readouterr().err
    assert "output.trackers" in err and f"the {tracker} package is not installed" in err
    assert f'pip install "clbench[{tracker}]"' in err
    assert not (tmp_path / "results").exists()  # refused before anything was written


def test_a_sweep_with_a_missing_tracker_package_stops_before_any_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "mlflow", None)
    base = {**FAST_BASE, "output": {"plot": False, "trackers": ["csv", "mlflow"]}}
    assert main(["sweep", str(write_suite(tmp_path, base=base))]) == 2
    assert 'pip install "clbench[mlflow]"' in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def _remove_progress_handlers() -> None:
    logger = logging.getLogger("clbench")
    for handler in list(logger.handlers):
        if getattr(handler, "_clbench_progress", False):
            logger.removeHandler(handler)


@pytest.fixture
def progress_handler() -> Iterator[None]:
    """Removes the handler `enable_progress_logging` adds (it would outlive the test's stderr)."""
    level = logging.getLogger("clbench").level
    yield
    _remove_progress_handlers()
    logging.getLogger("clbench").setLevel(level)


@pytest.mark.usefixtures("progress_handler")
def test_a_run_off_a_terminal_logs_its_progress(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["run", *fast_overrides(tmp_path)]) == 0  # captured stderr: not a terminal
    lines = [line for line in capsys.readouterr().err.splitlines() if " clbench INFO: " in line]
    messages = [line.split(" clbench INFO: ", 1)[1] for line in lines]
    run_id = messages[0].split(":", 1)[0]
    assert messages[0] == f"{run_id}: starting: 64 updates in 4 phases"
    for phase in range(4):
        assert any(f"phase {phase} (of 4) started at update {16 * phase}/64" in m for m in messages)
        assert any(
            f"phase {phase} (of 4) finished at update {16 * phase + 16}/64" in m for m in messages
        )
    assert "finished at update 64/64 (100%)" in messages[-1]
    assert "final accuracy" in messages[-1]

    handlers = logging.getLogger("clbench").handlers
    assert not [h for h in handlers if getattr(h, "_clbench_progress", False)]  # scoped to it
    assert main(["run", "--quiet", "--force", *fast_overrides(tmp_path)]) == 0
    assert " clbench INFO: " not in capsys.readouterr().err


def test_progress_lines_at_a_cadence_with_accuracy_and_eta(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = build_config(None, fast_overrides(tmp_path))
    ticks = iter(range(10**6))  # one "second" per clock read
    observer = ProgressLog(fraction=0.25, min_interval_s=0, clock=lambda: float(next(ticks)))
    with caplog.at_level(logging.INFO, logger="clbench"):
        run_job(config, progress=True, observers=[observer])
    messages = [r.getMessage() for r in caplog.records if r.name == "clbench"]
    evaluations = [m for m in messages if "mean accuracy" in m and "seen task" in m]
    # each phase of 16 updates: a line at its updates 4, 8, 12 and 16
    assert len(evaluations) == 16
    assert all("; ETA " in m for m in evaluations[:-1])
    assert not any("resuming" in m for m in messages)
    # the shown progress bar: run_job adds no ProgressLog of its own
    assert sum("starting: 64 updates" in m for m in messages) == 1


def test_enable_progress_logging_adds_one_handler(progress_handler: None) -> None:
    stream = io.StringIO()
    enable_progress_logging(stream)
    enable_progress_logging(stream)
    logging.getLogger("clbench").info("hello")
    assert stream.getvalue().count("clbench INFO: hello") == 1
    assert os.environ.get("MLFLOW_ALLOW_FILE_STORE") is None  # nothing else leaked
