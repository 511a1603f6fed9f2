"""Chaos: one `clbench run` interrupted several times at random moments (SIGKILL and SIGTERM,
real processes, resumed by re-running the command or with ``--resume``) must end with exactly
the records, losses, metrics and parameters of an uninterrupted run.

The default suite runs a short form (ER, ``checkpoint.every=0``, 3 interruptions); the long form
(every resumable strategy, ``every`` 0 and 5, 6 interruptions) is marked slow. Each interruption
comes a random time after the process starts training, within 0.7 of the training time the run
has left, so it lands at a random update before the end.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pytest
import torch

from clbench.config import build_config
from clbench.engine.checkpoint import load_checkpoint
from clbench.engine.job import run_job
from clbench.engine.run_dir import CHECKPOINT_FILE
from clbench.results.reader import RunFolder
from tests.engine.helpers import RESUMABLE, resume_overrides
from tests.helpers import fast_overrides

KEEP = "checkpoint.keep=true"  # the final checkpoint holds the final parameters


@dataclass
class ChaosLog:
    """What happened to the interrupted run: one line per process."""

    lines: list[str] = field(default_factory=list)
    interrupted: int = 0

    def __str__(self) -> str:
        return "\n".join(self.lines)


def _spawn(args: list[str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "clbench", "run", "--quiet", *args],
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def _wait_training(root: Path, proc: subprocess.Popen[bytes], timeout: float = 120) -> bool:
    """Wait until ``proc`` has written its 'running' status (it trains from then on); False if
    it ended first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for status in root.glob("*/status.json"):
            try:
                info = json.loads(status.read_text())
            except ValueError:
                continue  # mid-replace
            if info.get("status") == "running" and info.get("pid") == proc.pid:
                return True
        if proc.poll() is not None:
            return False
        time.sleep(0.005)
    raise AssertionError("the run never started training")


def _progress(root: Path) -> int:
    """The update the run would resume from (its checkpoint's), 0 without one."""
    found = list(root.glob(f"*/{CHECKPOINT_FILE}"))
    return load_checkpoint(found[0])[0].step if found else 0


def run_with_chaos(
    overrides: list[str],
    root: Path,
    interruptions: int,
    seconds: float,
    updates: int,
    rng: random.Random,
) -> tuple[Path, ChaosLog]:
    """Run to the end, interrupting ``interruptions`` times. The whole run makes ``updates``
    updates, training and evaluating for ``seconds``; each interruption comes a uniform
    fraction (up to 0.7) of the time left after the process starts training, so it lands at a
    random update before the end (a SIGKILL with ``checkpoint.every=0`` loses the phase so far:
    the time left grows back)."""
    log = ChaosLog()
    for attempt in range(interruptions + 1):
        run_dirs = [p for p in root.glob("*") if p.is_dir()]
        if run_dirs and rng.random() < 0.5:  # half the time resume by folder
            args, how = ["--resume", str(run_dirs[0])], "--resume"
        else:
            args, how = [*overrides, f"output.root={root}"], "same command"
        left = 1.0 - _progress(root) / updates
        proc, sig = _spawn(args), None
        if attempt < interruptions and _wait_training(root, proc):
            time.sleep(rng.uniform(0, 0.7 * left * seconds))
            sig = rng.choice([signal.SIGKILL, signal.SIGTERM])
            proc.send_signal(sig)
        _, err = proc.communicate(timeout=600)
        text = err.decode(errors="replace").strip().splitlines()
        if proc.returncode == 0:
            log.lines.append(f"{how}: finished")
            break
        assert proc.returncode in (-signal.SIGKILL, 128 + signal.SIGTERM), (
            f"{how}: exit {proc.returncode}\n" + "\n".join(text[-15:]) + f"\n{log}"
        )
        (run_dir,) = [p for p in root.glob("*") if p.is_dir()]
        ckpt = run_dir / CHECKPOINT_FILE
        at = load_checkpoint(ckpt)[0].describe() if ckpt.is_file() else "no checkpoint"
        name = signal.Signals(sig).name if sig else "no signal"
        log.lines.append(f"{how}: {name} -> exit {proc.returncode}, checkpoint at {at}")
        log.interrupted += 1
    else:
        raise AssertionError(f"the run did not finish\n{log}")
    (run_dir,) = [p for p in root.glob("*") if p.is_dir()]
    return run_dir, log


