"""``clbench sweep --gpus-per-run`` (issue 19): the option's checks, the assignment of devices to
local pool workers, and the GPU request of Ray tasks. No GPU is needed: the device count is
faked, and what is checked is the environment each worker gets and the resources each task asks
for."""

from __future__ import annotations

import os
import sys
import time
import types
from pathlib import Path
from typing import Any

import pytest

from clbench.cli import main
from clbench.sweeps import devices
from clbench.sweeps.command import _resume_command, add_command
from clbench.sweeps.devices import check_gpus_per_run, gpu_slots
from clbench.sweeps.executors import LocalExecutor, RayExecutor, RunResult, RunTask
from tests.sweep.helpers import write_suite


@pytest.fixture
def fake_gpus(monkeypatch):
    """``fake_gpus(n)``: this process sees ``n`` CUDA devices (numbered 0..n-1)."""

    def set_count(n: int) -> None:
        monkeypatch.setattr(devices, "cuda_device_count", lambda: n)
        monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)

    return set_count


# ------------------------------------------------------------------ the assignment (pure)


@pytest.mark.parametrize(
    ("n_gpus", "per_run", "slots"),
    [
        (1, 1, ["0"]),
        (4, 1, ["0", "1", "2", "3"]),
        (4, 2, ["0,1", "2,3"]),
        (5, 2, ["0,1", "2,3"]),  # the fifth device stays unused
        (3, 4, []),  # a run needs more devices than there are
        (2, 0.5, ["0", "1", "0", "1"]),  # 2 runs per GPU, spread over both first
        (1, 0.25, ["0", "0", "0", "0"]),
        (2, 0.2, ["0", "1"] * 5),  # 1/0.2 is 4.999... in floating point: still 5 per GPU
        (3, 0.4, ["0", "1", "2"] * 2),  # floor(1/0.4) = 2 per GPU
        (0, 1, []),
    ],
)
def test_gpu_slots_give_each_worker_whole_gpus_or_a_share(n_gpus, per_run, slots):
    # floor(N/G) slots (runs at once) for G >= 1, N * floor(1/G) for G < 1
    assert gpu_slots(n_gpus, per_run) == slots


def test_gpu_slots_name_the_devices_as_the_parent_sees_them():
    # a sweep started with CUDA_VISIBLE_DEVICES=2,3 must hand out 2 and 3, not 0 and 1
    assert gpu_slots(2, 1, ["2", "3"]) == ["2", "3"]
    assert gpu_slots(2, 2, ["GPU-a", "GPU-b"]) == ["GPU-a,GPU-b"]
    assert gpu_slots(2, 0.5, ["6", "7"]) == ["6", "7", "6", "7"]


@pytest.mark.parametrize(("n_gpus", "per_run"), [(2, 0), (2, -1), (2, 1.5), (-1, 1)])
def test_gpu_slots_refuse_what_the_option_check_refuses(n_gpus, per_run):
    with pytest.raises(ValueError):
        gpu_slots(n_gpus, per_run)


def test_local_slots_follow_the_parents_cuda_visible_devices(fake_gpus, monkeypatch):
    fake_gpus(2)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "5,7")
    assert devices.local_gpu_slots(1) == ["5", "7"]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")  # unusable: fall back to the indices
    assert devices.local_gpu_slots(1) == ["0", "1"]


# ------------------------------------------------------------------ the option's checks


