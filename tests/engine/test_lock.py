"""One writer per run folder (issue 16, item 4): `RunLock` and `clbench run` refusing a folder
another process holds, naming its pid and host; the OS releases a dead holder's lock."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from clbench.cli import main
from clbench.engine.lock import LOCK_FILE, RunLock, RunLockedError, lock_holder
from clbench.results.reader import RunFolder
from tests.helpers import fast_overrides

HOLD = """
import sys, time
from pathlib import Path
from clbench.engine.lock import RunLock
lock = RunLock(Path(sys.argv[1])).acquire()
print("held", flush=True)
time.sleep(600)
"""


def test_second_lock_is_refused_with_holder_then_free_after_release(tmp_path):
    folder = tmp_path / "run"
    assert lock_holder(folder) is None  # no folder, no lock file: free
    with RunLock(folder) as first:
        assert first.held and (folder / LOCK_FILE).is_file()
        holder = lock_holder(folder)
        assert holder is not None
        assert (holder["pid"], holder["host"]) == (os.getpid(), socket.gethostname())
        with pytest.raises(RunLockedError) as refused:
            RunLock(folder).acquire()  # a second open file conflicts, even in one process
        assert f"pid {os.getpid()} on host {socket.gethostname()}" in str(refused.value)
        assert str(folder) in str(refused.value)
    assert not first.held and lock_holder(folder) is None
    with RunLock(folder):  # free again
        pass


def test_lock_of_a_killed_process_is_released(tmp_path):
    folder = tmp_path / "run"
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(folder)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
        holder = lock_holder(folder)
        assert holder is not None and holder["pid"] == proc.pid
        with pytest.raises(RunLockedError, match=f"pid {proc.pid}"):
            RunLock(folder).acquire()
    finally:
        proc.kill()
        proc.wait()
    with RunLock(folder):  # the kernel dropped the dead holder's lock
        pass


def test_run_on_a_locked_folder_exits_2_and_writes_nothing(tmp_path, capsys):
    overrides = fast_overrides(tmp_path, **{"output.name": "taken"})
    folder = tmp_path / "taken"
    with RunLock(folder):
        assert main(["run", "--quiet", *overrides]) == 2
        err = capsys.readouterr().err
        assert f"pid {os.getpid()} on host {socket.gethostname()}" in err
        assert [p.name for p in folder.iterdir()] == [LOCK_FILE]
    assert main(["run", "--quiet", *overrides]) == 0


def test_two_identical_runs_one_runs_the_other_is_refused(tmp_path):
    # the first run is long enough never to finish while the second starts (it is stopped with
    # SIGTERM below); a short one raced the second's start-up and sometimes finished first
    overrides = fast_overrides(
        tmp_path,
        **{"train.epochs": 1000, "train.batch_size": 4, "eval.every": 1, "threads": 1},
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "clbench", "run", "--quiet", *overrides]
    first = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while not list(tmp_path.glob("*/status.json")):  # the first one is running
            assert first.poll() is None and time.monotonic() < deadline
            time.sleep(0.01)
        second = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
        assert second.returncode == 2, second.stderr
        assert f"in use by pid {first.pid} on host {socket.gethostname()}" in second.stderr
    finally:
        if first.poll() is None:
            first.send_signal(signal.SIGTERM)
        first.communicate(timeout=120)
    (folder,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    # only the first one ever held (and wrote) the folder
    assert json.loads((folder / LOCK_FILE).read_text())["pid"] == first.pid
    assert RunFolder(folder).status in ("finished", "interrupted")


def test_info_names_the_holder_and_skips_digests_of_a_folder_in_use(tmp_path, capsys):
    assert main(["run", "--quiet", *fast_overrides(tmp_path, **{"output.name": "r"})]) == 0
    folder = tmp_path / "r"
    (folder / "records.parquet").write_bytes(b"being rewritten")  # mid-write, as it may look
    with RunLock(folder):
        assert main(["info", str(folder)]) == 0
        out = capsys.readouterr().out
        assert f"in use by pid {os.getpid()} on host {socket.gethostname()}" in out
        assert "not verified while the run is in use" in out
    assert main(["info", str(folder)]) == 2  # free again: the damage is reported
    assert str(folder / "records.parquet") in capsys.readouterr().err
