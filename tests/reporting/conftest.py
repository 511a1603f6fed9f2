"""Fixtures of the reporting tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from clbench.config import build_config
from clbench.engine.job import run_job
from tests.helpers import fast_overrides


@pytest.fixture(scope="module")
def real_runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Four finished real runs: er and naive, seeds 0 and 1."""
    root = tmp_path_factory.mktemp("results")
    for strategy in ("er", "naive"):
        for seed in (0, 1):
            config = build_config(
                None, fast_overrides(root, seed=seed, **{"strategy.name": strategy})
            )
            run_job(config, progress=False)
    return root
