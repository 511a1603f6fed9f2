"""Integrity of run folders (issue 16, items 2-4): damaged or crafted checkpoints and result
files are errors naming the file (exit 2) that leave the folder untouched; finished results are
never overwritten without ``--force``; a config never takes over another config's folder."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from clbench.cli import main
from clbench.config import build_config
from clbench.engine import job
from clbench.engine.checkpoint import load_checkpoint, save_checkpoint
from clbench.engine.lock import LOCK_FILE
from clbench.engine.run_dir import CHECKPOINT_FILE, DIGESTS_FILE
from clbench.engine.runner import RunInterrupted
from clbench.errors import CorruptedResultError
from clbench.results.reader import RunFolder
from tests.helpers import fast_overrides

OVERRIDES: dict[str, Any] = {"checkpoint.every": 5, "threads": 1}


def overrides(root: Path, **extra: Any) -> list[str]:
    return fast_overrides(root, **{**OVERRIDES, **extra})


def snapshot(folder: Path) -> dict[str, tuple[int, str]]:
    """Every file's mtime and content digest (the lock file's holder record changes by design)."""
    return {
        p.name: (p.stat().st_mtime_ns, hashlib.sha256(p.read_bytes()).hexdigest())
        for p in folder.iterdir()
        if p.name != LOCK_FILE
    }


def damage(path: Path, at: float = 0.5, n: int = 64) -> None:
    """Overwrite ``n`` bytes in the middle of ``path`` with different bytes."""
    data = bytearray(path.read_bytes())
    start = int(len(data) * at)
    for i in range(start, min(start + n, len(data))):
        data[i] ^= 0x5A
    path.write_bytes(bytes(data))


@pytest.fixture(scope="module")
def interrupted_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder stopped inside phase 1 (as by SIGTERM) with a checkpoint there."""
    root = tmp_path_factory.mktemp("interrupted")
    calls = [0]

    def stop_after_20_updates(_self: Any) -> str | None:
        calls[0] += 1
        return "SIGTERM" if calls[0] == 20 else None

    mp = pytest.MonkeyPatch()
    mp.setattr(job.StopSignals, "requested", stop_after_20_updates)
    try:
        with pytest.raises(RunInterrupted) as stop:
            job.run_job(build_config(None, overrides(root)), progress=False)
    finally:
        mp.undo()
    assert stop.value.position.in_phase and stop.value.position.phase == 1
    return Path(stop.value.run_dir)


@pytest.fixture
def interrupted(interrupted_template: Path, tmp_path: Path) -> Path:
    copy = tmp_path / interrupted_template.name
    shutil.copytree(interrupted_template, copy)
    return copy


@pytest.fixture(scope="module")
def finished_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("finished")
    return job.run_job(build_config(None, overrides(root)), progress=False).path


@pytest.fixture
def finished(finished_template: Path, tmp_path: Path) -> Path:
    copy = tmp_path / finished_template.name
    shutil.copytree(finished_template, copy)
    return copy


def refused(argv: list[str], folder: Path, named: Path, capsys: Any, *words: str) -> str:
    """Run ``argv``: exit 2, the error names ``named``, and the folder is untouched."""
    before = snapshot(folder)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert str(named) in err, err
    for word in words:
        assert word in err, err
    assert snapshot(folder) == before
    return err


def resign(path: Path, edit: Any) -> None:
    """Edit a checkpoint's content and save it with a valid digest (a crafted file)."""
    _, checkpoint = load_checkpoint(path)
    edit(checkpoint)
    save_checkpoint(path, checkpoint)


# ------------------------------------------------------------------ checkpoints
def test_damaged_checkpoint_is_refused_by_run_and_info(interrupted, capsys):
    ckpt = interrupted / CHECKPOINT_FILE
    damage(ckpt)
    refused(["run", "--quiet", "--resume", str(interrupted)], interrupted, ckpt, capsys, "digest")
    assert main(["info", str(interrupted)]) == 2
    assert str(ckpt) in capsys.readouterr().err


@pytest.mark.parametrize(
    ("edit", "word"),
    [
        (lambda c: c["position"].update(phase=99), "phase"),
        (lambda c: c["position"].update(step=c["position"]["step"] + 1), "does not fit"),
        (lambda c: c["position"].update(batch=10_000), "does not fit"),
        (lambda c: c["current"].pop("model"), "model"),
        (lambda c: c.update(phase_start=None), "phase_start"),
        (lambda c: c["position"].update(phase="1"), "position"),
        (lambda c: c["current"]["model"].popitem(), "does not fit"),
    ],
    ids=["phase99", "step", "batch", "no-model", "no-phase-start", "phase-str", "model-keys"],
)
def test_crafted_checkpoint_is_refused_before_any_write(interrupted, capsys, edit, word):
    ckpt = interrupted / CHECKPOINT_FILE
    resign(ckpt, edit)
    refused(["run", "--quiet", "--resume", str(interrupted)], interrupted, ckpt, capsys, word)


def test_checkpoint_of_the_old_format_is_refused(interrupted, capsys):
    import torch

    ckpt = interrupted / CHECKPOINT_FILE
    torch.save({"format": 1}, ckpt)
    refused(["run", "--quiet", "--resume", str(interrupted)], interrupted, ckpt, capsys, "older")


def test_good_checkpoint_still_resumes(interrupted):
    assert main(["run", "--quiet", "--resume", str(interrupted)]) == 0
    assert RunFolder(interrupted).finished


