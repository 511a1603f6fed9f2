"""The Python API: the README's notebook example runs as plain Python, and `clbench.run`,
`load`, `load_records`, `report` and `sweep` give what the command line gives."""

from __future__ import annotations

import io
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

import clbench
from clbench.api.run import flatten_overrides, resolve_run_config
from clbench.cli import main
from clbench.errors import ConfigError
from tests.helpers import fast_overrides
from tests.sweep.helpers import write_suite

README = Path(__file__).resolve().parents[2] / "README.md"
RECORD_COLUMNS = ["step", "phase", "current_task", "task", "kind", "n", "correct", "acc", "loss"]


def fast(tmp_path: Path, **extra: object) -> dict[str, object]:
    """`fast_overrides` as keyword overrides (dotted keys, YAML values parsed)."""
    import yaml

    pairs = (o.partition("=") for o in fast_overrides(tmp_path, **extra))
    return {key: yaml.safe_load(value) for key, _, value in pairs}


def notebook_example() -> str:
    text = README.read_text()
    marker = text.index("<!-- notebook example")
    block = re.search(r"```python\n(.*?)```", text[marker:], re.S)
    assert block is not None, "the README's notebook example block is gone"
    return block.group(1)


def test_readme_notebook_example_runs_as_plain_python(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {}
    exec(compile(notebook_example(), "README.md", "exec"), namespace)
    er = namespace["er"]
    assert list(er.records.columns) == RECORD_COLUMNS
    assert (er.records["acc"] == er.records["correct"] / er.records["n"]).all()
    assert len(namespace["runs"]) == 2  # two runs, two rows
    assert set(namespace["runs"]["strategy.name"]) == {"er", "naive"}
    # the notebook's table is the command line's CSV
    out = tmp_path / "table.csv"
    args = ["report", "results/nb", "--metrics", "final_acc", "min_acc", "--out", str(out)]
    assert main(args) == 0
    table = namespace["table"]
    assert table.to_csv() == out.read_text()
    expected = pd.read_csv(out)
    got = pd.read_csv(io.StringIO(table.to_frame().to_csv(index=False)))
    pd.testing.assert_frame_equal(got, expected)
    import matplotlib.figure

    assert isinstance(namespace["fig"], matplotlib.figure.Figure)


def test_run_is_the_command_lines_run(tmp_path, capsys):
    run = clbench.run(**fast(tmp_path))
    assert run.status == "finished" and not run.skipped
    assert main(["run", "--quiet", *fast_overrides(tmp_path)]) == 0  # same folder: finished
    assert "already finished" in capsys.readouterr().out
    assert sorted(p.name for p in tmp_path.iterdir()) == [run.path.name]
    again = clbench.run(**fast(tmp_path))
    assert again.skipped and again.path == run.path
    assert again.summary["run_id"] == run.summary["run_id"]
    assert run.config["strategy"]["name"] == "er"
    assert len(run.train_loss) == run.summary["budget"]["updates"]


def test_overrides_by_section_by_dotted_key_or_a_yaml_file(tmp_path):
    path = tmp_path / "cfg.yaml"
    path.write_text("strategy: {name: naive}\ntrain: {epochs: 1}\n")
    a = resolve_run_config(path, {"train": {"lr": 0.5}, "seed": 3})
    b = resolve_run_config({"strategy": {"name": "naive"}}, {"train.lr": 0.5})
    assert (a.strategy["name"], a.train.epochs, a.train.lr, a.seed) == ("naive", 1, 0.5, 3)
    assert (b.strategy["name"], b.train.lr) == ("naive", 0.5)
    assert flatten_overrides({"plugins": {"fpf": {}}, "train": {"epochs": 2}}) == {
        "plugins.fpf": {},
        "train.epochs": 2,
    }


def test_bad_input_raises_before_any_folder(tmp_path):
    with pytest.raises(ConfigError, match=r"train\.epochs"):
        clbench.run(**fast(tmp_path), train={"epochs": 0})
    with pytest.raises(ConfigError, match="not a known setting"):
        clbench.run(**fast(tmp_path), trian={"epochs": 1})
    assert not any(tmp_path.iterdir())


def test_load_and_load_records(tmp_path):
    er = clbench.run(**fast(tmp_path))
    naive = clbench.run(**fast(tmp_path, **{"strategy.name": "naive"}))
    runs = clbench.load(tmp_path)
    assert sorted(runs["run"]) == sorted([er.path.name, naive.path.name])
    assert {"strategy.name", "seed", "final_acc", "updates"} <= set(runs.columns)
    long = clbench.load_records([str(tmp_path / "er-*"), naive.path])  # globs and paths
    assert long.columns[0] == "run" and "strategy.name" in long.columns  # what tells runs apart
    assert set(long.groupby("strategy.name")["run"].nunique()) == {1}
    assert len(long) == len(er.records) + len(naive.records)
    with pytest.raises(ConfigError, match="nothing-here"):
        clbench.load(str(tmp_path / "nothing-here*"))


def test_sweep_returns_its_results(tmp_path):
    suite = write_suite(tmp_path, grid={"strategy.name": ["er", "naive"]})
    results = clbench.sweep(suite, jobs=1)
    assert results.ok and len(results.paths) == 2
    assert len(results.load()) == 2
    table = results.report(metrics=["final_acc"]).to_frame()
    assert sorted(table["label"]) == ["er", "naive"]
    planned = clbench.sweep(suite, dry_run=True, seeds=[0, 1])
    assert len(planned.paths) == 4  # planned, not run


def test_import_is_cheap_and_has_no_side_effects():
    code = (
        "import sys, clbench; "
        "heavy = [m for m in ('torch', 'pandas', 'matplotlib', 'numpy') if m in sys.modules]; "
        "print(heavy, clbench.__version__, callable(clbench.run))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    heavy, version, _ = out.stdout.rsplit(" ", 2)
    assert heavy == "[]", heavy
    assert re.fullmatch(r"\d+\.\d+\.\d+.*", version)
    assert (Path(clbench.__file__).parent / "py.typed").exists()
