"""``storage``: the dataset on the device, in host memory or memory-mapped from the cache gives
the same batches and records; ``auto`` keeps data on a CPU device and decides by size on a GPU
(never memmap); it never changes the hash. The memmap cache is built once, reused without being
rewritten, and rebuilt when damaged; batches sent ahead (the GPU look-ahead, forced on a CPU here)
are the same batches."""

from __future__ import annotations

import functools
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from clbench.cli import main
from clbench.config import build_config, config_hash
from clbench.data import cache as cache_module
from clbench.data.cache import CACHE_ENV, load_memmapped
from clbench.data.dataset import content_checksum
from clbench.data.source import CorruptDataError
from clbench.data.sources import ptm_sets
from clbench.data.sources._common import channel_stats
from clbench.data.sources.specs import torchvision_sets
from clbench.data.stream import StreamData
from clbench.engine import runner
from clbench.engine.runner import resolve_storage
from clbench.registry import DATASETS, SCENARIOS, validate_params
from tests.engine.helpers import run_with_stops
from tests.helpers import experiment, fast_overrides, write_idx

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
    Properties.total_memory = 1  # auto never picks memmap; memmap is asked for by name
    assert resolve_storage(cfg, dataset, torch.device("cuda")) == "host"
    mapped = build_config(None, [*fast_overrides(tmp_path), "storage=memmap"])
    assert resolve_storage(mapped, dataset, torch.device("cuda")) == "memmap"


@pytest.mark.parametrize(
    "setting", ["storage=host", "storage=memmap", "storage_device_fraction=0.5"]
)
def test_storage_never_changes_the_hash(tmp_path, setting):
    base = fast_overrides(tmp_path)
    assert config_hash(build_config(None, [*base, setting])) == config_hash(
        build_config(None, base)
    )


# --------------------------------------------------------------------------- storage=memmap


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """An empty cache folder, as ``$CLBENCH_CACHE``."""
    root = tmp_path / "cache"
    monkeypatch.setenv(CACHE_ENV, str(root))
    return root


def mapped_file(tensor: torch.Tensor) -> str | None:
    """The file whose mapping holds ``tensor``'s data (None: anonymous memory)."""
    address = tensor.data_ptr()
    for line in Path("/proc/self/maps").read_text().splitlines():
        fields = line.split(maxsplit=5)
        start, end = (int(a, 16) for a in fields[0].split("-"))
        if start <= address < end:
            return fields[5] if len(fields) == 6 and fields[5].startswith("/") else None
    return None


def entry_files(root: Path) -> dict[str, int]:
    """Each cache file (relative path) -> its modification time (ns)."""
    return {str(p.relative_to(root)): p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file()}


def test_memmap_storage_gives_the_records_of_device_storage(tmp_path, cache):
    on_device = experiment(tmp_path / "device", **ER, storage="device")
    mapped = experiment(tmp_path / "memmap", **ER, storage="memmap")
    assert mapped.storage == "memmap"
    (entry,) = cache.iterdir()
    assert entry.name.startswith("synthetic-")
    assert sorted(p.name for p in entry.iterdir()) == [
        "meta.json",
        "test_x.npy",
        "test_y.npy",
        "train_x.npy",
        "train_y.npy",
    ]
    data = mapped.prepared.dataset
    assert data.checksum == on_device.prepared.dataset.checksum
    assert torch.equal(data.train.x, on_device.prepared.dataset.train.x)
    assert mapped_file(data.train.x) == str(entry / "train_x.npy")  # mapped, not loaded
    assert mapped_file(on_device.prepared.dataset.train.x) is None
    assert torch.equal(torch.stack(on_device.train_losses), torch.stack(mapped.train_losses))
    pd.testing.assert_frame_equal(on_device.log.frame(), mapped.log.frame())


