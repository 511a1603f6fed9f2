"""Checkpoint and resume: every resumable strategy continues bit-identically from a checkpoint
taken inside a phase and at a phase end (in process), and a SIGKILLed `clbench run` resumes
to the records an uninterrupted run writes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import torch

from clbench.cli import main
from clbench.config import build_config
from clbench.engine.checkpoint import (
    Checkpointer,
    Position,
    load_checkpoint,
    save_checkpoint,
)
from clbench.engine.job import run_job
from clbench.engine.run_dir import CHECKPOINT_FILE
from clbench.engine.runner import Experiment, RunInterrupted, prepare
from clbench.results.reader import RunFolder
from tests.engine.helpers import RESUMABLE, resume_overrides
from tests.helpers import fast_overrides


class MemoryCheckpointer(Checkpointer):
    """Keeps every checkpoint, round-tripped through the real file format."""

    def __init__(self, tmp_path: Path, every: int) -> None:
        super().__init__(tmp_path / CHECKPOINT_FILE, every, at_phase_end=True)
        self.saved: list[tuple[Position, dict[str, Any]]] = []

    def save(self, checkpoint: dict[str, Any]) -> None:
        save_checkpoint(self.path, checkpoint)
        self.saved.append(load_checkpoint(self.path))


def state_fingerprint(exp: Experiment) -> tuple[pd.DataFrame, list[torch.Tensor]]:
    return exp.log.frame(), [p.detach().clone() for p in exp.model.parameters()]


@pytest.mark.parametrize("strategy", RESUMABLE)
def test_resume_from_any_checkpoint_is_bit_identical(tmp_path, strategy, resnet18_backbone):
    config = build_config(None, resume_overrides(tmp_path, strategy, resnet18_backbone))
    reference = Experiment(prepare(config))
    saver = MemoryCheckpointer(tmp_path, every=4)
    reference.run(checkpointer=saver)
    records, params = state_fingerprint(reference)
    inside = [c for c in saver.saved if c[0].in_phase and c[0].phase > 0]
    n_phases = len(reference.prepared.plan.phases)
    boundary = [c for c in saver.saved if not c[0].in_phase and c[0].phase < n_phases]
    assert inside and boundary, "the stream must offer checkpoints inside and between phases"
    # the first checkpoint inside a later phase, and the first phase end
    for position, checkpoint in (inside[0], boundary[0]):
        resumed = Experiment(prepare(config))
        resumed.restore(position, checkpoint)
        resumed.run()
        got_records, got_params = state_fingerprint(resumed)
        pd.testing.assert_frame_equal(got_records, records)
        for a, b in zip(got_params, params, strict=True):
            assert torch.equal(a, b), f"{strategy}: parameters differ after resuming at {position}"


def interrupted_at(steps: set[int]) -> tuple[Callable[[int], None], Callable[[], str | None]]:
    """`on_update` and `should_stop` for `Experiment.run` that ask to stop after those updates
    (as a SIGTERM does)."""
    now = [0]

    def on_update(step: int) -> None:
        now[0] = step

    return on_update, lambda: "SIGTERM" if now[0] in steps else None


@pytest.mark.parametrize("every", [0, 5])
@pytest.mark.parametrize("strategy", RESUMABLE)
def test_repeated_interruptions_in_one_phase_resume_exactly(
    tmp_path, strategy, every, resnet18_backbone
):
    """Stop (as on SIGTERM) twice inside one phase, once more in another, resuming from the file
    each time: with `checkpoint.every=0` too, the phase start must travel in every checkpoint
    taken inside a phase, resumed phases included (issue 16: it was None, then a TypeError)."""
    overrides = resume_overrides(tmp_path, strategy, resnet18_backbone)
    overrides.append(f"checkpoint.every={every}")
    config = build_config(None, overrides)
    reference = Experiment(prepare(config))
    reference.run()
    records, params = state_fingerprint(reference)
    ends = reference.timing.phase_end_steps
    assert len(ends) >= 2 and ends[1] - ends[0] >= 4, "phase 1 must offer several stops"
    # early and late in phase 1 (the second one inside a resumed phase), mid phase 0, and at
    # the last update of a later phase (a checkpoint whose epoch is used up)
    stops = sorted({ends[0] + 1, ends[1] - 2, max(1, ends[0] // 2), ends[-1] - 1})
    path = tmp_path / CHECKPOINT_FILE
    seen: list[Position] = []
    for _ in range(len(stops) + 1):
        exp = Experiment(prepare(config))
        if seen:
            exp.restore(*load_checkpoint(path))
            exp.total_updates()  # as `run_job` does (for the progress bar): must not disturb it
        on_update, should_stop = interrupted_at(set(stops))
        try:
            exp.run(on_update, Checkpointer(path, every, True), should_stop)
        except RunInterrupted as stop:
            assert stop.checkpointed and stop.position.in_phase
            seen.append(stop.position)
            stops.remove(stop.position.step)
            continue
        break
    assert not stops, f"not stopped at {stops}"
    got_records, got_params = state_fingerprint(exp)
    pd.testing.assert_frame_equal(got_records, records)
    for a, b in zip(got_params, params, strict=True):
        assert torch.equal(a, b), f"{strategy}: parameters differ after stops at {seen}"
    assert [p.phase for p in seen].count(1) >= 2


def test_checkpoint_of_another_config_is_refused(tmp_path):
    config = build_config(None, fast_overrides(tmp_path))
    exp = Experiment(prepare(config))
    saver = MemoryCheckpointer(tmp_path, every=5)
    exp.run(checkpointer=saver)
    other = Experiment(prepare(build_config(None, fast_overrides(tmp_path, **{"train.lr": 0.5}))))
    with pytest.raises(Exception, match="checkpoint"):
        other.restore(*saver.saved[0])


def test_corrupted_checkpoint_names_the_file_and_writes_nothing(tmp_path, capsys):
    overrides = fast_overrides(tmp_path, **{"train.epochs": 1})
    assert main(["run", "--quiet", *overrides, "checkpoint.keep=true"]) == 0
    (run_dir,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    # make it look interrupted (a summary would mark it finished, and it would be returned)
    (run_dir / "status.json").write_text('{"status": "interrupted"}')
    (run_dir / "summary.json").unlink()
    ckpt = run_dir / CHECKPOINT_FILE
    ckpt.write_bytes(ckpt.read_bytes()[:100])  # truncated

    def stamps() -> dict[str, int]:  # the lock file is the exception: it records each holder
        return {p.name: p.stat().st_mtime_ns for p in run_dir.iterdir() if p.name != ".lock"}

    before = stamps()
    assert main(["run", "--quiet", *overrides]) == 2
    assert str(ckpt) in capsys.readouterr().err
    assert stamps() == before


def test_finished_run_drops_its_checkpoint_unless_kept(tmp_path):
    out = run_job(build_config(None, fast_overrides(tmp_path)), progress=False)
    assert not (out.path / CHECKPOINT_FILE).exists()
    kept = run_job(
        build_config(None, fast_overrides(tmp_path, **{"checkpoint.keep": "true", "seed": 1})),
        progress=False,
    )
    position, _ = load_checkpoint(kept.path / CHECKPOINT_FILE)
    assert position.step == kept.summary["budget"]["updates"] and not position.in_phase


# ------------------------------------------------------------------ real processes
def slow_overrides(tmp_path: Path) -> list[str]:
    """A run of a few seconds (many small updates, evaluation every update)."""
    return fast_overrides(
        tmp_path,
        **{
            "train.epochs": 6,
            "train.batch_size": 4,
            "eval.every": 1,
            "checkpoint.every": 25,
            "threads": 1,
        },
    )


def start_run(overrides: list[str]) -> subprocess.Popen[bytes]:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "clbench", "run", "--quiet", *overrides],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def wait_for_checkpoint(root: Path, proc: subprocess.Popen[bytes], timeout: float = 120) -> Path:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = list(root.glob(f"*/{CHECKPOINT_FILE}"))
        if found:
            return found[0].parent
        assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
        time.sleep(0.01)
    raise AssertionError("no checkpoint appeared")


def test_sigkill_mid_phase_then_resume_matches_uninterrupted_run(tmp_path, capsys):
    reference = run_job(build_config(None, slow_overrides(tmp_path / "ref")), progress=False)
    killed_root = tmp_path / "killed"
    proc = start_run(slow_overrides(killed_root))
    run_dir = wait_for_checkpoint(killed_root, proc)
    proc.kill()
    proc.wait()
    assert RunFolder(run_dir).status == "running"  # visibly partial, not finished
    assert not (run_dir / "summary.json").exists()
    assert main(["info", str(run_dir)]) == 0
    assert f"is gone: the run was killed; resume with: clbench run --resume {run_dir}" in (
        capsys.readouterr().out
    )
    position, _ = load_checkpoint(run_dir / CHECKPOINT_FILE)
    assert position.in_phase and position.step < reference.summary["budget"]["updates"]

    assert main(["run", "--quiet", "--resume", str(run_dir)]) == 0
    resumed = RunFolder(run_dir)
    assert resumed.finished
    assert resumed.status_info["resumed_from"] == position.describe()
    pd.testing.assert_frame_equal(resumed.records(), RunFolder(reference.path).records())
    assert resumed.summary["metrics"] == reference.summary["metrics"]


def test_sigterm_checkpoints_and_says_how_to_resume(tmp_path):
    proc = start_run(slow_overrides(tmp_path))
    run_dir = wait_for_checkpoint(tmp_path, proc)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGTERM
    assert f"clbench run --resume {run_dir}" in err.decode()
    status = RunFolder(run_dir).status_info
    assert status["status"] == "interrupted" and "SIGTERM" in status["error"]
    position, _ = load_checkpoint(run_dir / CHECKPOINT_FILE)
    assert position.in_phase  # saved at the update where the signal arrived
    assert main(["run", "--quiet", "--resume", str(run_dir)]) == 0
    assert RunFolder(run_dir).finished


def test_nonfinite_loss_stops_the_run_as_diverged(tmp_path, capsys):
    overrides = fast_overrides(tmp_path, **{"train.lr": 1e30, "train.epochs": 3})
    assert main(["run", "--quiet", *overrides]) == 1
    (run_dir,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    status = RunFolder(run_dir).status_info
    assert status["status"] == "diverged" and status["step"] >= 1
    assert not (run_dir / "summary.json").exists()
    assert "diverged" in capsys.readouterr().err
    losses = RunFolder(run_dir).train_loss()
    assert losses.loss.iloc[: status["step"] - 1].notna().all()
    assert not torch.isfinite(torch.tensor(losses.loss.iloc[status["step"] - 1]))
