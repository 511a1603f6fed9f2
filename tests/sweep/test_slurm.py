"""``clbench sweep --executor slurm`` (issue 19): runs go out as a submitit array job, come back as
`RunResult`s, and a preempted run checkpoints, is requeued and resumes.

No SLURM here: the runs execute under submitit's local executor (``CLBENCH_SLURM_CLUSTER=local``,
processes on this machine, with submitit's own requeue protocol), and the SLURM submission itself
is checked against a fake ``sbatch`` that keeps the batch script it was given.
"""

from __future__ import annotations

import json
import os
import signal
import stat
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from clbench.cli import main
from clbench.engine.run_dir import RunDir
from clbench.sweeps.executors import RunResult, RunTask
from tests.sweep.helpers import write_suite

submitit = pytest.importorskip("submitit")

from clbench.sweeps import slurm  # noqa: E402  (needs submitit)


@pytest.fixture
def local_cluster(monkeypatch):
    monkeypatch.setenv(slurm.CLUSTER_ENV, "local")


def sweep_rows(root: Path) -> dict[str, dict[str, Any]]:
    return {row["run_id"]: row for row in json.loads((root / "sweep.json").read_text())["runs"]}


def test_two_runs_go_out_as_an_array_and_come_back_as_results(tmp_path, capsys, local_cluster):
    suite = write_suite(tmp_path, seeds="0-1", overrides=["train.epochs=1"])
    root = tmp_path / "out"
    assert main(["sweep", str(suite), "--executor", "slurm", "--slurm-time", "10"]) == 0
    out = capsys.readouterr().out
    assert "2 run(s) on submitit's local executor" in out and "2 finished" in out
    rows = sweep_rows(root)
    assert len(rows) == 2 and {r["status"] for r in rows.values()} == {"finished"}
    for run_id in rows:
        assert RunDir(root / run_id).finished
    state = json.loads((root / "sweep.json").read_text())["options"]
    assert state["executor"] == "slurm" and state["slurm_time"] == 10
    # submitit's files (each job's pickled task and result, its logs), under the results root
    assert len(list((root / "slurm").glob("*_result.pkl"))) == 2
    assert len(list((root / "slurm").glob("*_log.err"))) == 2
    # the same command again: nothing is submitted
    assert main(["sweep", str(suite), "--executor", "slurm"]) == 0
    assert "skipped 2 finished run(s)" in capsys.readouterr().out


