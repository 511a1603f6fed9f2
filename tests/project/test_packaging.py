"""Packaging: every package folder is installed, the built-in methods and scenarios inside
clbench's namespace (as top-level `strategies` / `scenarios` they would collide with unrelated
distributions of those names)."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

from tests.helpers import REPO

tomllib = pytest.importorskip("tomllib")  # Python 3.11+
SETUPTOOLS = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]


def package_name(folder: Path) -> str:
    """The installed name of a repository folder, through the package-dir mapping."""
    relative = folder.relative_to(REPO).as_posix()
    for name, path in sorted(SETUPTOOLS["package-dir"].items(), key=lambda kv: -len(kv[1])):
        if relative == path or relative.startswith(path + "/"):
            return name + relative[len(path) :].replace("/", ".")
    return relative.replace("/", ".")


def test_every_package_folder_is_listed_and_importable():
    folders = [p.parent for top in ("clbench", "strategies", "scenarios")
               for p in (REPO / top).rglob("__init__.py")]  # fmt: skip
    expected = sorted(package_name(f) for f in folders)
    assert sorted(SETUPTOOLS["packages"]) == expected
    for name in expected:
        module = importlib.import_module(name)
        assert Path(module.__file__).resolve().parent in [f.resolve() for f in folders]


def test_no_generic_top_level_packages():
    assert all(name.split(".")[0] == "clbench" for name in SETUPTOOLS["packages"])
    assert importlib.util.find_spec("clbench.strategies.er") is not None
    assert importlib.util.find_spec("clbench.scenarios.class_incremental") is not None


def test_package_data_ships_the_default_config_and_type_marker():
    assert set(SETUPTOOLS["package-data"]["clbench"]) >= {"default.yaml", "py.typed"}
    assert (REPO / "clbench" / "py.typed").is_file()
