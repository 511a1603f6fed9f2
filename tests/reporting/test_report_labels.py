"""Labels of report rows and figure legends name only settings that can change results: never a
key of a section the run hash leaves out (checkpointing, output)."""

from __future__ import annotations

from clbench.config import HASH_EXCLUDED, build_config, config_hash
from clbench.plotting.settings import setting_labels as plot_labels
from clbench.results.labels import distinguishes_results, setting_labels
from tests.reporting.helpers import write_run


def test_keys_the_run_hash_ignores_do_not_distinguish_results():
    base = build_config(overrides=["checkpoint.every=500"])
    # the hash and the labels read one list: changing those sections keeps the hash
    for override in ("checkpoint.every=100", "checkpoint.keep=true", "output.root=/elsewhere"):
        section = override.split(".", 1)[0]
        assert section in HASH_EXCLUDED
        assert config_hash(build_config(overrides=[override])) == config_hash(base), override
        assert not distinguishes_results(override.split("=", 1)[0])
    assert config_hash(build_config(overrides=["train.lr=0.5"])) != config_hash(base)
    assert distinguishes_results("train.lr") and distinguishes_results("eval.every")


def test_setting_labels_drop_checkpoint_keys_unless_chosen():
    settings = [
        {"strategy.name": "er", "checkpoint.every": 500, "train.lr": 0.1},
        {"strategy.name": "er", "checkpoint.every": 100, "train.lr": 0.01},
    ]
    keys = ["strategy.name", "checkpoint.every", "train.lr"]
    assert setting_labels(settings, keys) == ["er (train.lr=0.1)", "er (train.lr=0.01)"]
    chosen = setting_labels(settings, ["strategy.name", "checkpoint.every"], show_all=True)
    assert chosen == ["er (checkpoint.every=500)", "er (checkpoint.every=100)"]


def test_plot_legends_use_the_same_rule():
    er = {"strategy": {"name": "er"}, "checkpoint": {"every": 500}}
    naive = {"strategy": {"name": "naive"}, "checkpoint": {"every": 100}}
    assert plot_labels([er, naive]) == ["er", "naive"]
    slow = {"strategy": {"name": "er"}, "checkpoint": {"every": 100}, "train": {"lr": 0.01}}
    fast = {"strategy": {"name": "er"}, "checkpoint": {"every": 500}, "train": {"lr": 0.1}}
    assert plot_labels([slow, fast]) == ["train.lr=0.01", "train.lr=0.1"]


def test_plots_group_runs_that_differ_only_in_checkpoint_settings(tmp_path):
    from clbench.plotting.settings import group_settings
    from clbench.results.reader import RunFolder

    paths = [
        write_run(tmp_path, "a", seed=0, config={"checkpoint": {"every": 500}}),
        write_run(tmp_path, "b", seed=1, config={"checkpoint": {"every": 100}}),
        write_run(tmp_path, "c", seed=0, strategy="naive"),
    ]
    settings = group_settings([RunFolder(p) for p in paths])
    assert [(s.label, s.seeds) for s in settings] == [("er", 2), ("naive", 1)]
