"""Live experiment tracking: the trackers of ``output.trackers`` follow a run as it trains.

`build_trackers` turns a config into the observers every caller of `run_job` passes (``clbench
run`` and the Python API through `clbench.api.run.run_config`, sweep workers): it refuses a
tracker whose package is missing before the run starts, naming the pip extra. The tags are
`clbench.export.scalars`' (what ``clbench export`` writes after the fact), sent as they happen:

* every continual evaluation with the training losses of the updates before it (each update's
  loss, read in one transfer per evaluation: no host sync per update);
* at each phase end, the full-test accuracies and ``phase/end``, then a flush of every tracker;
* at the end, the summary's metrics, the accuracy figure and ``summary.json``.

Files: ``<run>/trackers/metrics.csv``, ``<run>/trackers/tensorboard/``,
``<run>/trackers/wandb/`` and MLflow's store (`clbench.export.mlflow`: ``<output.root>/mlruns``
unless ``MLFLOW_TRACKING_URI`` is set). W&B is offline (``wandb sync`` uploads later) unless
``WANDB_MODE`` is set, or ``WANDB_API_KEY`` is and ``WANDB_MODE`` is not.

A start rebuilds each tracker: its earlier files of this run are removed (the MLflow run of the
previous start deleted) and a resumed run first replays the history its checkpoint holds. Runs
resumed from a checkpoint re-produce the updates after it, so appending instead would log those
steps twice; rebuilt, every tracker holds each step once, equal to an uninterrupted run's.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from clbench.engine.observer import LOG, Evaluation, RunEnd, RunObserver, RunStart
from clbench.export.installed import check_trackers
from clbench.export.scalars import (
    RunMeta,
    Steps,
    evaluation_scalars,
    history_steps,
    loss_scalars,
    phase_end_scalars,
    run_meta,
    summary_metrics,
)

if TYPE_CHECKING:
    from clbench.config import RunConfig
    from clbench.export.sink import Sink

TRACKERS_FOLDER = "trackers"  # in the run folder
CSV_FILE = "metrics.csv"


def build_trackers(config: RunConfig) -> list[RunObserver]:
    """The observers for ``config.output.trackers`` (none when it is empty); every package they
    need is checked here, before anything runs."""
    check_trackers(config)
    names = list(config.output.trackers)
    return [LiveTracking(names)] if names else []


def wandb_mode() -> str:
    """``WANDB_MODE`` when set; else online with an API key in the environment, else offline."""
    return os.environ.get("WANDB_MODE") or (
        "online" if os.environ.get("WANDB_API_KEY") else "offline"
    )


def open_sink(tracker: str, run: RunStart, meta: RunMeta) -> Sink:
    """``tracker``'s sink for ``run``, its earlier files of this run removed."""
    folder = run.path / TRACKERS_FOLDER
    if tracker == "csv":
        from clbench.export.csv_log import CsvSink

        return CsvSink(folder / CSV_FILE, meta)
    if tracker == "tensorboard":
        from clbench.export.tensorboard import TensorBoardSink

        shutil.rmtree(folder / "tensorboard", ignore_errors=True)
        return TensorBoardSink(folder / "tensorboard", meta)
    if tracker == "wandb":
        from clbench.export.wandb import DEFAULT_PROJECT, WandbSink

        shutil.rmtree(folder / "wandb", ignore_errors=True)
        project = os.environ.get("WANDB_PROJECT") or DEFAULT_PROJECT
        return WandbSink(folder, meta, wandb_mode(), project)
    if tracker == "mlflow":
        from clbench.export.mlflow import DEFAULT_EXPERIMENT, MlflowSink, default_tracking_uri

        uri = default_tracking_uri(run.config.output.root)
        experiment = os.environ.get("MLFLOW_EXPERIMENT_NAME") or DEFAULT_EXPERIMENT
        return MlflowSink(meta, uri, folder / "mlflow.json", experiment)
    raise ValueError(f"unknown tracker {tracker!r}")


class LiveTracking(RunObserver):
    """Feeds a run's events to the sinks of ``trackers``. A sink that fails after the start is
    dropped with a warning (the run and the other trackers go on)."""

    def __init__(self, trackers: Sequence[str]) -> None:
        self.trackers = list(trackers)
        self.sinks: dict[str, Sink] = {}
        self.pending: Steps = {}

    def on_run_start(self, run: RunStart) -> None:
        config = run.config.model_dump(mode="json")
        meta = run_meta(run.run_id, config, run.config.output.tags, run.num_tasks)
        losses = enumerate(run.train_losses, start=1)
        history = history_steps(run.records, losses, run.phase_end_steps)
        for tracker in self.trackers:
            sink = open_sink(tracker, run, meta)
            self.sinks[tracker] = sink
            if history:
                sink.log_steps(history)
            sink.flush()

    def on_train_losses(self, first_step: int, losses: Sequence[float]) -> None:
        for step, loss in enumerate(losses, start=first_step):
            self._put(step, loss_scalars(loss))

    def on_evaluation(self, evaluation: Evaluation) -> None:
        self._put(evaluation.step, evaluation_scalars(evaluation))
        if evaluation.kind == "subset":  # a phase end's full evaluation goes with phase/end
            self._send()

    def on_phase_end(self, phase: int, step: int) -> None:
        self._put(step, phase_end_scalars(phase))
        self._send()
        self._each("flush", lambda sink: sink.flush())

    def on_run_end(self, end: RunEnd) -> None:
        self._send()
        if end.summary is not None:
            metrics = summary_metrics(end.summary)
            self._each("log_summary", lambda sink: sink.log_summary(metrics))
        for path in end.files:
            self._each("log_file", lambda sink, path=path: sink.log_file(path))
        self._each("close", lambda sink: sink.close(end.status))
        self.sinks = {}

    def _put(self, step: int, values: dict[str, float]) -> None:
        if values:
            self.pending.setdefault(step, {}).update(values)

    def _send(self) -> None:
        if self.pending:
            steps, self.pending = dict(sorted(self.pending.items())), {}
            self._each("log_steps", lambda sink: sink.log_steps(steps))

    def _each(self, what: str, call: Callable[[Sink], Any]) -> None:
        for tracker, sink in list(self.sinks.items()):
            try:
                call(sink)
            except Exception as exc:
                LOG.warning("tracker %s failed (%s) and is dropped: %r", tracker, what, exc)
                del self.sinks[tracker]
                if what != "close":
                    try:
                        sink.close("failed")
                    except Exception:
                        LOG.debug("tracker %s: closing after the failure failed too", tracker)
