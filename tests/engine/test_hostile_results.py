"""Damaged result files (truncated, non-UTF-8, wrong types): `report`, `info`, `plot` and
`run --resume` name the file and exit 2, or give a correct result; never a traceback."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from clbench.cli import main
from tests.helpers import fast_overrides

DAMAGE = {
    "summary.json": [
        b'{"metrics": {"final_acc": "abc"}}',
        b'{"metrics": {}, "budget": "x"}',
        b'{"metrics": {}, "run_id": 3}',
        b'{"metrics": {"final_acc": 1' + b"0" * 5000 + b"}}",
        b"\xff\xfe",
        b'{"metrics": ',
    ],
    "status.json": [b'{"status": "finished", "time": "x"}', b"[" * 100_000, b"\xff", b"1e999"],
    "config.yaml": [b"\xff", b"seed: x\ntrain: 3", b"strategy: 3", b"a: &a [1]\nb: *a\n", b"[1"],
}
CASES = [(name, i) for name, variants in DAMAGE.items() for i in range(len(variants))]


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("base")
    assert main(["run", "--quiet", *fast_overrides(root)]) == 0
    (run,) = root.iterdir()
    return run


@pytest.mark.parametrize("name,index", CASES)
def test_damaged_result_file_is_named_or_ignored(finished_run, tmp_path, capsys, name, index):
    run = tmp_path / "results" / finished_run.name
    shutil.copytree(finished_run, run)
    (run / "digests.json").unlink(missing_ok=True)  # test the readers, not the digest check
    (run / name).write_bytes(DAMAGE[name][index])
    commands = [
        ["report", str(run.parent)],
        ["info", str(run)],
        ["plot", str(run), "--out", str(tmp_path / "plots")],
        ["run", "--resume", str(run), "--quiet"],
    ]
    for argv in commands:
        code = main(argv)
        err = capsys.readouterr().err
        assert code in (0, 2), (argv, err)
        if code == 2:
            assert err.startswith("clbench: error:") and len(err) < 2000, err
            assert name in err or "no finished run" in err, err