@pytest.mark.parametrize("storage", ["host", "memmap"])
def test_batches_sent_ahead_give_the_same_records(tmp_path, cache, storage):
    """The look-ahead (on by default only on a GPU) forced on a CPU: same batches, same records,
    and the training batches really came from the batches sent ahead."""
    on_device = experiment(tmp_path / "device", **ER, storage="device")
    ahead = experiment(tmp_path / storage, run=False, **ER, storage=storage)
    assert not ahead.data.prefetch  # a CPU: nothing to overlap
    ahead.data.prefetch = True
    taken: list[bool] = []
    take = ahead.data._take_ahead

    def spy(index):
        rows = take(index)
        taken.append(rows is not None)
        return rows

    ahead.data._take_ahead = spy
    ahead.run()
    updates = ahead.timing.updates
    assert taken.count(True) == updates  # every stream batch; replay batches are gathered
    assert torch.equal(torch.stack(on_device.train_losses), torch.stack(ahead.train_losses))
    pd.testing.assert_frame_equal(on_device.log.frame(), ahead.log.frame())


def test_batches_sent_ahead_survive_stop_and_resume(tmp_path, cache, monkeypatch):
    """Looking ahead pulls the batch iterator one batch early: a run stopped and resumed from its
    checkpoint inside epochs still makes the updates of an uninterrupted run."""
    monkeypatch.setattr(runner, "StreamData", functools.partial(StreamData, prefetch=True))
    config = build_config(None, fast_overrides(tmp_path / "a", **ER, storage="memmap"))
    resumed = run_with_stops(config, {5, 13, 20}, tmp_path / "a")
    assert resumed.data.prefetch
    straight = experiment(tmp_path / "b", **ER, storage="device")
    assert torch.equal(torch.stack(straight.train_losses), torch.stack(resumed.train_losses))
    pd.testing.assert_frame_equal(straight.log.frame(), resumed.log.frame())


def test_prefetching_is_a_no_op_when_off(tmp_path):
    exp = experiment(tmp_path, run=False, storage="host")
    batches = [(torch.tensor([1, 2]), torch.tensor([0, 0]))]
    assert exp.data.prefetching(batches) is batches


def inr_source(root: Path, **params):
    from tests.data.test_ptm_datasets import source, write_imagenet_r

    if not (root / "imagenet-r").exists():
        write_imagenet_r(root / "imagenet-r")
    return source("imagenet_r", root, image_size=10, **params)


@pytest.mark.parametrize("norm", ["imagenet", "data"])
def test_image_folder_dataset_decodes_once_into_the_cache(tmp_path, monkeypatch, norm):
    in_memory = inr_source(tmp_path, norm=norm).load()
    assert in_memory.checksum == content_checksum(in_memory)  # streamed = whole-array checksum
    if norm == "data":
        assert (in_memory.mean, in_memory.std) == channel_stats(in_memory.train.x)
    decoded: list[int] = []
    real = ptm_sets.decoded_blocks

    def counting(paths, *args, **kwargs):
        decoded.append(len(paths))
        return real(paths, *args, **kwargs)

    monkeypatch.setattr(ptm_sets, "decoded_blocks", counting)
    root = tmp_path / "cache"
    mapped = load_memmapped(inr_source(tmp_path, norm=norm), "imagenet_r", root)
    assert sum(decoded) == 16  # every image, once, straight into the cache files
    for field in ("checksum", "class_names", "mean", "std", "name"):
        assert getattr(mapped, field) == getattr(in_memory, field), field
    for a, b in ((mapped.train, in_memory.train), (mapped.test, in_memory.test)):
        assert torch.equal(a.x, b.x) and torch.equal(a.y, b.y)
    files = entry_files(root)
    again = load_memmapped(inr_source(tmp_path, norm=norm), "imagenet_r", root)
    assert sum(decoded) == 16  # opened, not decoded
    assert entry_files(root) == files  # nor rewritten
    assert again.checksum == in_memory.checksum and torch.equal(again.train.x, in_memory.train.x)
    # an image changes: another key, so another entry (the old one is left as it is)
    image = next((tmp_path / "imagenet-r").rglob("*.jpg"))
    os.utime(image, ns=(image.stat().st_atime_ns, image.stat().st_mtime_ns + 10**9))
    load_memmapped(inr_source(tmp_path, norm=norm), "imagenet_r", root)
    assert sum(decoded) == 32 and len(list(root.iterdir())) == 2


