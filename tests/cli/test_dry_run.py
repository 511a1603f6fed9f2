"""``clbench run --dry-run``: validates, lists every missing file, describes the plan, writes
nothing; and every paper config passes it (missing data reported, not a config error)."""

from __future__ import annotations

from pathlib import Path

import pytest

from clbench.cli import main
from tests.helpers import REPO, experiment, fast_overrides


def test_dry_run_describes_the_plan_and_writes_nothing(tmp_path, capsys):
    root = tmp_path / "results"
    overrides = fast_overrides(root, **{"eval.schedule": "adaptive", "eval.dense": 3})
    assert main(["run", *overrides, "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert not root.exists()
    assert "4 tasks" in out and "task 3: classes" in out
    # the plan's counts are the ones a run makes
    exp = experiment(tmp_path / "real", **{"eval.schedule": "adaptive", "eval.dense": 3})
    frame = exp.log.frame()
    evaluations = frame.loc[(frame["kind"] == "subset") & (frame["step"] > 0), "step"].nunique()
    assert f"updates: {exp.loop.plan.total_updates} (16 / 16 / 16 / 16 per phase" in out
    assert f"continual evaluations (adaptive): {evaluations} (" in out
    assert "memory on cpu" in out and "parameters" in out


def test_dry_run_lists_every_missing_file(tmp_path, capsys):
    overrides = [
        "data.name=cifar10",
        f"data.root={tmp_path / 'nowhere'}",
        "model.name=timm",
        "model.arch=resnet18",
        f"model.pretrained={tmp_path / 'weights.pth'}",
        f"output.root={tmp_path / 'results'}",
    ]
    assert main(["run", *overrides, "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n  missing: ") == 2
    assert "weights.pth" in err and "cifar10" in err
    assert not (tmp_path / "results").exists()


def test_dry_run_still_refuses_bad_config(tmp_path, capsys):
    assert main(["run", *fast_overrides(tmp_path), "train.lr=-1", "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert "train.lr" in err and "missing:" not in err


PAPER_CONFIGS = sorted((REPO / "configs" / "papers").glob("*.yaml"))


def test_there_are_paper_configs():
    assert len(PAPER_CONFIGS) >= 4


@pytest.mark.parametrize("config", PAPER_CONFIGS, ids=lambda p: p.name)
def test_paper_config_passes_dry_run(config: Path, tmp_path, capsys):
    """Valid as written; without the data or weights offline, only missing files are reported."""
    code = main(["run", str(config), f"output.root={tmp_path}", "--dry-run"])
    err = capsys.readouterr().err
    assert code == 0 or (code == 2 and "missing:" in err), err
    assert not any(tmp_path.iterdir())