@pytest.mark.parametrize(
    ("gpus", "args", "message"),
    [
        (0, ["--gpus-per-run", "1"], "--gpus-per-run: got 1; allowed: 0 here: no CUDA device"),
        (0, ["--gpus-per-run", "0.5"], "torch.cuda.device_count() is 0"),
        (2, ["--gpus-per-run", "4"], "--gpus-per-run: got 4; allowed: at most 2: only 2 CUDA"),
        (2, ["--gpus-per-run", "1.5"], "got 1.5; allowed: a whole number of GPUs when above 1"),
        (2, ["--gpus-per-run", "-1"], "got -1; allowed: a number >= 0"),
        (2, ["--gpus-per-run", "nan"], "got nan; allowed: a number >= 0"),
        (0, ["--gpus-per-run", "1", "--executor", "ray"], "no CUDA device is visible"),
        (
            2,
            ["--gpus-per-run", "0.5", "--executor", "slurm"],
            "got 0.5; allowed: a whole number of GPUs with --executor slurm",
        ),
    ],
)
def test_invalid_gpus_per_run_exits_2_naming_option_value_and_what_is_allowed(
    tmp_path, capsys, fake_gpus, gpus, args, message
):
    fake_gpus(gpus)
    suite = write_suite(tmp_path)
    assert main(["sweep", str(suite), *args]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()  # refused before anything is written


def test_ray_on_a_remote_cluster_is_not_checked_against_this_machine(tmp_path, fake_gpus):
    fake_gpus(0)  # the cluster at --address has its own GPUs
    suite = write_suite(tmp_path)
    args = ["--executor", "ray", "--address", "10.0.0.1:6379", "--gpus-per-run", "1"]
    assert main(["sweep", str(suite), *args, "--dry-run"]) == 0


def test_check_accepts_zero_fractions_and_whole_numbers():
    assert check_gpus_per_run(0, "local") == 0
    assert check_gpus_per_run(0.25, "ray") == 0.25
    assert check_gpus_per_run(2, "slurm") == 2.0


def test_resume_command_keeps_the_gpu_and_slurm_options():
    import argparse

    parser = argparse.ArgumentParser()
    add_command(parser.add_subparsers(dest="command"))
    slurm = ["--slurm-time", "30", "--slurm-partition", "gpu", "--slurm-option", "account=proj"]
    args = parser.parse_args(
        ["sweep", "s.yaml", "--executor", "slurm", "--gpus-per-run", "2", *slurm]
    )
    assert _resume_command(args) == (
        "clbench sweep s.yaml --slurm-partition gpu --slurm-time 30 --slurm-option account=proj "
        "--executor slurm --gpus-per-run 2"
    )
    plain = parser.parse_args(["sweep", "s.yaml", "--gpus-per-run", "0.5", "--jobs", "4"])
    assert _resume_command(plain) == "clbench sweep s.yaml --jobs 4 --gpus-per-run 0.5"


# ------------------------------------------------------------------ local pool: one slot each


def report_worker_devices(delay: float) -> tuple[int, str | None]:
    """In a pool worker: its pid and the CUDA_VISIBLE_DEVICES it was started with."""
    time.sleep(delay)  # keep the worker busy so that the next probe goes to the other one
    return os.getpid(), os.environ.get("CUDA_VISIBLE_DEVICES")


def test_each_pool_worker_starts_with_its_own_gpu_slot(fake_gpus):
    fake_gpus(2)
    executor = LocalExecutor(jobs=4, threads=1, gpu_slots=devices.local_gpu_slots(1))
    assert executor.jobs == 2  # 2 GPUs, 1 per run: at most 2 runs at once, whatever --jobs says
    assert "--jobs 4 capped at 2" in executor.describe()
    with executor:
        pool = executor._start_pool()
        seen = [f.result() for f in [pool.submit(report_worker_devices, 1.0) for _ in range(4)]]
    by_worker = dict(seen)
    assert len(by_worker) == 2 and sorted(by_worker.values()) == ["0", "1"]
    for pid, visible in seen:  # a worker keeps its slot for all its runs
        assert by_worker[pid] == visible


def test_shared_gpus_spread_over_devices_and_cpu_runs_pin_nothing(fake_gpus):
    fake_gpus(2)
    shared = LocalExecutor(jobs=2, threads=1, gpu_slots=devices.local_gpu_slots(0.5))
    assert shared.jobs == 2 and shared.gpu_slots == ["0", "1"]  # one per GPU before sharing
    four = LocalExecutor(jobs=8, threads=1, gpu_slots=devices.local_gpu_slots(0.5))
    assert four.jobs == 4 and four.gpu_slots == ["0", "1", "0", "1"]
    cpu = LocalExecutor(jobs=3, threads=1)
    assert cpu.jobs == 3 and cpu.gpu_slots == [] and "GPU" not in cpu.describe()


def test_sweep_with_gpus_per_run_runs_its_runs_on_the_pinned_pool(tmp_path, capsys, fake_gpus):
    # on this CPU machine the workers see CUDA_VISIBLE_DEVICES=0 / 1 and no device: the runs
    # fall back to the CPU (device auto), which checks the whole path short of a real GPU
    fake_gpus(2)
    suite = write_suite(tmp_path, seeds="0-1", overrides=["train.epochs=1"])
    assert main(["sweep", str(suite), "--jobs", "3", "--gpus-per-run", "1"]) == 0
    out = capsys.readouterr().out
    assert "a local pool of 2 process(es)" in out and "CUDA_VISIBLE_DEVICES 0 | 1" in out
    assert "2 finished" in out


# ------------------------------------------------------------------ Ray: the request


def test_ray_tasks_ask_for_num_gpus_only_when_runs_get_gpus():
    assert RayExecutor(2, 1).remote_options() == {"num_cpus": 1, "max_retries": 0}
    options = RayExecutor(2, 1, gpus_per_run=0.5).remote_options()
    assert options == {"num_cpus": 1, "max_retries": 0, "num_gpus": 0.5}
    assert "0.5 GPU(s) per run" in RayExecutor(2, 1, gpus_per_run=0.5).describe()


def test_ray_remote_function_carries_num_gpus():
    ray = pytest.importorskip("ray")
    from clbench.sweeps.executors import execute_run

    remote = ray.remote(**RayExecutor(2, 1, gpus_per_run=2).remote_options())(execute_run)
    assert remote._default_options["num_gpus"] == 2  # what Ray schedules the task by


class FakeRay(types.ModuleType):
    """Just enough of ``ray`` for `RayExecutor.run`: tasks run at once, options are recorded."""

    def __init__(self, gpus: float) -> None:
        super().__init__("ray")
        self.gpus, self.options, self.init_args = gpus, [], None

    def is_initialized(self) -> bool:
        return self.init_args is not None

    def init(self, **kwargs: Any) -> None:
        self.init_args = kwargs

    def shutdown(self) -> None:
        self.init_args = None

    def cluster_resources(self) -> dict[str, float]:
        return {"CPU": 4.0, "GPU": self.gpus}

    def remote(self, **options: Any) -> Any:
        self.options.append(options)

        def wrap(fn: Any) -> Any:
            return types.SimpleNamespace(remote=lambda task: ("ref", task.run_id))

        return wrap

    def wait(self, refs: list[Any], num_returns: int) -> tuple[list[Any], list[Any]]:
        return refs[:num_returns], refs[num_returns:]

    def get(self, ref: Any) -> RunResult:
        return RunResult(ref[1], "finished")

    def cancel(self, ref: Any) -> None:
        pass


def test_ray_executor_submits_its_tasks_with_the_gpu_request(monkeypatch, capsys):
    fake = FakeRay(gpus=0)
    monkeypatch.setitem(sys.modules, "ray", fake)
    tasks = [RunTask(f"r{i}", {}, str(Path.cwd())) for i in range(3)]
    results: list[RunResult] = []
    with RayExecutor(2, 1, address="10.0.0.1:6379", gpus_per_run=0.5) as executor:
        executor.run(tasks, results.append)
    assert fake.options == [{"num_cpus": 1, "max_retries": 0, "num_gpus": 0.5}]
    assert sorted(r.run_id for r in results) == ["r0", "r1", "r2"]
    # a cluster without enough GPUs would keep the tasks pending: the sweep says so
    assert "the Ray cluster has 0 GPU(s) now" in capsys.readouterr().err
    assert fake.init_args is None  # the cluster connection this sweep opened is closed
