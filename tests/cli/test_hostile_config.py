"""Hostile or mistyped configs, suites and overrides (issue 16 items 6-7): each is refused with
exit code 2 and one bounded line naming the file or field, before any folder exists; never a
traceback, a hang or runaway memory."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import time

import pytest

from clbench.cli import main
from clbench.config import MAX_YAML_NODES, build_config, load_yaml
from clbench.errors import MAX_MESSAGE_CHARS, ConfigError
from tests.helpers import REPO, fast_overrides

CFG = "configs/stability_gap/split_digits_er.yaml"
LINE = MAX_MESSAGE_CHARS * 2 + 600  # field + value + allowed, each bounded


def refused(capsys: pytest.CaptureFixture[str], argv: list[str], *expected: str) -> str:
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith("clbench: error:") and len(err.strip().splitlines()) == 1, err
    assert len(err) < LINE
    for text in expected:
        assert text in err
    return err


@pytest.mark.parametrize(
    "override,field",
    [
        ("train.lr=.inf", "train.lr"),
        ("train.lr=inf", "train.lr"),
        ("train.lr=-.inf", "train.lr"),
        ("train.lr=.nan", "train.lr"),
        ("train.weight_decay=.inf", "train.weight_decay"),
        ("strategy.new_weight=.nan", "strategy.new_weight"),
        ("seed=true", "seed"),
        ("train.epochs=false", "train.epochs"),
        ("model.hidden_sizes=[8, true]", "model.hidden_sizes"),
        ("train.epochs=1.0e+23", "train.epochs"),
        ("train.epochs=100000", "train.epochs"),
        ("strategy.buffer_size=1.0e+15", "strategy.buffer_size"),
        ("seed=99999999999", "seed"),
        ("eval.subset_size=0", "eval.subset_size"),
        ("train.epochs=[", "train.epochs"),
        ("train.lr={a", "train.lr"),
        ("train.lr=!!python/object/apply:os.system", "train.lr"),
    ],
)
def test_hostile_override_exits_2_naming_the_field(tmp_path, capsys, override, field):
    err = refused(capsys, ["run", CFG, f"output.root={tmp_path / 'r'}", override], field)
    assert "Traceback" not in err
    assert not (tmp_path / "r").exists()


def test_subset_size_error_names_the_field_not_the_section(capsys):
    err = refused(capsys, ["run", "--print-config", "eval.subset_size=0"], "eval.subset_size:")
    assert "every" not in err  # not the whole section


def test_huge_value_gives_a_bounded_message(tmp_path, capsys):
    order = list(range(90_000))  # under MAX_YAML_NODES: reaches validation
    path = tmp_path / "big.yaml"
    path.write_text(f"scenario:\n  name: class_incremental\n  class_order: {order}\n")
    root = tmp_path / "r"
    err = refused(capsys, ["run", str(path), f"output.root={root}", "threads=1"], "class_order")
    assert len(err) < 2000 and not root.exists()


def test_alias_bomb_is_refused_quickly(tmp_path, capsys):
    lines = ["a0: &a0 [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 12)]
    path = tmp_path / "bomb.yaml"
    path.write_text("\n".join(lines) + "\n")
    start = time.perf_counter()
    refused(capsys, ["run", str(path), "--print-config"], "bomb.yaml", str(MAX_YAML_NODES))
    assert time.perf_counter() - start < 10


def test_self_referencing_alias_and_deep_nesting_are_refused(tmp_path, capsys):
    (tmp_path / "loop.yaml").write_text("a: &x [*x]\n")
    refused(capsys, ["run", str(tmp_path / "loop.yaml")], "loop.yaml", "refers to itself")
    (tmp_path / "deep.yaml").write_text("a: " + "[" * 20_000 + "]" * 20_000 + "\n")
    refused(capsys, ["run", str(tmp_path / "deep.yaml")], "deep.yaml")


def test_moderate_aliases_still_work(tmp_path):
    path = tmp_path / "ok.yaml"
    path.write_text("model: &m {name: mlp, hidden_sizes: [8]}\ntrain: {epochs: 1}\n")
    assert build_config(path).model["hidden_sizes"] == [8]


def test_non_utf8_config_names_file_and_byte(tmp_path, capsys):
    path = tmp_path / "latin.yaml"
    path.write_bytes(b"train:\n  lr: 0.1 # caf\xe9\n")
    refused(capsys, ["run", str(path)], "latin.yaml", "UTF-8", "byte 22")


@pytest.mark.parametrize(
    "text",
    ["train:\n  lr: 0.1\ntrain:\n  lr: 0.2\n", "train:\n  lr: 0.1\n  lr: 0.2\n"],
)
def test_duplicate_keys_are_refused(tmp_path, capsys, text):
    path = tmp_path / "dup.yaml"
    path.write_text(text)
    refused(capsys, ["run", str(path)], "dup.yaml", "twice")


def test_merge_keys_may_override(tmp_path):
    path = tmp_path / "merge.yaml"
    path.write_text("base: &b {epochs: 1, lr: 0.5}\ntrain:\n  <<: *b\n  lr: 0.1\n")
    raw = load_yaml(path)
    assert raw["train"] == {"epochs": 1, "lr": 0.1}


def test_oversized_file_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr("clbench.config.MAX_YAML_BYTES", 100)
    path = tmp_path / "large.yaml"
    path.write_text("seed: 0\n" + "#" * 200 + "\n")
    with pytest.raises(ConfigError, match="at most 100 bytes"):
        load_yaml(path)


def test_cross_field_refusal_happens_before_a_folder_exists(tmp_path, capsys):
    """view_batch needs batch_size % views == 0: refused at resolution, not in the run."""
    root = tmp_path / "r"
    argv = [*fast_overrides(root), "strategy.name=er", "plugins.view_batch={}"]
    refused(
        capsys,
        ["run", *argv, "train.batch_size=30"],
        "train.batch_size",
        "plugins.view_batch.views",
    )
    assert not root.exists()


def test_output_root_that_is_a_file_is_refused_before_loading(tmp_path, capsys, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("")

    def no_data(*_a: object, **_k: object) -> None:
        raise AssertionError("data loaded before the output root was checked")

    monkeypatch.setattr("clbench.engine.job.prepare", no_data)
    refused(capsys, ["run", *fast_overrides(blocker / "sub")], "output.root", "not a folder")


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write anywhere")
def test_unwritable_output_root_is_refused(tmp_path, capsys):
    locked = tmp_path / "ro"
    locked.mkdir()
    locked.chmod(stat.S_IRUSR | stat.S_IXUSR)
    try:
        refused(capsys, ["run", *fast_overrides(locked / "out")], "output.root", "not writable")
    finally:
        locked.chmod(stat.S_IRWXU)


def test_suite_duplicate_keys_non_utf8_and_bad_grid(tmp_path, capsys):
    (tmp_path / "dup.yaml").write_text("name: a\nname: b\n")
    refused(capsys, ["sweep", str(tmp_path / "dup.yaml")], "suite", "twice")
    (tmp_path / "bin.yaml").write_bytes(b"name: \xff\n")
    refused(capsys, ["sweep", str(tmp_path / "bin.yaml")], "suite", "UTF-8")
    (tmp_path / "ok.yaml").write_text("name: s\nthreads: true\n")
    refused(capsys, ["sweep", str(tmp_path / "ok.yaml")], "suite.threads")
    (tmp_path / "g.yaml").write_text("name: s\n")
    refused(capsys, ["sweep", str(tmp_path / "g.yaml"), "--grid", "train.lr=[,{"], "--grid")


def test_second_ctrl_c_exits_130_without_traceback(monkeypatch, capsys):
    def interrupted(_args: object) -> int:
        raise KeyboardInterrupt

    monkeypatch.setattr("clbench.cli.app._cmd_list", interrupted)
    assert main(["list"]) == 130
    assert capsys.readouterr().err.strip() == "clbench: interrupted (SIGINT)"


def test_cli_never_prints_a_traceback_for_hostile_overrides(tmp_path):
    """End to end in a subprocess (what a user sees)."""
    for override in ("train.lr=!!python/object/apply:os.system [echo]", "seed=true"):
        out = subprocess.run(
            [sys.executable, "-m", "clbench", "run", "--print-config", override],
            capture_output=True,
            text=True,
            cwd=REPO,
        )
        assert out.returncode == 2 and "Traceback" not in out.stderr, out.stderr


@pytest.mark.parametrize(
    "model", ["model.name=slim_resnet18", "model={name: timm, arch: resnet10t}"]
)
def test_image_model_on_vector_data_is_refused_before_a_folder_exists(tmp_path, capsys, model):
    overrides = [o for o in fast_overrides(tmp_path) if not o.startswith("model.")]
    assert main(["run", *overrides, model]) == 2
    assert "needs image inputs of shape (C, H, W)" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())  # no run folder, not even a failed one
