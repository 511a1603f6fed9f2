"""A sweep under signals and concurrency (issue 16 item 5): its workers die with it, SIGTERM
checkpoints running runs and records them as interrupted, one sweep per results root."""

from __future__ import annotations

import fcntl
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from clbench.cli import main
from clbench.sweeps.executors import die_with_parent
from clbench.sweeps.state import LOCK_FILE
from tests.helpers import REPO
from tests.sweep.helpers import FAST_BASE, write_suite


def test_second_sweep_on_a_locked_root_exits_2_naming_the_holder(tmp_path, capsys):
    suite = write_suite(tmp_path)
    root = tmp_path / "out"
    root.mkdir()
    with (root / LOCK_FILE).open("w") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        held.write(json.dumps({"pid": 4242, "host": "elsewhere", "suite": "t"}))
        held.flush()
        assert main(["sweep", str(suite)]) == 2
        err = capsys.readouterr().err
        assert "pid 4242" in err and "elsewhere" in err and "in use" in err
        assert not (root / "sweep.json").exists()
    # released (a dead holder's lock is dropped by the kernel): the sweep runs
    assert main(["sweep", "--dry-run", str(suite)]) == 0


def test_sweep_root_that_cannot_be_made_is_refused(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("")
    path = write_suite(tmp_path, output={"root": str(blocker / "out")})
    assert main(["sweep", str(path)]) == 2
    assert "output.root" in capsys.readouterr().err


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="prctl is Linux-only")
def test_die_with_parent_arms_pdeathsig_in_a_child():
    code = (
        "import os, sys; from clbench.sweeps.executors import die_with_parent; "
        "print(die_with_parent(os.getppid()))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert out.stdout.strip() == "True"
    assert die_with_parent(os.getppid()) is True  # the parent here is alive: no exit


def _long_suite(tmp_path: Path) -> Path:
    base = {**FAST_BASE, "train": {"epochs": 3000, "batch_size": 16}}
    suite = {
        "name": "long",
        "base": base,
        "seeds": "0-2",
        "output": {"root": str(tmp_path / "out")},
    }
    path = tmp_path / "suite.yaml"
    path.write_text(yaml.safe_dump(suite))
    return path


def _start_sweep(tmp_path: Path) -> tuple[subprocess.Popen[str], Path]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "clbench", "sweep", str(_long_suite(tmp_path)), "--jobs", "2"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    root = tmp_path / "out"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # until two runs are training
        running = [
            p for p in root.glob("*/status.json") if '"running"' in p.read_text(errors="replace")
        ]
        if len(running) == 2 and (root / "sweep.json").exists():
            time.sleep(2)  # past the first checkpointable update
            return proc, root
        time.sleep(0.5)
    proc.kill()
    pytest.fail("the sweep did not start two runs")


def _workers(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().split()[2] == "Z")


@pytest.mark.slow
def test_sigterm_checkpoints_running_runs_and_says_how_to_resume(tmp_path):
    proc, root = _start_sweep(tmp_path)
    workers = _workers(proc.pid)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGTERM
    assert "interrupted by SIGTERM" in err and "resume with: clbench sweep" in err
    state = json.loads((root / "sweep.json").read_text())
    assert state["interrupted"]["by"] == "SIGTERM"
    assert state["counts"] == {"interrupted": 2, "cancelled": 1}
    for row in state["runs"]:
        if row["status"] == "interrupted":
            status = json.loads((root / row["run_id"] / "status.json").read_text())
            assert status["status"] == "interrupted" and "resume" in status
    time.sleep(1)
    assert not [w for w in workers if _alive(w)]


@pytest.mark.slow
def test_sigkill_leaves_no_orphan_workers(tmp_path):
    proc, root = _start_sweep(tmp_path)
    workers = _workers(proc.pid)
    assert workers
    proc.kill()
    proc.communicate(timeout=30)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and any(_alive(w) for w in workers):
        time.sleep(0.5)
    assert not [w for w in workers if _alive(w)]
    # the workers were told to stop (SIGTERM): the runs checkpointed, resumable
    statuses = [json.loads(p.read_text())["status"] for p in root.glob("*/status.json")]
    assert statuses and all(s == "interrupted" for s in statuses)
