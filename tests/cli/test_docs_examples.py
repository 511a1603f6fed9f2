"""The complete examples of docs/writing-a-strategy.md and docs/writing-a-plugin.md run as written:
the page's code saved under the name the page gives, then the page's command, from that folder."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from tests.helpers import REPO

DOCS = REPO / "docs"


def example(page: str) -> tuple[str, str, str]:
    """(file name, code, command) of a page's complete example."""
    text = (DOCS / page).read_text()
    name = re.search(r"Save this as `([^`]+)`", text).group(1)
    code = re.search(r"```python\n(.*?)```", text, re.S).group(1)
    command = re.search(r"```\n(CLBENCH_IMPORT=\S+ clbench run[^\n]*)\n```", text).group(1)
    return name, code, command


@pytest.mark.parametrize(
    ("page", "registered"),
    [("writing-a-strategy.md", "my_lwf"), ("writing-a-plugin.md", "confidence_penalty")],
)
def test_the_page_example_runs_as_written(tmp_path, page, registered):
    name, code, command = example(page)
    # the same code is kept as a file, so ruff checks it with the rest of the repository
    assert code == (DOCS / "examples" / name).read_text()
    (tmp_path / name).write_text(code)
    variables, argv = [], shlex.split(command)
    while "=" in argv[0]:
        variables.append(argv.pop(0).split("=", 1))
    env = {**os.environ, **dict(variables), "OMP_NUM_THREADS": "1"}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    done = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    (run,) = (tmp_path / "results").iterdir()
    assert registered in run.name
    records = pd.read_parquet(run / "records.parquet")
    assert len(records) > 0 and records.step.max() > 0
