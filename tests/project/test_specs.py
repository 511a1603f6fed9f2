"""Built-in components are declared by torch-free specs (`clbench.registry`), and the commands that
only read specs (validation, hashing, listing, a finished run, `info`) never import torch."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

from clbench.registry import DATASETS, MODELS, PLUGINS, SCENARIOS, STRATEGIES

REPO = Path(__file__).resolve().parents[2]
REGISTRIES = (DATASETS, MODELS, PLUGINS, SCENARIOS, STRATEGIES)
# the folders of built-in implementations, by the registry variable their decorators name
BUILTIN_FOLDERS = {
    "STRATEGIES": REPO / "strategies",
    "PLUGINS": REPO / "strategies",
    "MODELS": REPO / "clbench" / "models",
    "DATASETS": REPO / "clbench" / "data" / "sources",
}


def registered_in_source() -> list[tuple[str, str, Path]]:
    """(registry variable, name, file) of every ``@X.register("name")`` in built-in code."""
    found = []
    for variable, folder in BUILTIN_FOLDERS.items():
        for path in sorted(folder.rglob("*.py")):
            if "specs" in path.parts:
                continue
            for node in ast.walk(ast.parse(path.read_text())):
                if (
                    isinstance(node, ast.Call)
                    and isinstance(node.func, ast.Attribute)
                    and node.func.attr == "register"
                    and isinstance(node.func.value, ast.Name)
                    and node.func.value.id == variable
                    and node.args
                    and isinstance(node.args[0], ast.Constant)
                ):
                    found.append((variable, node.args[0].value, path))
    return found


def test_every_builtin_implementation_has_a_spec():
    registries = {"STRATEGIES": STRATEGIES, "PLUGINS": PLUGINS, "MODELS": MODELS}
    registries["DATASETS"] = DATASETS
    missing = [
        f"{variable} {name!r} ({path.relative_to(REPO)})"
        for variable, name, path in registered_in_source()
        if name not in registries[variable]
    ]
    assert not missing, (
        "registered without a spec, so invisible to configs and `clbench list`: declare each in "
        f"its package's specs/ folder (e.g. strategies/specs/er.py): {missing}"
    )


@pytest.mark.parametrize("registry", REGISTRIES, ids=lambda r: r.kind)
def test_every_spec_names_an_implementation_that_subclasses_it(registry):
    for name, spec in registry.specs():
        implementation = registry.get(name)
        assert issubclass(implementation, spec), (name, implementation, spec)
        assert implementation.Config is spec.Config, name  # parameters stated once, in the spec
        assert implementation.registered_name == name


def test_a_builtin_name_cannot_be_taken_by_another_class():
    class Impostor:
        pass

    with pytest.raises(ValueError, match=r"registered twice|already declared"):
        STRATEGIES.register("er")(Impostor)


LIGHT = """
import json, sys
from clbench.cli.app import main
try:
    code = main(sys.argv[1:])
except SystemExit as exc:
    code = exc.code
heavy = [m for m in ("torch", "pandas", "matplotlib", "rich") if m in sys.modules]
print(json.dumps({"code": code, "heavy": heavy}))
"""


def light_command(*args: str, cwd: Path) -> dict:
    """Run ``clbench ARGS`` in a fresh process: its exit code and the heavy modules it loaded."""
    out = subprocess.run(
        [sys.executable, "-c", LIGHT, *args], capture_output=True, text=True, cwd=cwd
    )
    assert out.stdout.strip(), out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_commands_that_do_not_train_do_not_import_torch(tmp_path):
    for args in (
        ("list",),
        ("list", "strategies", "derpp"),
        ("list", "data", "cifar10"),
        ("run", "--print-config", "strategy.name=hyperinterval", "model.name=timm"),
        ("run", "--dry-run"),  # the embedded default's plan, from the specs
        ("run", "--dry-run", "data.name=synthetic", "strategy.name=derpp"),
    ):
        assert light_command(*args, cwd=tmp_path) == {"code": 0, "heavy": []}, args
    for args in (
        ("run", "strategy.name=er", "strategy.buffer_size=-1"),
        ("run", "strategy.name=nope"),
        ("run", "data.name=synthetic", "data.dim=-3"),
        ("run", "model.name=slim_resnet18", "model.width=x"),
        ("run", "plugins.view_batch.views=0"),
        ("run", "data.name=mnist", "data.root=nowhere"),  # missing data files
        ("run", "strategy.name=slca"),  # needs pretrained weights
        ("run", "model.name=timm", "model.pretrained=no/such/weights.pth"),
        ("run", "train.scheduler=multistep"),  # no milestones
        ("run", "--dry-run", "data.name=cifar10", "data.root=nowhere"),
    ):
        result = light_command(*args, cwd=tmp_path)
        assert result["code"] == 2 and "torch" not in result["heavy"], (args, result)


def test_a_finished_run_and_info_answer_without_torch(tmp_path):
    small = ("train.epochs=1", "eval.every=50", "--out", str(tmp_path / "results"))
    subprocess.run([sys.executable, "-m", "clbench", "run", *small], check=True, cwd=tmp_path)
    again = light_command("run", *small, cwd=tmp_path)
    assert again == {"code": 0, "heavy": []}  # off a terminal the summary is plain text
    (folder,) = (tmp_path / "results").iterdir()
    info = light_command("info", str(folder), cwd=tmp_path)
    assert info["code"] == 0 and "torch" not in info["heavy"]


def test_a_sweep_of_runs_the_specs_describe_is_checked_without_torch(tmp_path):
    from tests.sweep.helpers import write_suite

    entries = [{"name": "er", "overrides": []}, {"name": "der", "overrides": ["strategy.name=der"]}]
    suite = write_suite(tmp_path, entries=entries, seeds=[0, 1])
    assert light_command("sweep", "--dry-run", str(suite), cwd=tmp_path) == {
        "code": 0,
        "heavy": [],
    }