def test_file_dataset_is_keyed_by_its_files_and_not_reread(tmp_path, monkeypatch):
    """A torchvision-format source (MNIST idx files) keys its entry by its files' sizes and
    modification times: a cached run opens the entry without parsing the files."""
    rng = np.random.default_rng(0)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (30, 28, 28)),
        "train-labels-idx1-ubyte": np.arange(30) % 10,
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (10, 28, 28)),
        "t10k-labels-idx1-ubyte": np.arange(10),
    }
    for name, array in arrays.items():
        write_idx(tmp_path / "data" / f"{name}.gz", array)
    mnist = DATASETS.get("mnist")
    source = mnist(mnist.Config(), tmp_path / "data")
    in_memory = source.load()
    assert in_memory.checksum == content_checksum(in_memory)
    parsed: list[Path] = []
    read_idx = torchvision_sets.read_idx

    def counting(path, ndim):
        parsed.append(path)
        return read_idx(path, ndim)

    monkeypatch.setattr(torchvision_sets, "read_idx", counting)
    root = tmp_path / "cache"
    first = load_memmapped(source, "mnist", root)
    assert len(parsed) == 4 and first.checksum == in_memory.checksum
    again = load_memmapped(mnist(mnist.Config(), tmp_path / "data"), "mnist", root)
    assert len(parsed) == 4  # not parsed again
    assert torch.equal(again.train.x, in_memory.train.x)
    assert torch.equal(again.test.y, in_memory.test.y)
    assert mapped_file(again.train.x) == str(next(root.iterdir()) / "train_x.npy")


def test_memmap_batches_equal_in_memory_batches(tmp_path):
    """Image batches (uint8, normalised on the device) gathered from the maps in ascending file
    order come back in the order asked, duplicates included."""
    dataset = inr_source(tmp_path).load()
    mapped = load_memmapped(inr_source(tmp_path), "imagenet_r", tmp_path / "cache")
    scenario = SCENARIOS.get("class_incremental")
    params = validate_params(scenario.Config, {"n_experiences": 3}, "scenario")
    plan = scenario(params).build(dataset, 0)
    device = StreamData(dataset, plan, torch.device("cpu"), "device")
    memmap = StreamData(mapped, plan, torch.device("cpu"), "memmap")
    index = torch.tensor([5, 0, 11, 3, 5])
    task = torch.tensor([1, 0, 2, 0, 1])
    for split in ("train", "test"):
        idx = index if split == "train" else index.remainder(3)
        a, b = device.make_batch(idx, task, split), memmap.make_batch(idx, task, split)
        for field in ("x", "y", "task", "index"):
            assert torch.equal(getattr(a, field), getattr(b, field)), (split, field)


def test_cache_is_built_once_and_reused(tmp_path, cache, monkeypatch):
    builds: list[Path] = []
    build = cache_module._build

    def counted(entry, fill):
        builds.append(entry)
        build(entry, fill)

    monkeypatch.setattr(cache_module, "_build", counted)
    first = experiment(tmp_path / "a", storage="memmap")
    files = entry_files(cache)
    second = experiment(tmp_path / "b", storage="memmap")
    assert len(builds) == 1 and entry_files(cache) == files  # not rewritten
    pd.testing.assert_frame_equal(first.log.frame(), second.log.frame())
    experiment(tmp_path / "c", storage="memmap", **{"data.noise": 0.25})  # other data: new entry
    assert len(builds) == 2 and len(list(cache.iterdir())) == 2


def damage_truncate(entry: Path) -> None:
    path = entry / "train_x.npy"
    path.write_bytes(path.read_bytes()[:-7])


def damage_header(entry: Path) -> None:
    path = entry / "train_x.npy"
    raw = path.read_bytes()
    path.write_bytes(raw[:8] + raw[8:].replace(b"'shape': (", b"'shape': (1", 1))


