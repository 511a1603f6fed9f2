"""Config files, overrides and resolution."""

from __future__ import annotations

import pytest

from clbench.config import apply_overrides, build_config, config_hash
from clbench.errors import ConfigError

BASE = {
    "strategy": {"name": "er", "buffer_size": 2000, "buffer": "class_balanced"},
    "data": {"name": "mnist", "root": "/data"},
}


def test_switching_component_drops_old_parameters():
    out = apply_overrides(BASE, ["strategy.name=naive"])
    assert out["strategy"] == {"name": "naive"}


def test_same_name_override_keeps_parameters():
    out = apply_overrides(BASE, ["strategy.name=er"])
    assert out["strategy"] == BASE["strategy"]


def test_data_switch_keeps_root_and_download():
    out = apply_overrides(BASE, ["data.name=fashion_mnist"])
    assert out["data"] == {"name": "fashion_mnist", "root": "/data"}


def test_parameters_given_with_the_switch_are_kept():
    out = apply_overrides(BASE, ["strategy.name=naive", "strategy.buffer_size=5"])
    assert out["strategy"] == {"name": "naive", "buffer_size": 5}


def test_values_are_typed_and_nested():
    out = apply_overrides({}, ["train.lr=0.1", "model.hidden_sizes=[8, 8]", "eval.every=5"])
    assert out == {"train": {"lr": 0.1}, "model": {"hidden_sizes": [8, 8]}, "eval": {"every": 5}}


@pytest.mark.parametrize("bad", ["novalue", "=3", "train.lr.x=1"])
def test_malformed_overrides(bad):
    with pytest.raises(ConfigError):
        apply_overrides({"train": {"lr": 0.1}}, [bad])


def test_resolved_config_fills_defaults_and_hash_ignores_output():
    a = build_config(None, ["output.root=/tmp/a"])
    b = build_config(None, ["output.root=/tmp/b"])
    assert a.strategy["buffer"] == "reservoir" and a.eval.subset_size == 1000
    assert config_hash(a) == config_hash(b)
    assert config_hash(a) != config_hash(build_config(None, ["seed=1"]))


def test_unknown_top_level_setting():
    with pytest.raises(ConfigError, match="trian"):
        build_config(None, ["trian.lr=1"])


def test_resolved_config_revalidates_derived_values(tmp_path):
    """A source whose validator derives a field (synthetic dim from image_size) still runs."""
    from clbench.engine.runner import prepare

    config = build_config(None, ["data.name=synthetic", "data.image_size=8", "data.num_classes=10"])
    assert config.data["dim"] == 64
    assert prepare(config).dataset.input_shape == (1, 8, 8)
    with pytest.raises(ConfigError, match="dim must be image_size"):
        build_config(None, ["data.name=synthetic", "data.image_size=8", "data.dim=32"])
