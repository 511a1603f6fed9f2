"""`clbench info RUN_DIR`: status, identity, versions, checkpoint, metrics; damaged files named."""

from __future__ import annotations

import json
from pathlib import Path

from clbench.cli import main
from clbench.config import build_config
from clbench.engine.job import run_job
from tests.helpers import fast_overrides


def finished_run(tmp_path: Path, **extra: object) -> Path:
    return run_job(build_config(None, fast_overrides(tmp_path, **extra)), progress=False).path


def test_info_shows_status_config_versions_and_metrics(tmp_path, capsys):
    path = finished_run(tmp_path, **{"checkpoint.keep": "true"})
    assert main(["info", str(path)]) == 0
    out = capsys.readouterr().out
    assert "status   finished" in out
    assert "strategy=er, scenario=class_incremental, data=synthetic" in out
    assert f"hash {path.name.rsplit('-', 1)[1]}" in out  # the hash that names the folder
    assert "torch " in out and "checkpoint at update" in out
    metrics = json.loads((path / "summary.json").read_text())["metrics"]
    assert f"{metrics['final_acc']:.4f}" in out


def test_info_of_a_failed_run_shows_the_error(tmp_path, capsys):
    path = finished_run(tmp_path)
    status = {"status": "failed", "error": "RuntimeError('boom')", "traceback": "a\nboom!"}
    (path / "status.json").write_text(json.dumps(status))
    assert main(["info", str(path)]) == 0
    out = capsys.readouterr().out
    assert "status   failed" in out and "boom" in out and "metrics" not in out


def test_info_names_a_truncated_file(tmp_path, capsys):
    path = finished_run(tmp_path)
    summary = path / "summary.json"
    summary.write_text(summary.read_text()[:40])
    assert main(["info", str(path)]) == 2
    assert str(summary) in capsys.readouterr().err


def test_info_of_a_missing_folder_is_bad_input(tmp_path, capsys):
    assert main(["info", str(tmp_path / "nope")]) == 2
    assert "RUN_DIR" in capsys.readouterr().err
