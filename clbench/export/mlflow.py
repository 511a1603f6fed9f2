"""MLflow: the scalars as metrics, the hyperparameters as params, config, figure and summary as
artifacts.

Where: the server or store ``MLFLOW_TRACKING_URI`` names when the user sets it; otherwise a
local file store, ``<output.root>/mlruns`` (a ``file:`` URI), shared by every run of that
results root so that one ``mlflow ui --backend-store-uri <root>/mlruns`` compares them. clbench
never picks a network URI itself, and switches MLflow's usage telemetry off
(``MLFLOW_DISABLE_TELEMETRY``) unless the environment sets it. MLflow 3 keeps the file store in
maintenance mode and refuses it unless ``MLFLOW_ALLOW_FILE_STORE`` is true: clbench sets that
while it opens a ``file:`` store (set it yourself to read the store with MLflow's own tools).

Experiment ``MLFLOW_EXPERIMENT_NAME`` or ``clbench``; MLflow run name = the clbench run id. Each
start of a run (fresh, ``--force`` or resumed) creates a new MLflow run that gets the run's
whole history (a resume replays what its checkpoint holds) and deletes the previous start's
MLflow run, which ``<run>/trackers/mlflow.json`` names (MLflow's soft delete, which
``mlflow gc`` purges): the experiment shows each clbench run once, every step once.

``clbench export --to mlflow`` (`export_mlflow`) replays finished runs into a file store of its
own, ``<out>`` (never ``MLFLOW_TRACKING_URI``: an export stays offline), and finds an earlier
export of a run by the tag ``clbench.run_id`` instead of a state file (the run folder is only
read).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from clbench.errors import ClbenchError
from clbench.export.missing import missing_tracker
from clbench.export.run_log import RunLog
from clbench.export.scalars import RunMeta
from clbench.export.sink import replay

DEFAULT_EXPERIMENT = "clbench"
STORE_FOLDER = "mlruns"  # under output.root
MAX_METRICS_PER_BATCH = 1000  # MLflow's log_batch limits
MAX_PARAMS_PER_BATCH = 100
MAX_PARAM_CHARS = 500  # the smallest limit of MLflow versions (6000 in MLflow 3)
FLUSH_SECS = 10.0  # buffered metrics reach the store at least this often (and at phase ends)
STATUS = {"finished": "FINISHED", "interrupted": "KILLED"}  # anything else: FAILED
# MLflow names: alphanumerics, underscores, dashes, periods, spaces and slashes
_UNSAFE = re.compile(r"[^A-Za-z0-9_\-. /]")


def require_mlflow(where: str = "export") -> None:
    """Fail early, before any run starts, when MLflow is not installed."""
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")  # before MLflow is imported
    try:
        import mlflow  # noqa: F401
    except ImportError as exc:
        raise missing_tracker("mlflow", exc, where) from None


def default_tracking_uri(root: str | Path) -> str:
    """``MLFLOW_TRACKING_URI``, else the file store ``<root>/mlruns``."""
    return os.environ.get("MLFLOW_TRACKING_URI") or (Path(root) / STORE_FOLDER).resolve().as_uri()


def is_file_store(uri: str) -> bool:
    return uri.startswith("file:") or "://" not in uri


@contextlib.contextmanager
def allow_file_store(uri: str) -> Iterator[None]:
    """MLflow 3 refuses file stores unless ``MLFLOW_ALLOW_FILE_STORE`` is set: set it while
    a client of ``uri`` is created (the client keeps its store), then restore it."""
    key = "MLFLOW_ALLOW_FILE_STORE"
    saved = os.environ.get(key)
    if is_file_store(uri):
        os.environ[key] = "true"
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = saved


def mlflow_client(uri: str) -> Any:
    require_mlflow()
    from mlflow.tracking import MlflowClient

    with allow_file_store(uri):
        return MlflowClient(tracking_uri=uri)


def _name(key: str) -> str:
    return _UNSAFE.sub("_", key)


class MlflowSink:
    """One MLflow run of ``meta``'s clbench run; metrics are buffered and sent in batches.

    ``state_file`` (live tracking) names the MLflow run, so that the next start deletes it; an
    export passes None and finds earlier exports by their tag (`exported_mlflow`)."""

    def __init__(
        self, meta: RunMeta, tracking_uri: str, state_file: Path | None, experiment: str
    ) -> None:
        from mlflow.entities import Param

        self.client = mlflow_client(tracking_uri)
        if state_file is not None:
            self._delete_previous(state_file, tracking_uri)
        tags = {
            "clbench.run_id": meta.run_id,
            "clbench.setting": meta.setting,
            **{f"clbench.tag.{_name(k)}": v for k, v in meta.tags.items()},
        }
        self.experiment_id = self._experiment_id(experiment)
        run = self.client.create_run(self.experiment_id, run_name=meta.run_id, tags=tags)
        self.run_id: str = run.info.run_id
        if state_file is not None:
            state_file.parent.mkdir(parents=True, exist_ok=True)
            state = {
                "tracking_uri": tracking_uri,
                "experiment_id": self.experiment_id,
                "run_id": self.run_id,
            }
            state_file.write_text(json.dumps(state, indent=2) + "\n")
        params = [Param(_name(k), str(v)[:MAX_PARAM_CHARS]) for k, v in meta.hparams.items()]
        for i in range(0, len(params), MAX_PARAMS_PER_BATCH):
            self.client.log_batch(self.run_id, params=params[i : i + MAX_PARAMS_PER_BATCH])
        # not "config.yaml": under the results root, that name marks a run folder
        self.client.log_dict(self.run_id, meta.config, "run_config.yaml")
        self._pending: list[Any] = []
        self._sent = time.monotonic()
        self.last_step = 0

    def _delete_previous(self, state_file: Path, uri: str) -> None:
        try:
            state = json.loads(state_file.read_text())
        except (OSError, ValueError):
            return
        if isinstance(state, dict) and state.get("tracking_uri") == uri:
            with contextlib.suppress(Exception):  # already deleted, or gone with the store
                self.client.delete_run(str(state["run_id"]))

    def _experiment_id(self, name: str) -> str:
        from mlflow.exceptions import MlflowException

        for _ in range(5):
            experiment = self.client.get_experiment_by_name(name)
            if experiment is not None:
                if experiment.lifecycle_stage == "deleted":
                    self.client.restore_experiment(experiment.experiment_id)
                return str(experiment.experiment_id)
            try:
                return str(self.client.create_experiment(name))
            except MlflowException:  # another run created it in between
                time.sleep(0.1)
        raise RuntimeError(f"MLflow: cannot create or find the experiment {name!r}")

    def log_steps(self, steps: Mapping[int, Mapping[str, float]]) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        for step, values in steps.items():
            self._pending.extend(Metric(_name(k), v, now, step) for k, v in values.items())
            self.last_step = max(self.last_step, step)
        if (
            len(self._pending) >= MAX_METRICS_PER_BATCH
            or time.monotonic() - self._sent >= FLUSH_SECS
        ):
            self.flush()

    def log_summary(self, metrics: Mapping[str, float]) -> None:
        self.log_steps({self.last_step: metrics})
        self.flush()

    def log_file(self, path: Path) -> None:
        self.client.log_artifact(self.run_id, str(path))

    def flush(self) -> None:
        pending, self._pending = self._pending, []
        for i in range(0, len(pending), MAX_METRICS_PER_BATCH):
            self.client.log_batch(self.run_id, metrics=pending[i : i + MAX_METRICS_PER_BATCH])
        self._sent = time.monotonic()

    def close(self, status: str) -> None:
        self.flush()
        self.client.set_terminated(self.run_id, STATUS.get(status, "FAILED"))


def export_store_uri(out: Path) -> str:
    """The file store an export writes: ``out`` itself, as a ``file:`` URI."""
    return out.resolve().as_uri()


def exported_mlflow(out: Path, run_id: str, experiment: str = DEFAULT_EXPERIMENT) -> list[str]:
    """MLflow run ids of earlier exports of ``run_id`` to ``experiment`` in the file store
    ``out`` (active runs: deleted ones are replaced); none when there is no store yet (looking
    creates none). A deleted experiment is refused (`ClbenchError`): exporting into it would
    restore it, and MLflow's restore brings back every run it held, deleted ones too."""
    if not out.is_dir():
        return []
    client = mlflow_client(export_store_uri(out))
    found = client.get_experiment_by_name(experiment)
    if found is None:
        return []
    if found.lifecycle_stage == "deleted":
        raise ClbenchError(
            f"export: the MLflow experiment {experiment!r} in {out} is deleted; restore it "
            f"(mlflow experiments restore), purge it (mlflow gc) or choose another --experiment"
        )
    # compared here, not in a filter string: MLflow's filters cannot quote every run id (a
    # backslash, or both kinds of quote); a file store filters in Python all the same
    matches, token = [], None
    while True:
        page = client.search_runs([found.experiment_id], max_results=1000, page_token=token)
        matches += [r.info.run_id for r in page if r.data.tags.get("clbench.run_id") == run_id]
        token = page.token
        if not token:
            return matches


def export_mlflow(
    log: RunLog, out: Path, experiment: str = DEFAULT_EXPERIMENT, replace: bool = False
) -> Path:
    """Write ``log`` as one MLflow run of ``experiment`` in the file store ``out`` and return
    the run's folder there. ``replace`` first deletes the earlier exports of the run (MLflow's
    soft delete); an export that fails is deleted too, so that the next one is not skipped."""
    uri = export_store_uri(out)
    earlier = exported_mlflow(out, log.run_id, experiment)  # refuses a deleted experiment
    if replace:
        client = mlflow_client(uri)
        for old in earlier:
            client.delete_run(old)
    sink = MlflowSink(log, uri, state_file=None, experiment=experiment)
    try:
        replay(log, sink)
    except BaseException:
        with contextlib.suppress(Exception):  # the export's own error is the one to report
            sink.client.delete_run(sink.run_id)
        raise
    return out / sink.experiment_id / sink.run_id