# ------------------------------------------------------------------ result files
@pytest.mark.parametrize(
    "name", ["records.parquet", "summary.json", "train_loss.parquet", "config.yaml"]
)
def test_damaged_result_file_of_a_finished_run_is_named(finished, capsys, name):
    damage(finished / name, at=0.3, n=8)
    assert main(["info", str(finished)]) == 2
    assert str(finished / name) in capsys.readouterr().err
    # (`clbench run` checks a finished folder's status and summary parse first, naming the file
    # without the --force hint; digest-level damage reaches run_job's check)
    argv = ["run", "--quiet", *overrides(finished.parent)]
    refused(argv, finished, finished / name, capsys)


def test_edited_summary_that_still_parses_is_caught(finished, capsys):
    path = finished / "summary.json"
    summary = json.loads(path.read_text())
    summary["metrics"]["final_acc"] = 0.999
    path.write_text(json.dumps(summary))
    assert main(["info", str(finished)]) == 2
    assert str(path) in capsys.readouterr().err


def test_damaged_digest_list_is_named(finished, capsys):
    path = finished / DIGESTS_FILE
    path.write_text(path.read_text()[:30])
    assert main(["info", str(finished)]) == 2
    assert str(path) in capsys.readouterr().err
    refused(["run", "--quiet", *overrides(finished.parent)], finished, path, capsys)


def test_info_of_an_intact_run_says_files_match(finished, capsys):
    assert main(["info", str(finished)]) == 0
    assert f"files    match their digests ({DIGESTS_FILE})" in capsys.readouterr().out


def test_folder_without_digests_is_read_as_unverified(finished, capsys):
    (finished / DIGESTS_FILE).unlink()  # as written by an older clbench
    assert main(["info", str(finished)]) == 0
    assert "not verified" in capsys.readouterr().out
    before = snapshot(finished)
    assert main(["run", "--quiet", *overrides(finished.parent)]) == 0
    assert snapshot(finished) == before  # returned, not re-run


# ------------------------------------------------------------------ finished results kept
@pytest.mark.parametrize("status", ["truncated", "empty"])
def test_damaged_status_of_a_finished_run_is_an_error_not_a_rerun(finished, capsys, status):
    path = finished / "status.json"
    if status == "truncated":
        os.truncate(path, 20)
    else:
        path.write_text("")
    refused(["run", "--quiet", *overrides(finished.parent)], finished, path, capsys)
    assert main(["run", "--quiet", "--force", *overrides(finished.parent)]) == 0
    assert RunFolder(finished).finished


@pytest.mark.parametrize("status", [None, "running", "interrupted", "failed"])
def test_summary_marks_a_run_finished_whatever_its_status(finished, status):
    path = finished / "status.json"
    if status is None:
        path.unlink()
    else:
        path.write_text(json.dumps({"status": status}))
    before = snapshot(finished)
    assert main(["run", "--quiet", *overrides(finished.parent)]) == 0
    assert snapshot(finished) == before


@pytest.mark.parametrize("damaged", ["status.json", "summary.json", "records.parquet"])
def test_run_job_itself_refuses_and_suggests_force(finished, damaged):
    """What sweeps (which call run_job, not the CLI) get: an error naming the file and --force."""
    if damaged == "status.json":
        os.truncate(finished / damaged, 20)
    else:
        damage(finished / damaged, at=0.3, n=8)
    before = snapshot(finished)
    with pytest.raises(CorruptedResultError, match="--force") as error:
        job.run_job(build_config(None, overrides(finished.parent)), progress=False)
    assert error.value.path == finished / damaged
    assert snapshot(finished) == before


def test_finished_status_without_summary_is_an_error(finished, capsys):
    (finished / "summary.json").unlink()
    argv = ["run", "--quiet", *overrides(finished.parent)]
    refused(argv, finished, finished / "summary.json", capsys)


# ------------------------------------------------------------------ another config's folder
@pytest.mark.parametrize("state", ["finished", "interrupted"])
def test_other_config_never_takes_over_a_folder(request, tmp_path, capsys, state):
    folder: Path = request.getfixturevalue(state)
    name = f"output.name={folder.name}"
    argv = ["run", "--quiet", *overrides(folder.parent, **{"train.lr": 0.5}), name]
    err = refused(argv, folder, folder, capsys, "output.name", "hash")
    assert "final_acc" not in err
    # --force is the explicit way to replace it
    assert main([*argv, "--force"]) == 0
    assert RunFolder(folder).config["train"]["lr"] == 0.5


def test_temp_files_of_a_killed_writer_are_removed_under_the_lock(tmp_path):
    config = build_config(None, overrides(tmp_path))
    folder = job.run_job(config, progress=False).path
    stale = [folder / ".checkpoint.pt.ab12cd_9", folder / ".records.parquet.zz00yy11"]
    for path in stale:
        path.write_bytes(b"half a file")
    keep = folder / ".notes"  # not a temp name of ours
    keep.write_text("mine")
    assert job.run_job(config, progress=False).skipped  # finished: nothing rerun...
    assert not any(p.exists() for p in stale)  # ...but the leftovers are gone
    assert keep.exists() and (folder / LOCK_FILE).exists()


def test_report_refuses_a_summary_edited_after_the_run(tmp_path, capsys):
    from clbench.errors import ClbenchError
    from clbench.reporting import render_report

    folder = job.run_job(build_config(None, overrides(tmp_path)), progress=False).path
    summary = json.loads((folder / "summary.json").read_text())
    summary["metrics"]["final_acc"] = 0.999  # valid JSON, a better number: still refused
    (folder / "summary.json").write_text(json.dumps(summary))
    with pytest.raises(ClbenchError, match=r"summary\.json.*does not match its digest"):
        render_report([tmp_path], strict=True)
    assert main(["report", str(tmp_path)]) == 2  # the only run is skipped: nothing to report
    assert "summary.json" in capsys.readouterr().err
