"""The sweep suites shipped under configs/: each loads, expands into valid run configs and passes
`clbench sweep --dry-run`'s checks whether or not Fashion-MNIST is installed (suites that need it
are `optional`); every other YAML there is a valid run config; one method-comparison suite runs
end to end on digits, with its report and the per-task details script."""

from __future__ import annotations

import runpy
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from clbench.cli import main
from clbench.config import RunConfig, build_config, load_yaml
from clbench.registry import DATASETS
from clbench.sweeps.preflight import validate_pretrain_steps
from clbench.sweeps.suite import Suite, expand, load_suite
from tests.helpers import REPO

CONFIGS = REPO / "configs"
# Keys only a suite has: a run config with any of them is refused (extra keys are forbidden).
SUITE_KEYS = frozenset({"name", "entries", "axes", "grid", "protocol", "pretrain"})


def _is_suite(path: Path) -> bool:
    raw = load_yaml(path)
    return isinstance(raw, dict) and bool(SUITE_KEYS & set(raw))


YAML_FILES = sorted(CONFIGS.rglob("*.yaml"))
# The reproductions page's definition (claims and prose for tools/reproductions.py) sits beside the
# study suites it names; tests/reporting/test_reproductions_page.py checks it.
STUDIES_PAGE = CONFIGS / "papers" / "studies" / "reproductions.yaml"
SUITES = [p for p in YAML_FILES if _is_suite(p)]
RUN_CONFIGS = [p for p in YAML_FILES if p not in SUITES and p != STUDIES_PAGE]


def _id(path: Path) -> str:
    return str(path.relative_to(CONFIGS))


def test_suite_keys_tell_suites_from_run_configs():
    assert STUDIES_PAGE in YAML_FILES
    assert SUITE_KEYS.issubset(Suite.model_fields)
    assert not SUITE_KEYS & set(RunConfig.model_fields)
    # the method comparisons that replaced the benchmark scripts are among the suites
    names = {_id(p) for p in SUITES}
    for suite in (
        "view_batch/split_fmnist.yaml",
        "fpf/split_fmnist.yaml",
        "slca/comparison_digits.yaml",
        "hyperinterval/split_fmnist_seeds.yaml",
        "hyperinterval/switches_split_fmnist.yaml",
        "power_law/environments_budget.yaml",
        "stability_gap/er_vs_naive.yaml",
        "avalanche/baselines_split_fmnist.yaml",
        "leaderboard/offline.yaml",
    ):
        assert suite in names


@pytest.mark.parametrize("path", RUN_CONFIGS, ids=_id)
def test_run_config_builds(path):
    build_config(path)


@pytest.mark.parametrize("path", SUITES, ids=_id)
def test_suite_loads_and_expands(path):
    loaded = load_suite(path)
    runs = expand(loaded).runs
    assert runs, "a suite with no runs"
    assert len({(r.phase, r.entry, r.run_id) for r in runs}) == len(runs)
    validate_pretrain_steps(loaded)
    header = path.read_text().splitlines()[0]
    assert header.startswith("#"), "a suite file starts with a comment saying what it compares"


@pytest.fixture
def no_fashion_mnist(monkeypatch):
    """Fashion-MNIST's files are missing wherever looked for (a machine without the package)."""
    monkeypatch.setattr(DATASETS.get("fashion_mnist"), "_find", lambda self: None)


def _uses_fashion_mnist(path: Path) -> bool:
    return any(r.config.data["name"] == "fashion_mnist" for r in expand(load_suite(path)).runs)


@pytest.mark.parametrize("path", SUITES, ids=_id)
def test_suite_dry_run_passes_without_fashion_mnist(path, no_fashion_mnist, capsys):
    """The checks `clbench sweep` makes before any run: runs needing Fashion-MNIST are skipped
    with a message (the suite or its entries are optional), every other run can start."""
    assert main(["sweep", "--dry-run", str(path)]) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert "dry run:" in out
    if _uses_fashion_mnist(path):
        assert "optional, and its data is missing" in out


@pytest.mark.slow
@pytest.mark.parametrize("path", SUITES, ids=_id)
def test_suite_dry_run_passes_with_local_data(path, capsys):
    """As above with this machine's data (Fashion-MNIST loaded and checked where installed)."""
    assert main(["sweep", "--dry-run", str(path)]) == 0, capsys.readouterr().err


def _tiny_copy(path: Path, tmp_path: Path, overrides: list[str], seeds: str) -> Path:
    """The suite with its base made absolute, tiny-budget overrides on digits, one seed and its
    output under tmp_path."""
    raw: dict[str, Any] = yaml.safe_load(path.read_text())
    if isinstance(raw.get("base"), str):
        raw["base"] = str((path.parent / raw["base"]).resolve())
    raw["overrides"] = [*raw.get("overrides", []), *overrides]
    raw["seeds"] = seeds
    raw["output"] = {"root": str(tmp_path / "out")}
    copy = tmp_path / path.name
    copy.write_text(yaml.safe_dump(raw, sort_keys=False))
    return copy


def test_view_batch_suite_runs_end_to_end_with_its_report(tmp_path, capsys, monkeypatch):
    suite = _tiny_copy(
        CONFIGS / "view_batch" / "split_fmnist.yaml",
        tmp_path,
        [
            "data.name=digits",
            "model.hidden_sizes=[32]",
            "train.epochs=1",
            "eval.every=10",
            "eval.subset_size=50",
        ],
        seeds="0-1",
    )
    report = tmp_path / "view_batch.md"
    assert main(["sweep", str(suite), "--jobs", "1", "--report", str(report)]) == 0
    out = capsys.readouterr().out
    assert "16 finished" in out and f"report: {report}" in out
    text = report.read_text()
    # one table per setting, one row per method (tags.method), intervals over the 2 seeds
    assert "scenario.name: class_incremental" in text and "scenario.name: task_incremental" in text
    for method in ("er", "VBM-er", "naive", "VBM-naive"):
        assert f"tags.method={method} | 2 |" in text
    assert "strategy_report.view_batch.ssl_terms" in text and "95% confidence interval" in text

    # the per-task details script reads the same folders
    monkeypatch.setattr(sys, "argv", ["run_details.py", str(tmp_path / "out"), "--gaps"])
    runpy.run_path(str(REPO / "benchmarks" / "run_details.py"), run_name="__main__")
    details = capsys.readouterr().out
    assert "boundary-only" in details and "VBM-er class_incremental" in details
    assert "recovered after (updates)" in details