def assert_same_run(got: Path, want: Path, log: ChaosLog) -> None:
    a, b = RunFolder(got), RunFolder(want)
    assert a.finished, log
    pd.testing.assert_frame_equal(a.records(), b.records(), obj=f"records\n{log}")
    pd.testing.assert_frame_equal(a.train_loss(), b.train_loss(), obj=f"losses\n{log}")
    assert a.summary["metrics"] == b.summary["metrics"], log
    got_model = load_checkpoint(got / CHECKPOINT_FILE)[1]["current"]["model"]
    want_model = load_checkpoint(want / CHECKPOINT_FILE)[1]["current"]["model"]
    assert got_model.keys() == want_model.keys()
    for name, value in want_model.items():
        assert torch.equal(got_model[name], value), f"parameter {name} differs\n{log}"


def chaos_case(
    tmp_path: Path, overrides: list[str], interruptions: int, seed: int
) -> tuple[ChaosLog, int]:
    """Reference run in process, then the interrupted one; returns its log and the number of
    updates of the run."""
    reference = run_job(
        build_config(None, [*overrides, f"output.root={tmp_path / 'ref'}"]), progress=False
    )
    assert reference.status == "finished", f"the reference run {reference.status}: pick settings"
    budget = reference.summary["budget"]
    seconds = budget["train_time_s"] + budget["eval_time_s"]
    rng = random.Random(seed)
    run_dir, log = run_with_chaos(
        overrides, tmp_path / "chaos", interruptions, seconds, budget["updates"], rng
    )
    assert_same_run(run_dir, reference.path, log)
    assert log.interrupted == interruptions, f"the run ended before all interruptions\n{log}"
    print(f"\n{budget['updates']} updates, {log.interrupted} interruptions:\n{log}")  # with -s
    return log, budget["updates"]


def test_chaos_short_form(tmp_path):
    """Issue 16's failure: ER with ``checkpoint.every=0`` (only a signal's checkpoint inside a
    phase), 3 random SIGKILL/SIGTERM interruptions."""
    overrides = fast_overrides(
        tmp_path,
        **{
            "train.epochs": 30,
            "train.batch_size": 4,
            "eval.every": 1,
            "checkpoint.every": 0,
            "threads": 1,
        },
    )
    overrides = [o for o in overrides if not o.startswith("output.root=")] + [KEEP]
    chaos_case(tmp_path, overrides, interruptions=3, seed=16)


@pytest.mark.slow
@pytest.mark.parametrize("every", [0, 5])
@pytest.mark.parametrize("strategy", RESUMABLE)
def test_chaos_every_resumable_strategy(tmp_path, strategy, every, resnet18_backbone):
    base = resume_overrides(tmp_path, strategy, resnet18_backbone)
    overrides = [o for o in base if not o.startswith("output.root=")]
    # many small updates, each evaluated, so the run trains for seconds and the interruptions
    # land all over it (the backbone strategies' updates are slower: fewer of them)
    pretrained = "model.name=timm" in base
    overrides += [
        f"train.batch_size={8 if pretrained else 4}",
        f"train.epochs={2 if pretrained else 30}",
        "eval.every=1",
        f"checkpoint.every={every}",
        KEEP,
        *(["train.lr=0.01"] if strategy == "k_fpf" else []),  # 30 epochs diverge at the default
    ]
    chaos_case(tmp_path, overrides, interruptions=6, seed=zlib.crc32(f"{strategy}{every}".encode()))