def damage_meta(entry: Path) -> None:
    (entry / "meta.json").write_text('{"format": 1, "arr')


def damage_missing(entry: Path) -> None:
    (entry / "test_y.npy").unlink()


@pytest.mark.parametrize("damage", [damage_truncate, damage_header, damage_meta, damage_missing])
def test_damaged_cache_entry_is_rebuilt_not_trusted(tmp_path, cache, damage):
    experiment(tmp_path / "a", run=False, storage="memmap")
    # (damaging a file in place also changes what maps it shows: compare with an in-memory copy)
    reference = experiment(tmp_path / "device", run=False, storage="device").prepared.dataset
    (entry,) = cache.iterdir()
    damage(entry)
    rebuilt = experiment(tmp_path / "b", run=False, storage="memmap").prepared.dataset
    assert (entry / "meta.json").is_file()
    assert cache_module.open_entry(entry) is not None  # intact again
    assert rebuilt.checksum == reference.checksum
    assert torch.equal(rebuilt.train.x, reference.train.x)
    assert torch.equal(rebuilt.test.y, reference.test.y)


def test_killed_build_leaves_no_entry(tmp_path):
    """A build that dies half way leaves nothing that a later run would trust; the temporary
    folder of a build whose process is gone is cleaned up by the next build."""
    root = tmp_path / "cache"
    source = inr_source(tmp_path)

    def dies(sink):
        source.load_into(lambda name, shape, dtype, blocks: sink(name, shape, dtype, _die(blocks)))

    def _die(blocks):
        yield next(iter(blocks))[:1]
        raise KeyboardInterrupt  # killed after writing one row

    params, inputs = source.config.model_dump(mode="json"), source.cache_fingerprint()
    entry = root / f"imagenet_r-{cache_module.cache_key('imagenet_r', params, inputs)}"
    with pytest.raises(KeyboardInterrupt):
        cache_module._build(entry, dies)
    assert not entry.exists() and list(root.iterdir()) == []
    assert cache_module.open_entry(entry) is None
    # a build killed outright (SIGKILL: no cleanup) leaves its temporary folder behind
    host = socket.gethostname()
    pid = "import os; print(os.getpid())"
    done = subprocess.run([sys.executable, "-c", pid], check=True, capture_output=True, text=True)
    dead = done.stdout.strip()
    abandoned = root / f".{entry.name}.tmp-{host}-{dead}-deadbeef"
    abandoned.mkdir()
    (abandoned / "train_x.npy").write_bytes(b"\x93NUMPY")
    live = root / f".{entry.name}.tmp-{host}-{os.getpid()}-cafe0000"  # a build going on
    live.mkdir()
    mapped = load_memmapped(source, "imagenet_r", root)
    assert sorted(p.name for p in root.iterdir()) == sorted([live.name, entry.name])
    assert mapped.checksum == source.load().checksum


def test_corrupt_image_while_building_is_named_and_leaves_no_entry(tmp_path):
    source = inr_source(tmp_path)
    broken = sorted((tmp_path / "imagenet-r").rglob("*.jpg"))[4]
    broken.write_bytes(b"not a jpeg")
    with pytest.raises(CorruptDataError, match=broken.name):
        load_memmapped(source, "imagenet_r", tmp_path / "cache")
    assert list((tmp_path / "cache").iterdir()) == []


def test_bad_storage_value_exits_2_naming_the_field_and_values(tmp_path, capsys):
    code = main(["run", "--quiet", *fast_overrides(tmp_path / "out"), "storage=nvme"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("clbench: error: storage:") and len(err.strip().splitlines()) == 1
    for allowed in ("auto", "device", "host", "memmap"):
        assert repr(allowed) in err
    assert not (tmp_path / "out").exists()


def test_unwritable_cache_exits_2(tmp_path, capsys, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    monkeypatch.setenv(CACHE_ENV, str(blocker / "cache"))
    code = main(["run", "--quiet", *fast_overrides(tmp_path / "out"), "storage=memmap"])
    err = capsys.readouterr().err
    assert code == 2 and "storage" in err and CACHE_ENV in err
