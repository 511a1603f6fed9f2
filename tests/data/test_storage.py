"""``storage``: the dataset on the device or in host memory gives the same batches and records;
``auto`` keeps data on a CPU device and decides by size on a GPU; it never changes the hash."""

from __future__ import annotations

import pandas as pd
import pytest
import torch

from clbench.config import build_config, config_hash
from clbench.data.stream import StreamData
from clbench.engine.runner import resolve_storage
from tests.helpers import experiment, fast_overrides

ER = {"strategy.name": "er", "strategy.buffer_size": 20}


def test_host_storage_gives_the_records_of_device_storage(tmp_path):
    on_device = experiment(tmp_path / "device", **ER, storage="device")
    on_host = experiment(tmp_path / "host", **ER, storage="host")
    assert (on_device.storage, on_host.storage) == ("device", "host")
    assert on_host.data._splits["train"].x is on_host.prepared.dataset.train.x  # not copied
    assert torch.equal(torch.stack(on_device.train_losses), torch.stack(on_host.train_losses))
    pd.testing.assert_frame_equal(on_device.log.frame(), on_host.log.frame())


def test_host_batches_equal_device_batches(tmp_path):
    exp = experiment(tmp_path, run=False)
    dataset, plan = exp.prepared.dataset, exp.prepared.plan
    device = StreamData(dataset, plan, torch.device("cpu"), "device")
    host = StreamData(dataset, plan, torch.device("cpu"), "host")
    index = torch.tensor([5, 0, 17, 3])
    task = torch.tensor([0, 0, 1, 1])
    for split in ("train", "test"):
        a, b = device.make_batch(index, task, split), host.make_batch(index, task, split)
        for field in ("x", "y", "task", "index"):
            assert torch.equal(getattr(a, field), getattr(b, field)), (split, field)


def test_auto_storage(tmp_path, monkeypatch):
    cfg = build_config(None, fast_overrides(tmp_path))
    exp = experiment(tmp_path, run=False)
    dataset = exp.prepared.dataset
    assert resolve_storage(cfg, dataset, torch.device("cpu")) == "device"

    class Properties:  # a GPU of 1 MB: the synthetic data (a few KB) fits a quarter of it
        total_memory = 1_000_000

    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda device: Properties())
    assert resolve_storage(cfg, dataset, torch.device("cuda")) == "device"
    Properties.total_memory = 10_000  # ...and not of 10 KB
    assert resolve_storage(cfg, dataset, torch.device("cuda")) == "host"
    small = build_config(None, [*fast_overrides(tmp_path), "storage_device_fraction=1"])
    assert resolve_storage(small, dataset, torch.device("cuda")) == "host"  # 10 KB < data


@pytest.mark.parametrize("setting", ["storage=host", "storage_device_fraction=0.5"])
def test_storage_never_changes_the_hash(tmp_path, setting):
    base = fast_overrides(tmp_path)
    assert config_hash(build_config(None, [*base, setting])) == config_hash(
        build_config(None, base)
    )
