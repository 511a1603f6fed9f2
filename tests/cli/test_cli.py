"""The command line: the default run, `list`, and bad input rejected with exit code 2."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from clbench.cli import main
from tests.helpers import fast_overrides


@pytest.mark.parametrize(
    "override,field",
    [
        ("strategy.name=nope", "strategy.name"),
        ("strategy.buffer_size=-5", "strategy.buffer_size"),
        ("eval.every=0", "eval.every"),
        ("scenario.n_experiences=0", "scenario.n_experiences"),
        ("scenario.n_experiences=3", "scenario.n_experiences"),  # 8 classes do not split in 3
        ("data.name=cifar10", "cifar"),  # files missing, no download: names the path
        ("train.lr=-1", "train.lr"),
        ("model.hidden_sizes=[0]", "model.hidden_sizes"),
        ("strategy.bogus=1", "strategy.bogus"),
        ("device=tpu", "device"),
    ],
)
def test_bad_input_exits_2_with_message_and_writes_nothing(tmp_path, capsys, override, field):
    overrides = [
        o
        for o in fast_overrides(tmp_path / "out")
        if not o.startswith(override.split("=")[0] + "=")
    ]
    if override.startswith("data.name="):
        overrides = [o for o in overrides if not o.startswith("data.")] + [
            "data.root=" + str(tmp_path / "nodata")
        ]
    code = main(["run", "--quiet", *overrides, override])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("clbench: error:") and field in err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_unknown_config_file(tmp_path, capsys):
    assert main(["run", str(tmp_path / "missing.yaml")]) == 2
    assert "missing.yaml" in capsys.readouterr().err


def test_run_prints_metrics_and_writes_run_folder(tmp_path, capsys):
    assert main(["run", "--quiet", *fast_overrides(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "min_acc" in out and "wc_acc" in out and "final_acc" in out
    (run,) = tmp_path.iterdir()
    summary = json.loads((run / "summary.json").read_text())
    assert summary["metrics"]["min_acc"] is not None
    assert json.loads((run / "status.json").read_text())["status"] == "finished"


def test_print_config_resolves_defaults():
    out = subprocess.run(
        [sys.executable, "-m", "clbench", "run", "--print-config", "strategy.name=naive"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "name: naive" in out and "buffer_size" not in out and "subset_size: 1000" in out


def test_list_shows_components_with_parameters(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for name in (
        "digits",
        "synthetic",
        "class_incremental",
        "domain_incremental",
        "er",
        "naive",
        "joint",
        "mlp",
    ):
        assert f"  {name}:" in out
    assert "buffer_size" in out


def test_help_does_not_import_heavy_packages():
    code = (
        "import sys, clbench.cli; heavy = ('torch', 'avalanche', 'timm', 'ray', 'matplotlib'); "
        "print(sorted(m for m in heavy if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"
