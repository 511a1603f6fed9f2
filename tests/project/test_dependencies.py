"""Packages the code needs without importing them itself: a library calls them by name.

deptry (run by .ci/run) checks every ``import`` against pyproject.toml; it cannot see a package
that another library loads at run time, so these are checked here by loading them as that library
does.
"""

from __future__ import annotations

import importlib

import pytest


@pytest.mark.parametrize(
    ("module", "needed_by"),
    [
        ("pyarrow", "pandas' Parquet reader and writer (records.parquet)"),
        ("quadprog", "Avalanche's GEM (qpsolvers.solve_qp(..., solver='quadprog'))"),
        ("tensorboard", "torch.utils.tensorboard (clbench export --to tensorboard)"),
    ],
)
def test_runtime_dependency_is_installed(module: str, needed_by: str) -> None:
    try:
        importlib.import_module(module)
    except ImportError as error:  # pragma: no cover - the failure message is the point
        pytest.fail(f"{module} is needed by {needed_by} but cannot be imported: {error}")


def test_qpsolvers_finds_the_solver_gem_asks_for() -> None:
    qpsolvers = importlib.import_module("qpsolvers")  # avalanche-lib's own dependency
    assert "quadprog" in qpsolvers.available_solvers