def _preempt_when_running(run_dir: Path, sent: list[int], timeout: float = 60) -> None:
    """Send the job's preemption signal (what SLURM sends, via submitit) to the process running
    the run, as soon as its folder says it runs."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            status = json.loads((run_dir / "status.json").read_text())
        except (OSError, ValueError):
            status = {}
        if status.get("status") == "running" and "pid" in status:
            os.kill(status["pid"], signal.SIGUSR2)
            sent.append(status["pid"])
            return
        time.sleep(0.05)


def test_a_preempted_run_checkpoints_is_requeued_and_resumes(tmp_path, capsys, local_cluster):
    # long enough (a few seconds) for the signal to reach it while it trains
    suite = write_suite(tmp_path, seeds="0", overrides=["train.epochs=60", "eval.every=20"])
    root = tmp_path / "out"
    assert main(["sweep", str(suite), "--dry-run"]) == 0
    run_id = next(line.split()[3] for line in capsys.readouterr().out.splitlines() if "s0-" in line)
    sent: list[int] = []
    watcher = threading.Thread(target=_preempt_when_running, args=(root / run_id, sent))
    watcher.start()
    try:
        assert main(["sweep", str(suite), "--executor", "slurm"]) == 0
    finally:
        watcher.join()
    assert sent, "the run was never seen running"
    status = RunDir(root / run_id).status()
    assert status is not None and status["status"] == "finished"
    # the requeued job continued the folder from the checkpoint written on the signal
    assert status["resumed_from"] is not None and status["resumed_from"].startswith("update ")
    assert sweep_rows(root)[run_id]["status"] == "finished"


def test_the_default_time_limit_is_the_one_the_help_shows():
    from clbench.sweeps.command import DEFAULT_SLURM_TIME_MIN

    assert slurm.SlurmOptions(folder=Path("x")).time_min == DEFAULT_SLURM_TIME_MIN


def test_checkpoint_resubmits_the_same_task():
    task = RunTask("r", {"seed": 0}, "/somewhere")
    run = slurm.SlurmRun()
    again = run.checkpoint(task)
    assert isinstance(again, submitit.helpers.DelayedSubmission)
    assert again.function is run and again.args == (task,) and again.kwargs == {}


class _DeadJob:
    job_id = "77_1"

    def result(self) -> RunResult:
        raise submitit.core.utils.UncompletedJobError("Job 77_1 was killed (OOM)\nmore")


def test_a_job_without_a_result_is_failed_or_interrupted_when_it_checkpointed(tmp_path):
    task = RunTask("r", {"output": {"root": str(tmp_path)}}, str(tmp_path))
    result = slurm._result_of_job(_DeadJob(), task)
    assert result.status == "failed"
    assert result.error == (
        "slurm job 77_1 ended without a result: UncompletedJobError: Job 77_1 was killed (OOM)"
    )
    (tmp_path / "r").mkdir()
    RunDir(tmp_path / "r").set_status("interrupted")
    assert slurm._result_of_job(_DeadJob(), task).status == "interrupted"


# ------------------------------------------------------------------ the SLURM submission


@pytest.fixture
def fake_slurm(tmp_path, monkeypatch):
    """``sbatch`` that keeps the script it is given (and ``srun``, which submitit looks for)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    kept = tmp_path / "sbatch_scripts"
    kept.mkdir()
    scripts = {
        "sbatch": f'#!/bin/sh\ncp "$1" {kept}/$$.sh\necho "Submitted batch job 4242"\n',
        "srun": "#!/bin/sh\nexit 1\n",
    }
    for name, text in scripts.items():
        path = bin_dir / name
        path.write_text(text)
        path.chmod(path.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.delenv(slurm.CLUSTER_ENV, raising=False)
    return kept


def test_the_array_job_asks_slurm_for_the_gpus_time_partition_and_parallelism(tmp_path, fake_slurm):
    options = slurm.SlurmOptions(
        folder=tmp_path / "logs",
        time_min=30,
        partition="gpu",
        gpus_per_run=2,
        array_parallelism=3,
        cpus_per_task=4,
        additional={"account": "proj"},
        job_name="clbench-t",
    )
    executor = slurm.SlurmExecutor(options)
    assert executor.describe() == (
        "SLURM array job(s), partition gpu, 30 min per run, 2 GPU(s) per run, at most 3 at once; "
        f"logs in {tmp_path / 'logs'}"
    )
    tasks = [RunTask(f"r{i}", {}, str(tmp_path)) for i in range(2)]
    jobs = executor.submit(tasks)
    assert [job.job_id for job in jobs] == ["4242_0", "4242_1"]
    (script,) = [p.read_text() for p in fake_slurm.iterdir()]
    for line in (
        "#SBATCH --array=0-1%2",  # one array; at most min(runs, parallelism) at once
        "#SBATCH --gpus-per-node=2",
        "#SBATCH --cpus-per-task=4",
        "#SBATCH --nodes=1",
        "#SBATCH --ntasks-per-node=1",
        "#SBATCH --partition=gpu",
        "#SBATCH --time=30",
        "#SBATCH --account=proj",
        "#SBATCH --job-name=clbench-t",
        "#SBATCH --signal=USR2@90",  # the preemption / time-limit signal the runs checkpoint on
    ):
        assert line in script.splitlines(), f"{line!r} not in:\n{script}"


def test_cpu_runs_ask_for_no_gpu(tmp_path, fake_slurm):
    executor = slurm.SlurmExecutor(slurm.SlurmOptions(folder=tmp_path / "logs"))
    executor.submit([RunTask("r0", {}, str(tmp_path))])
    (script,) = [p.read_text() for p in fake_slurm.iterdir()]
    assert "gpus" not in script and "#SBATCH --time=60" in script


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "--executor: got 'slurm'; allowed: local or ray here: no sbatch command"),
        (["--jobs", "2"], "--jobs: got 2; allowed: 1 with --executor slurm"),
        (["--slurm-time", "0"], "--slurm-time: got 0; allowed: an integer >= 1"),
        (["--slurm-array-parallelism", "0"], "--slurm-array-parallelism: got 0"),
        (["--slurm-option", "account"], "--slurm-option: got 'account'; allowed: KEY=VALUE"),
    ],
)
def test_slurm_option_errors_exit_2(tmp_path, capsys, monkeypatch, args, message):
    monkeypatch.setenv("PATH", str(tmp_path))  # no sbatch here, whatever the machine has
    monkeypatch.delenv(slurm.CLUSTER_ENV, raising=False)
    suite = write_suite(tmp_path)
    assert main(["sweep", str(suite), "--executor", "slurm", *args]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "args",
    [
        ["--slurm-time", "30"],
        ["--slurm-partition", "gpu"],
        ["--slurm-folder", "logs"],
        ["--slurm-array-parallelism", "4"],
        ["--slurm-option", "qos=high"],
    ],
)
def test_slurm_options_need_the_slurm_executor(tmp_path, capsys, args):
    suite = write_suite(tmp_path)
    assert main(["sweep", str(suite), *args]) == 2
    assert f"{args[0]}: got " in capsys.readouterr().err


def test_an_unknown_test_cluster_is_refused(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv(slurm.CLUSTER_ENV, "kubernetes")
    suite = write_suite(tmp_path)
    assert main(["sweep", str(suite), "--executor", "slurm"]) == 2
    assert "CLBENCH_SLURM_CLUSTER: got 'kubernetes'" in capsys.readouterr().err
