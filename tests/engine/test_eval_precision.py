"""``eval.precision``: evaluation forward passes in their own precision, training untouched, the
run hash kept at the default."""

from __future__ import annotations

import pytest
import torch

from clbench.config import build_config, config_hash
from clbench.errors import ConfigError
from tests.helpers import experiment, fast_overrides

ER = {"strategy.name": "er", "strategy.buffer_size": 20}


def _records(exp):
    return exp.log.frame().sort_values(["kind", "step", "task"]).reset_index(drop=True)


def test_bf16_evaluation_leaves_training_alone_and_changes_records_little(tmp_path):
    fp32 = experiment(tmp_path / "a", **ER)
    bf16 = experiment(tmp_path / "b", **ER, **{"eval.precision": "bf16"})
    assert torch.equal(torch.stack(fp32.train_losses), torch.stack(bf16.train_losses))
    for p, q in zip(fp32.model.parameters(), bf16.model.parameters(), strict=True):
        assert torch.equal(p, q)
    a, b = _records(fp32), _records(bf16)
    assert a[["step", "task", "kind", "n"]].equals(b[["step", "task", "kind", "n"]])
    # evaluation really ran in bf16: losses carry bf16 rounding (8 mantissa bits)...
    assert not a["loss"].equals(b["loss"])
    assert (a["loss"] - b["loss"]).abs().max() < 0.05
    # ...while predictions flip only on near-ties
    acc_a, acc_b = a["correct"] / a["n"], b["correct"] / b["n"]
    assert (acc_a - acc_b).abs().max() <= 0.05


def test_train_follows_the_run_precision(tmp_path):
    # eval.precision=train under precision=bf16 evaluates in bf16: the same records as asking
    # for bf16 evaluation explicitly
    a = experiment(tmp_path / "a", **ER, precision="bf16")
    b = experiment(tmp_path / "b", **ER, precision="bf16", **{"eval.precision": "bf16"})
    c = experiment(tmp_path / "c", **ER, precision="bf16", **{"eval.precision": "fp32"})
    assert _records(a).equals(_records(b))
    assert not _records(a)["loss"].equals(_records(c)["loss"])


def test_default_keeps_the_run_hash(tmp_path):
    base = fast_overrides(tmp_path)
    default = config_hash(build_config(None, base))
    assert config_hash(build_config(None, [*base, "eval.precision=train"])) == default
    assert config_hash(build_config(None, [*base, "eval.precision=bf16"])) != default
    # the default config's hash as it was before eval.precision existed
    assert config_hash(build_config(None, [])) == "6affe814f60d"


def test_precision_is_validated(tmp_path):
    with pytest.raises(ConfigError) as info:
        build_config(None, [*fast_overrides(tmp_path), "eval.precision=fp16"])
    assert "eval.precision" in str(info.value)
